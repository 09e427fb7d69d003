"""The agency pages and the split work lists of `ctdata demo`'s report, opened from disk in
headless Chromium: counts that equal the board tables and the headlines they explain, tables
sortable by click and by keyboard and filterable, every row there without script, no sideways
overflow at a phone's, a tablet's and a desk's width, axe-core's checks, and agency names that
cannot escape their folder or their text."""

import csv
import re
from datetime import timedelta
from pathlib import Path

import pytest

from ctdata_pipeline.demo.portals import DEMO_SOCRATA
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.report.agencies import agency_slugs
from ctdata_pipeline_tests.support import (
    Pipeline,
    portal_entry,
    query,
    serious_accessibility_problems,
    serve,
    socrata_record,
)
from ctdata_pipeline_tests.test_report import Opened

BOTH_PORTALS = "Department of Energy and Environmental Protection"  # on both demo portals
WIDTHS = (390, 768, 1400)


def night_folder(demo_run) -> Path:
    return demo_run.folder / "reports" / today_in_new_york().isoformat()


def db(demo_run) -> Path:
    return demo_run.folder / "data" / "ctdata.duckdb"


def numerators(demo_run, agency: str | None) -> dict[tuple[str, str], float]:
    """(portal, metric) -> numerator; for MD-2, the datasets NOT meeting it."""
    agency_test = "agency IS NULL" if agency is None else "agency = ?"
    rows = query(
        db(demo_run),
        "SELECT portal, metric, numerator, denominator FROM board.plan_metrics "
        f"WHERE snapshot_date = ? AND {agency_test} AND metric IN "
        "('pct_missing_metadata', 'pct_meets_ct_standard', 'pct_stale')",
        [today_in_new_york()] + ([agency] if agency else []),
    )
    return {
        (portal, metric): denominator - numerator
        if metric == "pct_meets_ct_standard"
        else numerator
        for portal, metric, numerator, denominator in rows
    }


def sections(page) -> list[dict]:
    """Per portal section: its name and, per work list, the heading's count and the rows."""
    return page.eval_on_selector_all(
        "main > section[id^=portal-]",
        """nodes => nodes.map(s => {
            const list = key => {
                const h = s.querySelector('#' + s.id + '-' + key);
                const t = s.querySelector('#' + s.id + '-' + {missing: 'md1', short: 'md2',
                    stale: 'stale', silent: 'silent', broken: 'broken'}[key] + '-table');
                return {heading: h ? h.textContent : null,
                        rows: t ? t.tBodies[0].rows.length : 0};
            };
            return {title: s.querySelector('h2').textContent,
                    md1: list('missing'), md2: list('short'), stale: list('stale'),
                    silent: list('silent'), broken: list('broken')};
        })""",
    )


def count_in(heading: str) -> int:
    return int(re.search(r"\((\d[\d,]*)\)$", heading).group(1).replace(",", ""))


