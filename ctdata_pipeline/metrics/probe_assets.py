"""The probe metrics as assets: FR-5, FR-8 and AC-1 of one portal's night in board.plan_metrics,
with board.broken_links and board.silently_stale, computed after the night's probes and its
nightly metrics (metrics/probed.py)."""

from collections.abc import Iterator

import dagster as dg

from ctdata_pipeline.metadata import markdown_table, metric_text
from ctdata_pipeline.metrics.checks import PLAN_METRICS
from ctdata_pipeline.metrics.compute import MetricsInvalid
from ctdata_pipeline.metrics.probed import compute_probe_metrics
from ctdata_pipeline.partitions import night_and_portal
from ctdata_pipeline.probes.model import (
    BROKEN_LINKS,
    PROBE_ASSET_KEYS,
    PROBE_PLAN_METRICS,
    SILENTLY_STALE,
)
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse


def build_probe_metric_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    deps = [*PROBE_ASSET_KEYS, PLAN_METRICS]
    specs = [
        dg.AssetSpec(
            PROBE_PLAN_METRICS,
            group_name="metrics",
            deps=deps,
            description=(
                "The plan metrics that read probe results (metrics.md version 2): FR-5 silently "
                "stale data, FR-8 the age of map layers' data (and FR-1/FR-2 by data date on "
                "DCAT portals), AC-1 links that answer, per portal and per agency, in "
                "board.plan_metrics beside the nightly ones. A target without a recent result "
                "counts as not checked."
            ),
            kinds={"duckdb", "sql", "table"},
            metadata={"dagster/table_name": "board.plan_metrics"},
        ),
        dg.AssetSpec(
            BROKEN_LINKS,
            group_name="board",
            deps=deps,
            description=(
                "Work list: every URL the catalog publishes that failed on its last two probes "
                "at least 20 hours apart (AC-1 broken), with its dataset and agency."
            ),
            kinds={"duckdb", "sql", "table"},
            metadata={"dagster/table_name": "board.broken_links"},
        ),
        dg.AssetSpec(
            SILENTLY_STALE,
            group_name="board",
            deps=deps,
            description=(
                "Work list: datasets whose metadata says they are current (FRESH or DUE) while "
                "their newest row is older than three periods (FR-5 silently stale)."
            ),
            kinds={"duckdb", "sql", "table"},
            metadata={"dagster/table_name": "board.silently_stale"},
        ),
    ]

    @dg.multi_asset(
        name="probe_plan_metrics",
        specs=specs,
        partitions_def=partitions_def,
        pool=DUCKDB_POOL,
    )
    def probe_plan_metrics(
        context: dg.AssetExecutionContext, portals: PortalList, warehouse: DuckDBWarehouse
    ) -> Iterator[dg.MaterializeResult]:
        """Compute and store the night's probe metrics; a night whose values break the metrics'
        rules writes nothing and fails here."""
        snapshot_date, portal_name = night_and_portal(context)
        portal_file = portals.portal_file()
        portal = portal_file.get(portal_name)
        with warehouse.get_connection() as conn:
            try:
                night = compute_probe_metrics(
                    conn, portal, snapshot_date, portal_file.aliases_for(portal)
                )
            except MetricsInvalid as invalid:
                raise dg.Failure(description=str(invalid), allow_retries=False) from None
        context.log.info(
            f"{portal_name} {snapshot_date}: {night.metric_rows} probe metric values, "
            f"{night.targets_with_result} of {night.targets} targets with a recent result, "
            f"{night.broken_links} broken links, {night.silently_stale} silently stale"
        )
        table = markdown_table(
            ["metric", "value"],
            [[name, metric_text(value, unit)] for name, (value, unit) in night.headline.items()],
        )
        yield dg.MaterializeResult(
            asset_key=PROBE_PLAN_METRICS,
            metadata={
                "dagster/row_count": night.metric_rows,
                "targets": night.targets,
                "targets_with_result": night.targets_with_result,
                "portal_values": dg.MetadataValue.md(table),
            },
        )
        yield dg.MaterializeResult(
            asset_key=BROKEN_LINKS, metadata={"dagster/row_count": night.broken_links}
        )
        yield dg.MaterializeResult(
            asset_key=SILENTLY_STALE, metadata={"dagster/row_count": night.silently_stale}
        )

    return [probe_plan_metrics]
