"""The harvest asset: each portal's whole catalog, fetched for one night and staged on disk."""

import itertools

import dagster as dg

from ctdata_pipeline.failures import failing_clearly
from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.resources import HarvestStaging, PortalClient
from ctdata_pipeline.metadata import table_preview
from ctdata_pipeline.partitions import expected_by, night_and_portal
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.settings import socrata_app_token

PREVIEW_ROWS = 10


def build_harvest_assets(
    partitions_def: dg.PartitionsDefinition, retry_policy: dg.RetryPolicy
) -> list[dg.AssetsDefinition]:
    @dg.asset(
        name="harvested_catalog",
        group_name="harvest",
        partitions_def=partitions_def,
        kinds={"socrata", "dcat", "python"},
        retry_policy=retry_policy,
        freshness_policy=expected_by(4),
    )
    def harvested_catalog(
        context: dg.AssetExecutionContext,
        portals: PortalList,
        portal_client: PortalClient,
        staging: HarvestStaging,
    ) -> dg.MaterializeResult:
        """Tonight's catalog of one portal, complete and exactly as the portal publishes it:
        every asset's raw record (datasets, views, charts, stories, federated assets), paged
        with retries, de-duplicated and checked against the portal's own count. Nothing reaches
        the Board's numbers until the catalog step has checked and stored it."""
        snapshot_date, portal_name = night_and_portal(context)
        portal = portals.portal(portal_name)
        if portal.kind == "socrata" and not portal.as_of and socrata_app_token() is None:
            context.log.warning(
                "SOCRATA_APP_TOKEN is not set: the Discovery API throttles anonymous requests"
            )
        area = staging.area()
        try:
            with (
                failing_clearly("stage the harvest in", area.root),
                area.writer(portal_name, snapshot_date) as writer,
            ):
                summary = portal_client.fetch(portal, snapshot_date, writer)
                writer.commit(summary)
        except HarvestError as error:
            raise dg.Failure(description=str(error), allow_retries=error.retryable) from None

        context.log.info(
            f"{portal_name}: {summary.assets} assets in {summary.pages} page(s) "
            f"({summary.paging} paging, {summary.duplicates_dropped} duplicates dropped) "
            f"in {summary.seconds:.1f}s"
        )
        preview = [
            _preview_row(portal.kind, asset_id, record)
            for asset_id, record in itertools.islice(
                area.records(portal_name, snapshot_date), PREVIEW_ROWS
            )
        ]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": summary.assets,
                "result_set_size": summary.result_set_size,
                "pages": summary.pages,
                "paging": summary.paging,
                "duplicates_dropped": summary.duplicates_dropped,
                "harvest_seconds": summary.seconds,
                "snapshot_time": dg.MetadataValue.timestamp(summary.snapshot_time),
                "source": dg.MetadataValue.url(summary.source_url),
                "preview": table_preview(preview, ["id", "type", "title"]),
            }
        )

    return [harvested_catalog]


def _preview_row(kind: str, asset_id: str, record: dict) -> dict[str, str]:
    if kind == "socrata":
        resource = record.get("resource") or {}
        return {
            "id": asset_id,
            "type": str(resource.get("type")),
            "title": str(resource.get("name")),
        }
    return {"id": asset_id, "type": "dataset", "title": str(record.get("title"))}