def test_main_page_work_lists_count_what_their_headlines_count(demo_run, browser):
    opened = Opened(browser, night_folder(demo_run) / "report.html")
    page = opened.page
    assert opened.console == []
    counted = numerators(demo_run, None)
    found = sections(page)
    portals = {portal for portal, _ in counted}
    assert len(found) == len(portals) == 2
    for position, section in enumerate(found, 1):
        portal = section["title"]
        for key in ("md1", "md2", "stale"):
            heading = count_in(section[key]["heading"])
            assert heading == section[key]["rows"], (portal, key)
        # MD-1's list is MD-1's numerator; FR-2's is FR-2's; the MD-2 failures are both lists'
        # datasets that fail MD-2.
        assert count_in(section["md1"]["heading"]) == counted[(portal, "pct_missing_metadata")]
        assert count_in(section["stale"]["heading"]) == counted[(portal, "pct_stale")]
        [[also_md1]] = query(
            db(demo_run),
            "SELECT count(*) FROM board.missing_metadata WHERE snapshot_date = ? AND portal = ? "
            "AND fails_md1 AND fails_md2",
            [today_in_new_york(), portal],
        )
        failing = counted[(portal, "pct_meets_ct_standard")]
        assert also_md1 + count_in(section["md2"]["heading"]) == failing
        sentence = f"{failing:,.0f} in-scope datasets do not meet CT's standard"
        assert sentence in page.inner_text(f"#portal-{position}")

    # The DCAT feed publishes no view counts: its stale datasets are not "not popular".
    [[portal]] = query(
        db(demo_run),
        "SELECT portal FROM board.stale_datasets WHERE snapshot_date = ? "
        "GROUP BY portal HAVING count(views_last_month) = 0",
        [today_in_new_york()],
    )
    index = [s["title"] for s in found].index(portal) + 1
    popular = page.eval_on_selector_all(
        f"#portal-{index}-stale-table tbody tr td:last-child",
        "cells => cells.map(c => c.textContent)",
    )
    assert popular and set(popular) == {"n/a"}
    assert "publishes no view counts" in page.inner_text(f"#portal-{index}")

    # A long list is one click away; its dates never wrap, even at a phone's width.
    assert page.locator("details.worklist-rows:not([open])").count() >= 3
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    page.set_viewport_size({"width": 390, "height": 900})
    heights = page.eval_on_selector_all(
        "td.date time",
        "ts => ts.map(t => [t.getBoundingClientRect().height,"
        " parseFloat(getComputedStyle(t).lineHeight) || 20])",
    )
    assert heights and all(0 < height <= line * 1.5 for height, line in heights)
    page.close()


def test_every_agency_has_a_page_linked_from_the_scorecard_and_the_index(demo_run, browser):
    folder = night_folder(demo_run)
    agencies = {
        agency
        for (agency,) in query(
            db(demo_run),
            "SELECT DISTINCT agency FROM board.agency_scorecard WHERE snapshot_date = ?",
            [today_in_new_york()],
        )
    }
    slugs = agency_slugs(sorted(agencies))
    pages = {p.name for p in (folder / "agencies").glob("*.html")}
    assert pages == {f"{slug}.html" for slug in slugs.values()} | {"index.html"}
    assert (folder / "agencies" / "index.html").read_bytes() == (
        demo_run.folder / "reports" / "latest" / "agencies" / "index.html"
    ).read_bytes()

    opened = Opened(browser, folder / "report.html")
    links = opened.page.eval_on_selector_all(
        "table[id$=ranked] tbody th a, table[id$=unranked] tbody th a",
        "nodes => nodes.map(n => [n.textContent, n.getAttribute('href')])",
    )
    assert {name for name, _ in links} == agencies
    assert all(href == f"agencies/{slugs[name]}.html" for name, href in links)
    assert "agencies/index.html" in opened.page.eval_on_selector_all(
        "nav a", "nodes => nodes.map(n => n.getAttribute('href'))"
    )
    opened.page.close()

    index = Opened(browser, folder / "agencies" / "index.html")
    assert index.console == []
    rows = index.page.eval_on_selector_all(
        "#agency-table tbody tr",
        "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent,"
        " r.cells[0].querySelector('a').getAttribute('href')])",
    )
    [[scorecard_rows]] = query(
        db(demo_run),
        "SELECT count(*) FROM board.agency_scorecard WHERE snapshot_date = ?",
        [today_in_new_york()],
    )
    assert len(rows) == scorecard_rows
    assert {name for name, _, _ in rows} == agencies
    assert all((folder / "agencies" / href).is_file() for _, _, href in rows)
    # The demo's aliases reconcile every agency but the DMV, whose two names the rule lists.
    variants = index.page.eval_on_selector_all(
        "#variants li", "items => items.map(i => i.innerText)"
    )
    assert variants == ["Department of Motor Vehicles; DMV"]
    index.page.close()


