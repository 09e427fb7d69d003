"""The meeting packet: report.pdf read back with pdftotext (its headlines, page numbers and
charts), the workbook read back with openpyxl (a table per sheet, headers in words, links on web
addresses, a summary against the plan's targets equal to the board tables, the metric
definitions), and a report without Chromium that is still published and says why."""

import html
import re
import subprocess
from datetime import UTC, timedelta
from pathlib import Path

import dagster as dg
import openpyxl
import pikepdf
import pytest
from openpyxl.utils import get_column_letter

from ctdata_pipeline.board.assets import COLUMN_HEADERS
from ctdata_pipeline.demo.portals import DEMO_SOCRATA, demo_portal_file
from ctdata_pipeline.jobs import REPORT_JOB
from ctdata_pipeline.metrics.definitions import METRICS, metric_for
from ctdata_pipeline.metrics.targets import judge, movement
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.report.assets import REPORT
from ctdata_pipeline.report.data import (
    BOARD_TABLES,
    HEADLINES,
    PROBE_BOARD_TABLES,
    format_value,
)
from ctdata_pipeline.report.pdf import CHROMIUM_ENV
from ctdata_pipeline_tests.support import Pipeline, portal_entry, query, serve, socrata_record

TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
PAGE_NUMBER = re.compile(r"Page (\d+) of (\d+)")
# Horizontal chart text (tick labels, line labels): matplotlib writes rotate(-0 ...) on each.
CHART_TEXT = re.compile(r'<text [^>]*transform="rotate\(-0 [^>]*>([^<]+)</text>')


