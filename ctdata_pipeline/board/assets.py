"""The board tables as assets: the work lists, the agency scorecard, the catalog's changes."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
from pydantic import Field

from ctdata_pipeline.board.after_night import (
    AFTER_PROBES,
    REPORT_AUTOMATION,
    nothing_stored_failure,
)
from ctdata_pipeline.board.publish import BoardInconsistent, publish_night
from ctdata_pipeline.board.readers_copy import CURRENT, board_relations, publish_readers_copy
from ctdata_pipeline.failures import failing_clearly
from ctdata_pipeline.metadata import column_schema, markdown_table
from ctdata_pipeline.metrics.assets import ASSESSMENTS, PLAN_METRICS
from ctdata_pipeline.partitions import expected_by, night_and_portal, nightly_date
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

READERS_COPY = dg.AssetKey("board_readers_copy")

NIGHT = {
    "snapshot_date": ("DATE", "The night (New York date of the harvest)."),
    "portal": ("VARCHAR", "Portal name from the portal file."),
}
DATASET = {
    "asset_id": ("VARCHAR", "The dataset's id on the portal."),
    "title": ("VARCHAR", "The dataset's title, as published."),
    "agency": (
        "VARCHAR",
        "Agency by the spec's rule (custom field, attribution, owner; DCAT: "
        "publisher), under its canonical name (agency_aliases: in the portal file); "
        "'(no agency)' when none.",
    ),
}
AS_PUBLISHED = {
    "agency_as_published": (
        "VARCHAR",
        "The agency as the catalog names it, before agency_aliases: (NULL when none).",
    ),
}
TABLES: dict[str, tuple[str, list, dict[str, tuple[str, str]]]] = {
    "missing_metadata": (
        "Work list: every in-scope dataset that fails MD-1 (missing metadata) or MD-2 (CT's "
        "metadata standard), with the fields it misses and a link to its page.",
        [ASSESSMENTS],
        {
            **NIGHT,
            **DATASET,
            "missing_fields": (
                "VARCHAR[]",
                "Every MD-2 requirement not met (MD-1's are among them).",
            ),
            "url": ("VARCHAR", "The dataset's page on the portal."),
            "fails_md1": ("BOOLEAN", "Counts toward MD-1, the plan's headline."),
            "fails_md2": ("BOOLEAN", "Does not meet CT's metadata standard."),
            "metadata_score": ("DOUBLE", "MD-4 score, 0-100."),
            **AS_PUBLISHED,
        },
    ),
    "stale_datasets": (
        "Work list: every in-scope dataset that is OVERDUE or DELINQUENT for its declared update "
        "frequency, ranked stale-but-popular first, with a link to its page.",
        [ASSESSMENTS],
        {
            **NIGHT,
            **DATASET,
            "update_frequency": ("VARCHAR", "Declared frequency, as an FR-0 code."),
            "data_updated_at": ("TIMESTAMPTZ", "Last data update (see timestamp_source)."),
            "age_days": ("DOUBLE", "Days from the last data update to the snapshot."),
            "freshness_state": ("VARCHAR", "OVERDUE or DELINQUENT."),
            "days_overdue": ("DOUBLE", "Age minus the promised period (FR-4)."),
            "views_last_month": ("BIGINT", "Page views in the last month."),
            "url": ("VARCHAR", "The dataset's page on the portal."),
            "stale_but_popular": ("BOOLEAN", "In the portal's top quartile of views (FR-9)."),
            "timestamp_source": ("VARCHAR", "Which timestamp gave the age (FR-1 fallbacks)."),
            "work_rank": ("INTEGER", "1 = first to fix."),
            **AS_PUBLISHED,
        },
    ),
    "agency_scorecard": (
        "GV-4: each agency's datasets, MD-1, MD-2, MD-4 mean score, MD-5 column coverage, FR-2, "
        "FR-3 and US-2, each with its n; agencies with at least 5 in-scope datasets ranked by "
        "MD-4.",
        [PLAN_METRICS],
        {
            **NIGHT,
            "agency": ("VARCHAR", "Agency, under its canonical name (agency_aliases:)."),
            "datasets": ("INTEGER", "In-scope datasets."),
            "md1_pct_missing_metadata": ("DOUBLE", "MD-1, percent (md1_n datasets)."),
            "md2_pct_meets_ct_standard": ("DOUBLE", "MD-2, percent (md2_n datasets)."),
            "md4_mean_metadata_score": ("DOUBLE", "MD-4 mean score (md4_n datasets)."),
            "md5_column_doc_coverage": ("DOUBLE", "MD-5 column coverage, percent (md5_n columns)."),
            "fr2_pct_stale": ("DOUBLE", "FR-2, percent (fr2_n scheduled datasets)."),
            "fr3_pct_freshness_unknown": ("DOUBLE", "FR-3, percent (fr3_n datasets)."),
            "us2_pct_unused": ("DOUBLE", "US-2, percent (us2_n datasets with view counts)."),
            "ranked": ("BOOLEAN", "At least 5 in-scope datasets."),
            "rank": ("INTEGER", "Rank by MD-4 mean score among ranked agencies."),
        },
    ),
    "catalog_changes": (
        "Every in-scope dataset added, removed, renamed or rekeyed (the same dataset under a new "
        "form of id) since the portal's previous snapshot (the rows INV-2 counts).",
        [dg.AssetKey("catalog_snapshot")],
        {
            **NIGHT,
            "asset_id": ("VARCHAR", "The dataset's id on the portal."),
            "change": ("VARCHAR", "added, removed, renamed or rekeyed."),
            "title": ("VARCHAR", "Title tonight (for removed: its last title)."),
            "agency": ("VARCHAR", "Agency, under its canonical name (agency_aliases:)."),
            "previous_title": ("VARCHAR", "Title in the previous snapshot."),
            "previous_date": ("DATE", "The previous snapshot's night."),
            **AS_PUBLISHED,
            "previous_asset_id": (
                "VARCHAR",
                "rekeyed: the id the dataset had in the previous snapshot (catalog/identity.py).",
            ),
        },
    ),
}


# Each board table column in words, for readers of the workbook (the CSV files and the tables
# keep the names above). plan_metrics' columns are described in metrics/assets.py.
COLUMN_HEADERS = {
    "snapshot_date": "Night",
    "portal": "Portal",
    "agency": "Agency",
    "agency_as_published": "Agency as published",
    "metric_id": "Metric id",
    "metric": "Metric",
    "numerator": "Numerator",
    "denominator": "Denominator",
    "value": "Value",
    "metric_version": "Definition version",
    "unit": "Unit",
    "note": "Note",
    "asset_id": "Dataset id",
    "title": "Title",
    "missing_fields": "Missing fields",
    "url": "Link",
    "fails_md1": "Missing metadata (MD-1)",
    "fails_md2": "Below CT's standard (MD-2)",
    "metadata_score": "Metadata score (MD-4)",
    "update_frequency": "Update frequency",
    "data_updated_at": "Data last updated (UTC)",
    "age_days": "Age in days",
    "freshness_state": "Freshness",
    "days_overdue": "Days overdue",
    "views_last_month": "Views last month",
    "stale_but_popular": "Stale but popular",
    "timestamp_source": "Age taken from",
    "work_rank": "Work order",
    "datasets": "Datasets",
    "md1_pct_missing_metadata": "Missing metadata % (MD-1)",
    "md1_n": "MD-1 datasets",
    "md2_pct_meets_ct_standard": "Meeting CT's standard % (MD-2)",
    "md2_n": "MD-2 datasets",
    "md4_mean_metadata_score": "Mean metadata score (MD-4)",
    "md4_n": "MD-4 datasets",
    "md5_column_doc_coverage": "Columns documented % (MD-5)",
    "md5_n": "MD-5 columns",
    "fr2_pct_stale": "Stale % (FR-2)",
    "fr2_n": "FR-2 datasets",
    "fr3_pct_freshness_unknown": "Freshness unknown % (FR-3)",
    "fr3_n": "FR-3 datasets",
    "us2_pct_unused": "Unused % (US-2)",
    "us2_n": "US-2 datasets",
    "ranked": "Ranked",
    "rank": "Rank",
    "change": "Change",
    "previous_title": "Previous title",
    "previous_date": "Previous night",
    "previous_asset_id": "Previous dataset id",
}


def build_board_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    specs = [
        dg.AssetSpec(
            table,
            group_name="board",
            deps=deps,
            description=description,
            kinds={"duckdb", "sql", "table"},
            metadata={
                "dagster/table_name": f"board.{table}",
                "dagster/column_schema": column_schema(columns),
            },
        )
        for table, (description, deps, columns) in TABLES.items()
    ]

    @dg.multi_asset(
        name="publish_board_tables",
        specs=specs,
        partitions_def=partitions_def,
        pool=DUCKDB_POOL,
    )
    def publish_board_tables(
        context: dg.AssetExecutionContext, portals: PortalList, warehouse: DuckDBWarehouse
    ) -> Iterator[dg.MaterializeResult]:
        """Write the night's board tables from its assessments and metrics; a table that does
        not add up to the metric it lists (stale_datasets = FR-2's OVERDUE + DELINQUENT, ...)
        fails the step and writes nothing."""
        snapshot_date, portal_name = night_and_portal(context)
        portal_file = portals.portal_file()
        aliases = portal_file.aliases_for(portal_file.get(portal_name))
        with warehouse.get_connection() as conn:
            try:
                night = publish_night(conn, portal_name, snapshot_date, aliases)
            except BoardInconsistent as inconsistent:
                raise dg.Failure(description=str(inconsistent), allow_retries=False) from None
        context.log.info(
            f"{portal_name} {snapshot_date}: "
            + ", ".join(f"board.{table} {rows} rows" for table, rows in night.rows.items())
        )
        for table, rows in night.rows.items():
            yield dg.MaterializeResult(asset_key=table, metadata={"dagster/row_count": rows})

    return [publish_board_tables]


class ReadersCopyFolder(dg.ConfigurableResource):
    """Where the readers' copy of the board tables is published (CTDATA_PUBLISH_DIR)."""

    directory: str = Field(description="Publish folder (CTDATA_PUBLISH_DIR).")

    def path(self) -> Path:
        return Path(self.directory)


def build_readers_copy_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=READERS_COPY,
        group_name="board",
        partitions_def=daily,
        deps=[PLAN_METRICS, *TABLES, *AFTER_PROBES],
        kinds={"duckdb", "parquet"},
        # It only reads the warehouse, but a read-only open still waits for a writer's lock.
        pool=DUCKDB_POOL,
        automation_condition=REPORT_AUTOMATION,
        freshness_policy=expected_by(5),
    )
    def board_readers_copy(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        readers_copy: ReadersCopyFolder,
    ) -> dg.MaterializeResult:
        """The board tables for everyone who reads them with a tool (the DuckDB CLI, DBeaver,
        a notebook, a BI dashboard): every night of every board table, and the metric trends,
        as one read-only DuckDB file (CTDATA_PUBLISH_DIR/ctdata_board.duckdb, the same
        `board.*` names as the warehouse) and a Parquet file per table (in `current/`). It is
        replaced whole after every night, so a reader sees the previous night or the new one,
        never half, and a reader holding it open never stops the nightly job."""
        night = nightly_date(context.partition_key)
        nothing_stored = nothing_stored_failure(warehouse.location)
        if not warehouse.exists():
            raise nothing_stored
        folder = readers_copy.path()
        with (
            warehouse.get_connection(read_only=True) as conn,
            failing_clearly("publish the readers' copy in", folder),
        ):
            if "plan_metrics" not in board_relations(conn):
                raise nothing_stored
            published = publish_readers_copy(conn, folder, night)
        context.log.info(
            f"Readers' copy of {night}: {published.database} "
            f"({published.database_bytes:,} bytes), Parquet in {published.folder}"
        )
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(published.database)),
                "parquet_folder": dg.MetadataValue.path(str(folder / CURRENT)),
                "version": published.folder.name,
                "database_bytes": published.database_bytes,
                "parquet_bytes": sum(published.parquet_bytes.values()),
                "tables": dg.MetadataValue.md(
                    markdown_table(
                        ["table", "rows", "Parquet bytes"],
                        [
                            [table, f"{rows:,}", f"{published.parquet_bytes[table]:,}"]
                            for table, rows in published.rows.items()
                        ],
                    )
                ),
                **{f"rows: {table}": rows for table, rows in published.rows.items()},
            }
        )

    return [board_readers_copy]