def test_an_agency_page_counts_its_rows_in_the_board_tables(demo_run, browser):
    night = today_in_new_york()
    folder = night_folder(demo_run) / "agencies"
    slug = agency_slugs([BOTH_PORTALS])[BOTH_PORTALS]
    opened = Opened(browser, folder / f"{slug}.html")
    page = opened.page
    assert opened.console == []
    found = sections(page)
    counted = numerators(demo_run, BOTH_PORTALS)
    assert len(found) == 2  # one page, a section per portal
    for position, section in enumerate(found, 1):
        portal = section["title"].removeprefix(f"{BOTH_PORTALS} on ")
        [[md1_rows, md2_only_rows]] = query(
            db(demo_run),
            "SELECT count(*) FILTER (WHERE fails_md1), count(*) FILTER (WHERE NOT fails_md1) "
            "FROM board.missing_metadata WHERE snapshot_date = ? AND portal = ? AND agency = ?",
            [night, portal, BOTH_PORTALS],
        )
        [[stale_rows]] = query(
            db(demo_run),
            "SELECT count(*) FROM board.stale_datasets WHERE snapshot_date = ? AND portal = ? "
            "AND agency = ?",
            [night, portal, BOTH_PORTALS],
        )
        for key, expected in (("md1", md1_rows), ("md2", md2_only_rows), ("stale", stale_rows)):
            assert count_in(section[key]["heading"]) == section[key]["rows"] == expected
        assert md1_rows == counted[(portal, "pct_missing_metadata")]
        assert stale_rows == counted[(portal, "pct_stale")]

        # Freshness: every state's count is the agency's FR-1 row.
        states = dict(
            query(
                db(demo_run),
                "SELECT replace(metric, 'freshness_state:', ''), value FROM board.plan_metrics "
                "WHERE snapshot_date = ? AND portal = ? AND agency = ? "
                "AND metric LIKE 'freshness_state:%'",
                [night, portal, BOTH_PORTALS],
            )
        )
        shown = dict(
            page.eval_on_selector_all(
                f"#portal-{position}-freshness-table tbody tr",
                "rows => rows.map(r => [r.dataset.state, r.cells[1].textContent])",
            )
        )
        assert {"FRESH", "DUE", "OVERDUE", "DELINQUENT", "UNKNOWN"} <= set(shown)
        assert shown == {state: f"{value:,.0f}" for state, value in states.items()}

        # MD-1 judged against the demo's target in the words of metrics/targets.py.
        md1 = page.inner_text(f"#portal-{position}-figures-table tr[data-metric-id='MD-1']")
        assert "the plan's target (under 20%)" in md1
        # Trends: a row per night the agency was measured.
        [[nights]] = query(
            db(demo_run),
            "SELECT count(DISTINCT snapshot_date) FROM board.plan_metrics WHERE portal = ? "
            "AND agency = ? AND snapshot_date <= ?",
            [portal, BOTH_PORTALS, night],
        )
        assert page.locator(f"#portal-{position}-trend-table tbody tr").count() == nights > 1

    # Each dataset links to its page; the CSV holds every work-list row, on both portals.
    links = page.eval_on_selector_all("table.work tbody a[href]", "nodes => nodes.map(n => n.href)")
    assert links and all(link.startswith(("http://", "https://")) for link in links)
    with (folder / f"{slug}.csv").open(encoding="utf-8", newline="") as handle:
        written = list(csv.DictReader(handle))
    lists = ("md1", "md2", "stale", "silent", "broken")  # with the probe lists (metrics v2)
    assert len(written) == sum(s[k]["rows"] for s in found for k in lists)
    assert all(row["what_to_fix"] for row in written)
    assert {row["portal"] for row in written} == {
        s["title"].removeprefix(f"{BOTH_PORTALS} on ") for s in found
    }
    page.close()


def sorted_column(page, table: str, column: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr",
        f"rows => rows.map(r => r.cells[{column}].getAttribute('data-sort')"
        f" ?? r.cells[{column}].textContent)",
    )


