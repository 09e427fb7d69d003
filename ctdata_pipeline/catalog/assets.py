"""The catalog asset: a night's harvest checked, normalized and stored as a dated snapshot."""

import dagster as dg
from pydantic import Field

from ctdata_pipeline.catalog.guard import RENORMALIZE_OVERRIDE, SnapshotRefused
from ctdata_pipeline.catalog.normalize import NormalizeReport
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.stage import stage_file, stage_stored_night
from ctdata_pipeline.catalog.write import SnapshotWritten, stored_summary, write_snapshot
from ctdata_pipeline.harvest.resources import HarvestStaging
from ctdata_pipeline.harvest.staging import StagingArea
from ctdata_pipeline.metadata import table_preview
from ctdata_pipeline.partitions import expected_by, night_and_portal
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

PREVIEW_COLUMNS = ["asset_id", "asset_type", "in_scope", "title", "agency", "update_frequency"]


# Metadata key of the run failure a shrink-guard refusal raises.
REFUSED_BY = "refused_by"


class CatalogSnapshotConfig(dg.Config):
    """Run config of catalog_snapshot (the Launchpad shows it): the one deliberate way past the
    shrink guard for a run."""

    accept_shrink: bool = Field(
        default=False,
        description=(
            "Store this night even though it is far smaller than the stored snapshot of the "
            "night or the last good one before it (the shrink guard would refuse it). Set it "
            "only for a portal that really shrank; an empty catalog is refused anyway."
        ),
    )


def build_catalog_assets(
    partitions_def: dg.PartitionsDefinition, harvest: dg.AssetsDefinition
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="catalog_snapshot",
        group_name="catalog",
        partitions_def=partitions_def,
        deps=[harvest],
        kinds={"duckdb", "python"},
        pool=DUCKDB_POOL,
        freshness_policy=expected_by(4),
    )
    def catalog_snapshot(
        context: dg.AssetExecutionContext,
        config: CatalogSnapshotConfig,
        portals: PortalList,
        staging: HarvestStaging,
        warehouse: DuckDBWarehouse,
    ) -> dg.MaterializeResult:
        """The night's dated snapshot of one portal's catalog in DuckDB (`catalog.assets`):
        every asset with its raw record and normalized fields (in scope or not, agency, update
        frequency, column documentation, views). Every plan metric is computed from it. A
        night that is empty, or far smaller than the stored snapshot of the night or the last
        good one before it, is refused and what was stored stays (run config `accept_shrink`
        overrides). Without a new harvest, re-running a night re-normalizes the records
        already stored for it, under the same guard."""
        snapshot_date, portal_name = night_and_portal(context)
        portal_file = portals.portal_file()
        portal = portal_file.get(portal_name)
        area = staging.area()
        # Another run of this night may be publishing its harvest: load one whole harvest.
        with area.lock(portal_name, snapshot_date):
            written, preview = _load_night(
                context,
                portal,
                portal_file.guard_ratio(portal),
                config.accept_shrink,
                area,
                warehouse,
            )
        _log_report(context, written)
        return dg.MaterializeResult(metadata=_snapshot_metadata(written, preview))

    return [catalog_snapshot]


def _load_night(
    context: dg.AssetExecutionContext,
    portal: Portal,
    guard_ratio: float,
    accept_shrink: bool,
    area: StagingArea,
    warehouse: DuckDBWarehouse,
) -> tuple[SnapshotWritten, list[dict]]:
    """Store the night's staged harvest (or re-normalize the stored night when there is none):
    (what was written, a preview of the snapshot)."""
    snapshot_date, portal_name = night_and_portal(context)
    summary = area.summary(portal_name, snapshot_date)
    with warehouse.get_connection() as conn:
        ensure_schema(conn)
        try:
            if summary is not None:
                report = stage_file(conn, portal, area.records_path(portal_name, snapshot_date))
                written = write_snapshot(
                    conn,
                    portal,
                    summary,
                    report,
                    origin="harvest",
                    min_ratio=guard_ratio,
                    accept_shrink=accept_shrink,
                )
            else:
                stored = stored_summary(conn, portal_name, snapshot_date)
                if stored is None:
                    raise dg.Failure(
                        description=(
                            f"{portal_name}: nothing to load for {snapshot_date}: no staged "
                            "harvest and no stored snapshot; materialize harvested_catalog "
                            "for this night first"
                        ),
                        allow_retries=False,
                    )
                stored_night, origin = stored
                context.log.info(f"{portal_name}: re-normalizing the stored {snapshot_date}")
                report = stage_stored_night(conn, portal, snapshot_date)
                written = write_snapshot(
                    conn,
                    portal,
                    stored_night,
                    report,
                    origin=origin,
                    min_ratio=guard_ratio,
                    accept_shrink=accept_shrink,
                    override=RENORMALIZE_OVERRIDE,
                )
        except SnapshotRefused as refusal:
            # The marker lets the report say "refused by the shrink guard", not "failed".
            raise dg.Failure(
                description=str(refusal), metadata={REFUSED_BY: "shrink guard"}, allow_retries=False
            ) from None
        preview = conn.execute(
            f"""
            SELECT {", ".join(PREVIEW_COLUMNS)} FROM catalog.assets
            WHERE snapshot_date = ? AND portal = ?
            ORDER BY in_scope DESC, asset_id
            LIMIT 10
            """,
            [snapshot_date, portal_name],
        ).df()
    if summary is not None:
        area.discard(portal_name, snapshot_date)
    return written, preview.to_dict("records")


def _log_report(context: dg.AssetExecutionContext, written: SnapshotWritten) -> None:
    report = written.report
    context.log.info(
        f"{written.portal} {written.snapshot_date}: {written.assets_total} assets, "
        f"{written.datasets_in_scope} in-scope datasets, {written.new_versions} new record "
        f"versions stored"
    )
    if written.rekeyed:
        context.log.info(f"{written.portal} {written.snapshot_date}: {written.rekeyed}")
    if report.unmapped_frequencies:
        listed = ", ".join(
            f"{value!r} x {count}" for value, count in report.unmapped_frequencies.most_common()
        )
        context.log.warning(
            f"FR-0: {sum(report.unmapped_frequencies.values())} in-scope datasets of "
            f"{written.portal} have an update frequency that maps to nothing or names two "
            f"different periods (counted as unknown): {listed}"
        )


def _snapshot_metadata(written: SnapshotWritten, preview: list[dict]) -> dict[str, object]:
    report: NormalizeReport = written.report
    return {
        "dagster/row_count": written.assets_total,
        "datasets_in_scope": written.datasets_in_scope,
        "new_record_versions": written.new_versions,
        "shrink_guard": written.shrink_guard,
        "rekeyed": written.rekeyed or "none",
        "previous_snapshot": str(written.previous_date) if written.previous_date else "none",
        "previous_datasets_in_scope": written.previous_in_scope or 0,
        "assets_by_type": dg.MetadataValue.json(dict(report.asset_types.most_common())),
        "agency_rule": dg.MetadataValue.json(dict(report.agency_rules.most_common())),
        "unmapped_update_frequencies": dg.MetadataValue.json(
            dict(report.unmapped_frequencies.most_common())
        ),
        "preview": table_preview(preview, PREVIEW_COLUMNS),
    }
