"""The metric assets: the night's per-dataset assessments and its plan metrics, computed in one
DuckDB step and checked before they are stored."""

from collections.abc import Iterator

import dagster as dg

from ctdata_pipeline.metadata import (
    column_schema,
    markdown_table,
    metric_number,
    metric_text,
)
from ctdata_pipeline.metrics.checks import ASSESSMENTS, PLAN_METRICS
from ctdata_pipeline.metrics.compute import (
    MetricsInvalid,
    NightMetrics,
    compute_night,
)
from ctdata_pipeline.metrics.definitions import METRICS, metric_for
from ctdata_pipeline.partitions import night_and_portal
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

HEADLINE_METRICS = (
    "assets_total",
    "datasets_in_scope",
    "datasets_added",
    "datasets_removed",
    "pct_missing_metadata",
    "pct_meets_ct_standard",
    "mean_metadata_score",
    "column_doc_coverage",
    "pct_stale",
    "pct_freshness_unknown",
    "stale_but_popular",
    "pct_unused",
    "duplicate_title_groups",
)

ASSESSMENT_COLUMNS = {
    "snapshot_date": ("DATE", "The night."),
    "portal": ("VARCHAR", "Portal name from the portal file."),
    "asset_id": ("VARCHAR", "The dataset's id on the portal."),
    "agency": (
        "VARCHAR",
        "Agency by the spec's rule, under its canonical name (agency_aliases:); '(no agency)' "
        "when none.",
    ),
    "agency_as_published": ("VARCHAR", "The agency as the catalog names it (NULL when none)."),
    "md1_missing": ("VARCHAR[]", "MD-1 fields that are empty or invalid."),
    "md2_missing": ("VARCHAR[]", "MD-2 requirements not met."),
    "metadata_score": ("DOUBLE", "MD-4 score, 0-100."),
    "freshness_state": ("VARCHAR", "FR-1 state."),
    "age_days": ("DOUBLE", "Days since the last data update, at snapshot time."),
    "days_overdue": ("DOUBLE", "FR-4: age minus the promised period, when stale."),
    "stale_but_popular": ("BOOLEAN", "FR-9."),
    "cadence_flag": ("VARCHAR", "FR-6 flag, or 'insufficient history'."),
}
PLAN_METRIC_COLUMNS = {
    "snapshot_date": ("DATE", "The night (New York date of the harvest)."),
    "portal": ("VARCHAR", "Portal name from the portal file."),
    "agency": ("VARCHAR", "NULL for the whole portal, else the agency's canonical name."),
    "metric_id": ("VARCHAR", "Id in metrics.md, e.g. MD-1."),
    "metric": ("VARCHAR", "Metric name, e.g. pct_missing_metadata."),
    "numerator": ("DOUBLE", "What was counted."),
    "denominator": ("DOUBLE", "What it was counted out of; NULL for counts."),
    "value": ("DOUBLE", "Percent 0-100, count, score or days (see unit)."),
    "metric_version": ("INTEGER", "Definition version; a change of definition bumps it."),
    "unit": ("VARCHAR", "percent, count, score or days."),
    "note": ("VARCHAR", "Why a value is NULL, when it is."),
}


def _plan_metrics_description() -> str:
    listed = "; ".join(f"{m.metric_id} {m.title}" for m in METRICS)
    return (
        "The State Data Plan's metrics (metrics.md version 1) for one portal's night, for the "
        "whole portal and for each agency, each with numerator, denominator and version, in "
        f"board.plan_metrics: {listed}. Every night stays queryable; board.metric_trends puts "
        "each value beside the night before."
    )


def build_metric_assets(
    partitions_def: dg.PartitionsDefinition, catalog_snapshot: dg.AssetsDefinition
) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            ASSESSMENTS,
            group_name="metrics",
            deps=[catalog_snapshot],
            description=(
                "Every in-scope dataset of one portal's night, assessed: which metadata it "
                "misses (MD-1, MD-2), its metadata score (MD-4), its freshness state and how "
                "late it is (FR-1, FR-4), whether it is stale but popular (FR-9). The work lists "
                "of the Board are drawn from it (table metrics.datasets)."
            ),
            kinds={"duckdb", "sql"},
            metadata={
                "dagster/table_name": "metrics.datasets",
                "dagster/column_schema": column_schema(ASSESSMENT_COLUMNS),
            },
        ),
        dg.AssetSpec(
            PLAN_METRICS,
            group_name="metrics",
            deps=[ASSESSMENTS],
            description=_plan_metrics_description(),
            kinds={"duckdb", "sql", "table"},
            metadata={
                "dagster/table_name": "board.plan_metrics",
                "dagster/column_schema": column_schema(PLAN_METRIC_COLUMNS),
            },
        ),
    ]

    @dg.multi_asset(
        name="compute_plan_metrics",
        specs=specs,
        partitions_def=partitions_def,
        pool=DUCKDB_POOL,
    )
    def compute_plan_metrics(
        context: dg.AssetExecutionContext,
        portals: PortalList,
        warehouse: DuckDBWarehouse,
    ) -> Iterator[dg.MaterializeResult]:
        """Compute every plan metric of one portal's night in DuckDB; a night that breaks the
        rules of its checks (checks.py) is refused here and writes nothing."""
        snapshot_date, portal_name = night_and_portal(context)
        portal_file = portals.portal_file()
        portal = portal_file.get(portal_name)
        with warehouse.get_connection() as conn:
            try:
                night = compute_night(conn, portal, snapshot_date, portal_file.aliases_for(portal))
            except MetricsInvalid as invalid:
                raise dg.Failure(description=str(invalid), allow_retries=False) from None
        context.log.info(
            f"{portal_name} {snapshot_date}: {night.datasets} datasets assessed, "
            f"{night.metric_rows} metric values"
        )
        yield dg.MaterializeResult(
            asset_key=ASSESSMENTS, metadata={"dagster/row_count": night.datasets}
        )
        yield dg.MaterializeResult(asset_key=PLAN_METRICS, metadata=_plan_metrics_metadata(night))

    return [compute_plan_metrics]


def _plan_metrics_metadata(night: NightMetrics) -> dict[str, object]:
    """Row count, a small table of the headline values and the values as numbers Dagster
    plots, all rounded as the report prints them. A number's key names the portal, so its plot
    is that portal's alone: dots, one per night, between the other portals' partitions (the UI
    plots a key across every night x portal partition). `board_report`, partitioned by night
    alone, plots the same figures as one line per portal."""
    headline = [(name, *night.headline.get(name, (None, ""))) for name in HEADLINE_METRICS]
    table = markdown_table(
        ["metric", "id", "value"],
        [
            [name, metric_for(name).metric_id, metric_text(value, unit)]
            for name, value, unit in headline
        ],
    )
    return {
        "dagster/row_count": night.metric_rows,
        "portal_values": dg.MetadataValue.md(table),
        **{
            f"{night.portal}: {name}": metric_number(value, unit)
            for name, value, unit in headline
            if value is not None
        },
    }