def test_tables_sort_by_click_and_keyboard_and_filter_by_text(demo_run, browser):
    opened = Opened(browser, night_folder(demo_run) / "report.html")
    page = opened.page
    table = "portal-1-stale-table"
    page.locator(f"details:has(#{table}) > summary").focus()
    page.keyboard.press("Enter")  # the long list opens from the keyboard
    header = page.locator(f"#{table} thead th").nth(6)  # days overdue
    assert "Days overdue" in header.inner_text()
    header.get_by_role("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    days = [float(v) for v in sorted_column(page, table, 6)]
    assert days == sorted(days) and days[0] < days[-1]
    header.get_by_role("button").focus()
    page.keyboard.press("Enter")
    assert header.get_attribute("aria-sort") == "descending"
    assert [float(v) for v in sorted_column(page, table, 6)] == sorted(days, reverse=True)
    page.keyboard.press("Space")
    assert header.get_attribute("aria-sort") == "ascending"
    # Only one column is sorted at a time.
    assert page.locator(f"#{table} thead th[aria-sort]").count() == 1

    # The filter box, reached by keyboard, keeps the rows naming an agency.
    rows = page.locator(f"#{table} tbody tr")
    total = rows.count()
    agency = rows.nth(0).locator("td").nth(2).inner_text().split("\n")[0]
    expected = sum(
        1
        for text in rows.evaluate_all("rs => rs.map(r => r.cells[2].textContent)")
        if agency.lower() in text.lower()
    )
    box = page.locator(f"input[aria-controls={table}]")
    box.focus()
    page.keyboard.type(agency)
    visible = page.locator(f"#{table} tbody tr:not([hidden])")
    assert 0 < visible.count() == expected < total
    assert all(agency in text for text in visible.all_inner_texts())
    status = page.locator(f"#{table}").locator("xpath=../preceding-sibling::div[1]")
    assert status.get_by_role("status").inner_text() == f"Showing {expected} of {total} rows."
    box.fill("")
    assert visible.count() == total
    page.close()


def test_without_javascript_every_row_is_there(demo_run, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    slug = agency_slugs([BOTH_PORTALS])[BOTH_PORTALS]
    page.goto((night_folder(demo_run) / "agencies" / f"{slug}.html").resolve().as_uri())
    assert page.locator("button.sort, .table-tools").count() == 0
    for section in sections(page):
        for key in ("md1", "md2", "stale"):
            assert section[key]["rows"] == count_in(section[key]["heading"])
    page.goto((night_folder(demo_run) / "report.html").resolve().as_uri())
    [[missing]] = query(
        db(demo_run),
        "SELECT count(*) FROM board.missing_metadata WHERE snapshot_date = ?",
        [today_in_new_york()],
    )
    shown = page.locator("table[id$=md1-table] tbody tr, table[id$=md2-table] tbody tr").count()
    assert shown == missing
    context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_agency_pages_fit_every_width(demo_run, browser, width):
    folder = night_folder(demo_run) / "agencies"
    slug = agency_slugs([BOTH_PORTALS])[BOTH_PORTALS]
    for name in (f"{slug}.html", "index.html"):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto((folder / name).resolve().as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= width, name
        # A table wider than the page scrolls in its own box, which the keyboard can reach.
        boxes = page.eval_on_selector_all(
            ".scroll",
            "bs => bs.map(b => [b.tabIndex, b.getAttribute('role'),"
            " !!document.getElementById(b.getAttribute('aria-labelledby'))])",
        )
        assert boxes and all(box == [0, "region", True] for box in boxes)
        if name != "index.html":
            # The agency's own figures and freshness fit the screen: nothing to scroll there.
            for table in ("table.agency-figures", "table.freshness"):
                assert page.evaluate(
                    f"[...document.querySelectorAll('{table}')]"
                    ".every(t => t.parentNode.scrollWidth <= t.parentNode.clientWidth)"
                ), (name, table)
        page.close()


def test_axe_finds_nothing_serious_on_an_agency_page_and_the_index(demo_run, browser):
    folder = night_folder(demo_run) / "agencies"
    slug = agency_slugs([BOTH_PORTALS])[BOTH_PORTALS]
    for name in (f"{slug}.html", "index.html"):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((folder / name).resolve().as_uri())
        assert serious_accessibility_problems(page) == [], name
        page.close()


HOSTILE_AGENCIES = (
    "../../etc/passwd",
    # Markup is stripped when a catalog is normalized; written as entities it stays as text.
    "&lt;script&gt;alert('agency')&lt;/script&gt;",
    "&lt;img src=x onerror=alert(1)&gt;",
    "Département de l’Énergie",
    "東京都",
    "A" * 300,
    "Index",
    "CT DEEP",
    "CT-DEEP",
    "***",
)


def test_agency_slugs_are_safe_stable_and_unique():
    slugs = agency_slugs(list(HOSTILE_AGENCIES))
    assert len(set(slugs.values())) == len(HOSTILE_AGENCIES)
    for slug in slugs.values():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", slug) and len(slug) <= 60, slug
        assert slug != "index"
    assert slugs["Département de l’Énergie"] == "departement-de-lenergie"
    assert agency_slugs(list(reversed(HOSTILE_AGENCIES))) == slugs  # order does not matter


def test_hostile_agency_names_make_safe_files_and_escaped_pages(tmp_path, instance, today, browser):
    records = [
        socrata_record(
            f"agc0-{n:04d}",
            title=f"=1+1 dataset {n}",
            agency=name,
            license=None,
            frequency="Daily",
            data_updated_at=f"{today - timedelta(days=40)}T00:00:00.000Z",
        )
        for n, name in enumerate(HOSTILE_AGENCIES)
    ]
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    pipeline.report_ok(instance, today)
    reports = tmp_path / "reports"
    folder = reports / today.isoformat() / "agencies"
    stored = [
        agency
        for (agency,) in query(
            pipeline.db_path, "SELECT DISTINCT agency FROM board.agency_scorecard", []
        )
    ]
    assert "<script>alert('agency')</script>" in stored and "../../etc/passwd" in stored
    slugs = agency_slugs(stored)
    assert {p.name for p in folder.iterdir()} == {
        f"{slug}.{ext}" for slug in slugs.values() for ext in ("html", "csv")
    } | {"index.html"}
    # Nothing was written outside the report folder's own files.
    assert not (tmp_path / "etc").exists() and not (reports / "etc").exists()

    for name, slug in [("index", "index"), *sorted(slugs.items())]:
        opened = Opened(browser, folder / f"{slug}.html")
        page = opened.page
        assert opened.dialogs == [] and opened.console == [], name
        assert page.evaluate("document.querySelectorAll('img, [onerror]').length") == 0
        assert page.evaluate("[...document.scripts].every(s => !s.src)")
        assert page.evaluate("document.scripts.length") == 1
        if name != "index":
            assert page.inner_text("h1") == name  # shown as the text it is
        page.close()
    with (folder / f"{slugs[stored[0]]}.csv").open(encoding="utf-8", newline="") as handle:
        titles = [row["title"] for row in csv.DictReader(handle)]
    assert titles and all(title.startswith("'=1+1 dataset") for title in titles)


def test_an_agency_page_names_the_variants_its_aliases_grouped(demo_run, browser):
    """The demo's aliases group DEEP's names under one agency: its page says under which names
    it published, and each work-list row published under another name says which."""
    night = today_in_new_york()
    raw_names = [
        name
        for (name,) in query(
            db(demo_run),
            "SELECT DISTINCT agency_as_published FROM metrics.datasets WHERE portal = ? "
            "AND snapshot_date = ? AND agency = ? AND agency_as_published <> agency ORDER BY 1",
            [DEMO_SOCRATA, night, BOTH_PORTALS],
        )
    ]
    [[renamed]] = query(
        db(demo_run),
        "SELECT count(*) FROM board.missing_metadata WHERE portal = ? AND snapshot_date = ? "
        "AND agency = ? AND agency_as_published <> agency AND fails_md1",
        [DEMO_SOCRATA, night, BOTH_PORTALS],
    )
    assert raw_names and renamed > 0
    slug = agency_slugs([BOTH_PORTALS])[BOTH_PORTALS]
    opened = Opened(browser, night_folder(demo_run) / "agencies" / f"{slug}.html")
    page = opened.page
    assert f"Published as: {', '.join(raw_names)}." in page.inner_text("#portal-1 .meta")
    shown = page.locator("#portal-1-md1-table tbody tr", has_text="published as")
    assert shown.count() == renamed
    page.close()
