"""The report asset: each night's board tables as files people read without tools."""

from pathlib import Path

import dagster as dg
from pydantic import Field

from ctdata_pipeline.board.after_night import (
    AFTER_PROBES,
    REPORT_AUTOMATION,
    board_tables_exist,
    nothing_stored_failure,
)
from ctdata_pipeline.failures import failing_clearly
from ctdata_pipeline.metadata import markdown_table, metric_number
from ctdata_pipeline.partitions import expected_by, nightly_date
from ctdata_pipeline.report.absence import absence_explainer
from ctdata_pipeline.report.data import HEADLINES, NightReport
from ctdata_pipeline.report.publish import PDF_FILE, publish_report
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

REPORT = dg.AssetKey("board_report")
BOARD_INPUTS = (
    "plan_metrics",
    "missing_metadata",
    "stale_datasets",
    "agency_scorecard",
    "catalog_changes",
)


class ReportFolder(dg.ConfigurableResource):
    """Where the reports are written (CTDATA_REPORT_DIR): a folder per night, `latest/`, and
    an index of every night."""

    directory: str = Field(description="Report folder (CTDATA_REPORT_DIR).")

    def path(self) -> Path:
        return Path(self.directory)


def build_report_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=REPORT,
        group_name="report",
        partitions_def=daily,
        deps=[*BOARD_INPUTS, *AFTER_PROBES],
        kinds={"html", "pdf", "excel", "csv"},
        pool=DUCKDB_POOL,
        automation_condition=REPORT_AUTOMATION,
        freshness_policy=expected_by(5),
    )
    def board_report(
        context: dg.AssetExecutionContext,
        warehouse: DuckDBWarehouse,
        reports: ReportFolder,
        portals: PortalList,
    ) -> dg.MaterializeResult:
        """The night's report to the DATA Board, for every portal: a page that opens from disk
        in any browser and prints (headline figures with their trends, the agency scorecard,
        the work lists with links to each dataset, how each number is computed), that page
        printed as report.pdf for a meeting packet (when Chromium is on the machine), one Excel
        workbook (a summary against the plan's targets, every board table, the metric
        definitions), and every board table as CSV, in `CTDATA_REPORT_DIR/<night>/` (with
        `latest/` and an index of every night). Its metadata plots each portal's headline
        figures night by night."""
        night = nightly_date(context.partition_key)
        nothing_stored = nothing_stored_failure(warehouse.location)
        # A first night whose every portal failed leaves no file, or one without board tables.
        if not warehouse.exists():
            raise nothing_stored
        with (
            warehouse.get_connection(read_only=True) as conn,
            failing_clearly("write the report in", reports.path()),
        ):
            if not board_tables_exist(conn):
                raise nothing_stored
            written = publish_report(
                conn,
                reports.path(),
                night,
                portals.portal_file(),
                why_absent=absence_explainer(context.instance, night),
            )
        context.log.info(f"Board report for {night}: {written.report}")
        if written.pdf_missing is not None:
            context.log.warning(f"Board report for {night}: no PDF: {written.pdf_missing}")
        return dg.MaterializeResult(
            metadata={
                # A path, not a file:// link: a browser does not follow file:// from a web page;
                # the UI copies the path, to paste in the address bar.
                "report": dg.MetadataValue.path(str(written.report.resolve())),
                "folder": dg.MetadataValue.path(str(written.folder.resolve())),
                "latest": written.latest,
                "pdf": (
                    dg.MetadataValue.path(str((written.folder / PDF_FILE).resolve()))
                    if written.pdf_missing is None
                    else f"no PDF: {written.pdf_missing}"
                ),
                "report_bytes": written.files["report.html"],
                "agency_pages": written.agency_pages,
                "files": dg.MetadataValue.md(
                    markdown_table(
                        ["file", "bytes"],
                        [[name, f"{size:,}"] for name, size in written.files.items()],
                    )
                ),
                **{f"rows: {table}": rows for table, rows in written.rows.items()},
                **headline_numbers(written.shown),
            }
        )

    return [board_report]


def headline_numbers(shown: NightReport) -> dict[str, dg.MetadataValue]:
    """`<portal>: <metric>` -> the portal-wide value, rounded, for every headline figure of the
    report: one metadata key per portal, so the UI's plot of a key is one portal's line across
    nights (this asset's partitions are nights alone)."""
    return {
        f"{portal.name}: {metric}": metric_number(stored.value, stored.unit)
        for portal in shown.portals
        for metric, _ in HEADLINES
        if (stored := portal.values.get(metric)) is not None and stored.value is not None
    }