def pdf_text(path: Path, *options: str) -> str:
    completed = subprocess.run(
        ["pdftotext", *options, str(path), "-"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def words(text: str) -> str:
    return " ".join(text.split())


def night_folder(demo_run) -> Path:
    return demo_run.folder / "reports" / today_in_new_york().isoformat()


def portal_values(db: Path, night) -> dict[tuple[str, str], tuple]:
    """(portal, metric) -> (value, unit, metric_id) of every portal-wide metric of the night."""
    rows = query(
        db,
        "SELECT portal, metric, value, unit, metric_id FROM board.plan_metrics "
        "WHERE agency IS NULL AND snapshot_date = ?",
        [night],
    )
    return {(portal, metric): (value, unit, mid) for portal, metric, value, unit, mid in rows}


def test_the_pdf_holds_every_headline_on_numbered_pages_with_its_charts(demo_run):
    night = today_in_new_york()
    folder = night_folder(demo_run)
    pdf = folder / "report.pdf"
    layout = pdf_text(pdf, "-layout")
    flowing = words(layout)
    db = demo_run.folder / "data" / "ctdata.duckdb"
    shown = [
        format_value(value, unit)
        for (_, metric), (value, unit, _) in portal_values(db, night).items()
        if metric in dict(HEADLINES) and value is not None
    ]
    assert len(shown) >= len(HEADLINES)  # every portal's headlines, not none
    assert [figure for figure in shown if figure not in flowing] == []
    # A work list folded on the page does not print: the packet says where its rows are.
    [[md1_datasets]] = query(
        db,
        "SELECT numerator FROM board.plan_metrics WHERE agency IS NULL AND snapshot_date = ? "
        "AND metric = 'pct_missing_metadata' AND portal = ?",
        [night, DEMO_SOCRATA],
    )
    assert (
        f"The {md1_datasets:.0f} datasets are listed, with what to fix, on this report's web page"
        in flowing
    )

    with pikepdf.open(pdf) as opened:
        pages = len(opened.pages)
        [harvested] = query(
            db, "SELECT max(snapshot_time) FROM catalog.snapshots WHERE snapshot_date = ?", [night]
        )
        stamp = harvested[0].astimezone(UTC).strftime("D:%Y%m%d%H%M%S")
        assert str(opened.docinfo["/CreationDate"]).startswith(stamp)  # the data's time
        assert str(opened.docinfo["/ModDate"]) == str(opened.docinfo["/CreationDate"])
    assert pages > 1
    numbers = [(int(n), int(m)) for n, m in PAGE_NUMBER.findall(layout)]
    assert numbers == [(n, pages) for n in range(1, pages + 1)]  # on every page, in order
    # Chromium's own header and footer (the file's path, the date) are off, and no link points
    # into the scratch folder the page was printed from.
    assert "report.html" not in layout and ".partial-" not in layout
    assert b"file:" not in pdf.read_bytes()

    page = (folder / "report.html").read_text(encoding="utf-8")
    chart_text = {words(html.unescape(text)) for text in CHART_TEXT.findall(page)}
    assert {"0", "25", "50", "75", "100"} <= chart_text  # a percentage axis's tick labels
    assert sorted(text for text in chart_text if text not in flowing) == []


def test_the_workbook_has_a_table_per_sheet_with_headers_in_words_and_links(demo_run):
    night = today_in_new_york()
    db = demo_run.folder / "data" / "ctdata.duckdb"
    workbook = openpyxl.load_workbook(night_folder(demo_run) / "board.xlsx")
    # The probe tables (metrics v2) follow the board tables once the warehouse has them.
    probe_sheets = [t for t in PROBE_BOARD_TABLES if t in workbook.sheetnames]
    assert workbook.sheetnames == ["Summary", *BOARD_TABLES, *probe_sheets, "Definitions"]
    names = []
    for sheet in workbook:
        [table] = sheet.tables.values()
        name = table.displayName
        names.append(name)
        assert TABLE_NAME.match(name) and not re.match(r"^[A-Za-z]{1,3}\d+$", name)
        header = [cell.value for cell in sheet[1]]
        last = get_column_letter(len(header))
        assert table.ref == f"A1:{last}{max(sheet.max_row, 2)}"
        assert [column.name for column in table.tableColumns] == header
        assert table.tableStyleInfo.name and sheet.freeze_panes == "A2"
    assert len(set(names)) == len(names)

    linked_urls = 0
    for table in BOARD_TABLES:
        columns = [row[0] for row in query(db, f"DESCRIBE board.{table}")]
        assert set(columns) <= set(COLUMN_HEADERS), table  # every column has its words
        sheet = workbook[table]
        assert [cell.value for cell in sheet[1]] == [COLUMN_HEADERS[c] for c in columns]
        (count,) = query(db, f"SELECT count(*) FROM board.{table} WHERE snapshot_date = ?", [night])
        assert sheet.max_row == count[0] + 1
        for row in sheet.iter_rows(min_row=2):
            for cell in row:
                # Any web address is a link (a DCAT identifier too); nothing else is.
                web = isinstance(cell.value, str) and cell.value.startswith(("http://", "https://"))
                if web:
                    assert cell.hyperlink is not None and cell.hyperlink.target == cell.value
                    linked_urls += columns[cell.column - 1] == "url"
                else:
                    assert cell.hyperlink is None
    (urls,) = query(
        db,
        "SELECT (SELECT count(*) FROM board.missing_metadata WHERE snapshot_date = $1 "
        "AND regexp_matches(url, '^https?://')) + (SELECT count(*) FROM board.stale_datasets "
        "WHERE snapshot_date = $1 AND regexp_matches(url, '^https?://'))",
        [night],
    )
    assert linked_urls == urls[0] > 0

    definitions = workbook["Definitions"]
    listed = [row[0] for row in definitions.iter_rows(min_row=2, values_only=True)]
    assert listed == [metric.metric_id for metric in METRICS]
    better = {row[0]: row[6] for row in definitions.iter_rows(min_row=2, values_only=True)}
    assert better["MD-1"] == "Lower is better" and better["MD-2"] == "Higher is better"


def test_the_summary_sheet_equals_the_board_tables_and_judges_the_targets(demo_run):
    night = today_in_new_york()
    db = demo_run.folder / "data" / "ctdata.duckdb"
    targets = demo_portal_file(last_night=night).targets
    assert set(targets) == {"MD-1"}
    tonight = portal_values(db, night)
    previous = dict(
        query(
            db,
            "SELECT portal, max(snapshot_date) FROM board.plan_metrics "
            "WHERE agency IS NULL AND snapshot_date < ? GROUP BY portal",
            [night],
        )
    )
    workbook = openpyxl.load_workbook(night_folder(demo_run) / "board.xlsx")
    sheet = workbook["Summary"]
    header = [cell.value for cell in sheet[1]]
    rows = [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(2, values_only=True)]
    labels = dict(HEADLINES)
    expected = {
        (portal, labels[metric]): stored
        for (portal, metric), stored in tonight.items()
        if metric in labels
    }
    assert {(row["Portal"], row["Headline"]) for row in rows} == set(expected)
    verdicts = set()
    for row in rows:
        value, unit, metric_id = expected[(row["Portal"], row["Headline"])]
        # Excel keeps 15 significant digits.
        assert row["Value"] == (value if value is None else pytest.approx(value, rel=1e-14))
        assert (row["Unit"], row["Metric id"]) == (unit, metric_id)
        metric = next(m for m, label in HEADLINES if label == row["Headline"])
        target = targets.get(metric_id)
        if target is None:
            assert row["Met or not"] == row["Target"] == "no target"
        else:
            assert row["Target"] == "under 20%"
            assert row["Met or not"] == ("met" if value < 20 else "not met")
            assert row["Against the target"] == judge(target, value, unit).words
            verdicts.add(row["Met or not"])
        before_night = previous.get(row["Portal"])
        before = query(
            db,
            "SELECT value FROM board.plan_metrics WHERE agency IS NULL AND portal = ? "
            "AND metric = ? AND snapshot_date = ?",
            [row["Portal"], metric, before_night],
        )
        assert metric_for(metric).metric_id == metric_id
        moved = movement(
            metric_id, value, before[0][0] if before else None, before_night, unit, target
        )
        assert row["Since the night before"] == (moved or None)  # an empty cell: not measured
    assert verdicts  # MD-1 is judged
    value_column = header.index("Value") + 1
    formats = {
        sheet.cell(n, value_column).number_format
        for n in range(2, sheet.max_row + 1)
        if sheet.cell(n, header.index("Unit") + 1).value == "percent"
    }
    assert formats == {'0.0"%"'}


@pytest.fixture
def one_portal(tmp_path, instance, today):
    """A Socrata portal's night with one dataset linked by a web address and one by a
    javascript: address, stored and ready for its report."""
    records = [
        socrata_record(
            f"lnk0-000{n}", license=None, data_updated_at=f"{today - timedelta(days=3)}T00:00:00Z"
        )
        for n in range(2)
    ]
    records[0]["link"] = records[0]["permalink"] = "https://data.ct.gov/d/lnk0-0000"
    records[1]["link"] = records[1]["permalink"] = "javascript:alert('link')"
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    return pipeline


def test_only_web_addresses_are_links_in_the_workbook(one_portal, tmp_path, instance, today):
    job = one_portal.defs.resolve_job_def(REPORT_JOB)
    assert job.execute_in_process(partition_key=today.isoformat(), instance=instance).success
    workbook = openpyxl.load_workbook(tmp_path / "reports" / today.isoformat() / "board.xlsx")
    sheet = workbook["missing_metadata"]
    link = [cell.value for cell in sheet[1]].index(COLUMN_HEADERS["url"]) + 1
    cells = {sheet.cell(row, link).value: sheet.cell(row, link) for row in range(2, 4)}
    assert set(cells) == {"https://data.ct.gov/d/lnk0-0000", "javascript:alert('link')"}
    assert cells["https://data.ct.gov/d/lnk0-0000"].hyperlink.target == (
        "https://data.ct.gov/d/lnk0-0000"
    )
    assert cells["javascript:alert('link')"].hyperlink is None
    for sheet in workbook:
        assert not [c.coordinate for row in sheet.iter_rows() for c in row if c.data_type == "f"]


def test_without_chromium_the_report_is_published_without_its_pdf_and_says_why(
    one_portal, tmp_path, instance, today, monkeypatch, caplog
):
    missing = tmp_path / "no-such-chromium"
    monkeypatch.setenv(CHROMIUM_ENV, str(missing))
    job = one_portal.defs.resolve_job_def(REPORT_JOB)
    result = job.execute_in_process(partition_key=today.isoformat(), instance=instance)
    assert result.success
    folder = tmp_path / "reports" / today.isoformat()
    assert {p.name for p in folder.iterdir()} >= {"report.html", "board.xlsx", "plan_metrics.csv"}
    assert not (folder / "report.pdf").exists()
    assert not (tmp_path / "reports" / "latest" / "report.pdf").exists()
    [materialization] = [
        m for m in result.asset_materializations_for_node("board_report") if m.asset_key == REPORT
    ]
    reason = f"{CHROMIUM_ENV}={missing} is not an executable file"
    assert materialization.metadata["pdf"] == dg.TextMetadataValue(f"no PDF: {reason}")
    assert [r.getMessage() for r in caplog.records if "report.pdf" in r.getMessage()] == [
        f"report.pdf not written: {reason}"
    ]
