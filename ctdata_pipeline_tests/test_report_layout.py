"""The Board report for its readers: `ctdata demo`'s page in Chromium at a phone's, a tablet's
and a desk's width (nothing scrolls sideways), its headlines judged against the portal file's
targets in words, local times with UTC on hover, the portal's public address, plain names in
the method tables, an index of every night, why a portal has no snapshot, and axe-core's
accessibility rules."""

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ctdata_pipeline.demo.portals import demo_portal_file
from ctdata_pipeline.metrics.definitions import metric_label
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.report.data import BOARD_TABLES
from ctdata_pipeline_tests.support import (
    Pipeline,
    portal_entry,
    query,
    serious_accessibility_problems,
    serve,
    socrata_catalog,
    socrata_record,
)

WIDTHS = (390, 768, 1400)
NEW_YORK = ZoneInfo("America/New_York")


def open_page(browser, path: Path, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page


def demo_report(demo_run) -> Path:
    return demo_run.folder / "reports" / today_in_new_york().isoformat() / "report.html"


def demo_db(demo_run) -> Path:
    return demo_run.folder / "data" / "ctdata.duckdb"


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_scrolls_sideways_at_any_width(demo_run, browser, width):
    page = open_page(browser, demo_report(demo_run), width)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate("document.body.scrollWidth") <= width
    # Wide tables scroll inside a box a keyboard can reach and a screen reader names.
    boxes = page.eval_on_selector_all(
        ".scroll",
        """nodes => nodes.map(n => ({role: n.getAttribute('role'), tab: n.getAttribute('tabindex'),
            label: n.getAttribute('aria-label')
                || document.getElementById(n.getAttribute('aria-labelledby'))?.textContent,
            table: !!n.querySelector('table'),
            right: n.getBoundingClientRect().right}))""",
    )
    assert len(boxes) > 10
    for box in boxes:
        assert box["role"] == "region" and box["tab"] == "0" and box["label"] and box["table"]
        assert box["right"] <= width
    # Every table outside a card's closed chart numbers sits in such a box.
    assert page.evaluate("[...document.querySelectorAll('table')].every(t => t.closest('.scroll'))")
    # A time never breaks across lines ("2026-/07-30").
    assert page.evaluate(
        "[...document.querySelectorAll('time')].every(t => t.getClientRects().length === 1 "
        "&& t.getBoundingClientRect().height < 2 * parseFloat(getComputedStyle(t).lineHeight))"
    )
    lefts = page.eval_on_selector_all(
        "#portal-1 .card", "nodes => nodes.map(n => Math.round(n.getBoundingClientRect().left))"
    )
    if width == 390:
        assert len(set(lefts)) == 1  # one column on a phone
    else:
        assert len(set(lefts)) >= 2
    page.close()


def test_each_headline_with_a_target_says_whether_it_is_met_and_by_how_much(demo_run, browser):
    night = today_in_new_york()
    targets = demo_portal_file().targets
    assert set(targets) == {"MD-1"} and targets["MD-1"].below == 20
    values = {
        (portal, snapshot_date): value
        for portal, snapshot_date, value in query(
            demo_db(demo_run),
            "SELECT portal, snapshot_date, value FROM board.plan_metrics "
            "WHERE agency IS NULL AND metric = 'pct_missing_metadata'",
        )
    }
    page = open_page(browser, demo_report(demo_run))
    cards = page.eval_on_selector_all(
        "article.card",
        """nodes => nodes.map(n => ({portal: n.closest('section').querySelector('h2').textContent,
            title: n.querySelector('h3').textContent,
            verdicts: [...n.querySelectorAll('.verdict')].map(v => v.textContent.trim()),
            badge: [...n.querySelectorAll('.verdict .badge')].map(v => v.textContent.trim()),
            change: (n.querySelector('.change') || {}).textContent || ''}))""",
    )
    md1 = [card for card in cards if card["title"] == "Datasets missing metadata (MD-1)"]
    assert len(md1) == 2
    for card in md1:
        value = values[(card["portal"], night)]
        gap = f"{abs(value - 20):.1f} points"
        [verdict] = card["verdicts"]
        if value < 20:
            assert card["badge"] == ["✓ Target met"]
            assert verdict.endswith(f"Meets the plan's target (under 20%): {gap} below it.")
        else:
            assert card["badge"] == ["✗ Target not met"]
            assert verdict.endswith(f"Does not meet the plan's target (under 20%): {gap} above it.")
        before = values[(card["portal"], night - timedelta(days=1))]
        way = "right" if value < before else "wrong"
        if abs(value - before) >= 0.05:
            assert card["change"].endswith(f"the {way} way, lower is better.")
    # The demo's MD-1 meets the target on one portal and misses it on the other.
    assert {values[(card["portal"], night)] < 20 for card in md1} == {True, False}
    # Headlines without a target carry no verdict, yet say which way is better.
    others = [card for card in cards if card not in md1]
    assert others and all(card["verdicts"] == [] for card in others)
    stale = [card for card in others if card["title"].startswith("Stale datasets (FR-2)")]
    moved = [card for card in stale if card["change"].startswith(("Up", "Down"))]
    assert all(card["change"].endswith("lower is better.") for card in moved)
    page.close()


def test_times_are_local_with_utc_on_hover(demo_run, browser):
    page = open_page(browser, demo_report(demo_run))
    # Instants (a <time> of a date alone, a work list's last data update, has no time to show).
    times = page.eval_on_selector_all(
        "time[datetime*='T']",
        "nodes => nodes.map(n => [n.getAttribute('datetime'), n.title, n.textContent])",
    )
    stored = query(demo_db(demo_run), "SELECT max(snapshot_time) FROM catalog.snapshots")[0][0]
    assert len(times) >= 3  # each portal's snapshot and the footer
    for stamp, title, text in times:
        instant = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert stamp.endswith("Z") and title == f"{instant:%Y-%m-%d %H:%M} UTC"
        local = instant.astimezone(NEW_YORK)
        assert text == (f"{local:%Y-%m-%d} {local.hour % 12 or 12}:{local:%M %p} {local.tzname()}")
        assert local.tzname() in ("EST", "EDT")
    assert stored.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") in {t[0] for t in times}
    # No time is printed in UTC alone.
    assert not re.search(r"\d{2}:\d{2} UTC", page.inner_text("body"))
    page.close()


def test_the_page_names_the_portals_public_site_never_an_api(demo_run, browser):
    html = demo_report(demo_run).read_text(encoding="utf-8")
    # The work lists link each dataset and show each broken link as the catalog publishes it:
    # data, not the portal's address (the demo's Hub pages and links are on loopback hosts,
    # so that its probes never leave the machine). Everything else names no API.
    html = re.sub(
        r'<table id="portal-\d+-[a-z0-9]+-table" class="work".*?</table>', "", html, flags=re.S
    )
    for engineering in ("127.0.0.1", "localhost", "/api/"):
        assert engineering not in html
    page = open_page(browser, demo_report(demo_run))
    assert page.eval_on_selector("#portal-1 .meta a", "a => a.href") == "https://data.ct.gov/"
    assert "demo.geodata.ct.gov (served on this machine" in page.inner_text("#portal-2 .meta")
    page.close()


def test_the_method_tables_give_plain_names_with_the_id_beside(demo_run, browser):
    night = today_in_new_york()
    stored = {
        metric
        for (metric,) in query(
            demo_db(demo_run),
            "SELECT DISTINCT metric FROM board.plan_metrics "
            "WHERE snapshot_date = ? AND agency IS NULL AND metric NOT LIKE 'assets_total:%'",
            [night],
        )
    }
    page = open_page(browser, demo_report(demo_run))
    cells = page.eval_on_selector_all(
        "#method tbody tr td:nth-child(2)",
        "nodes => nodes.map(n => [n.textContent, n.querySelector('.id').textContent])",
    )
    shown = {ident.strip("()") for _, ident in cells}
    assert shown == stored
    for text, ident in cells:
        name = text.removesuffix(ident).strip()
        metric = ident.strip("()")
        assert name == metric_label(metric)
        assert name and metric not in name and not re.search(r"\w[_:.]\w", name)
    assert "Datasets delinquent (freshness_state:DELINQUENT)" in {t for t, _ in cells}
    page.close()


def test_title_and_the_pages_own_files(demo_run, browser):
    night = today_in_new_york()
    title = demo_portal_file().report.title
    assert title == "Connecticut's open data portals (demo)"
    page = open_page(browser, demo_report(demo_run))
    assert page.title() == f"{title}: State Data Plan metrics, {night}"
    assert page.inner_text("h1").startswith(f"{title}: ")
    links = page.eval_on_selector_all(
        "nav.files a[href], footer a[href]", "nodes => nodes.map(n => n.getAttribute('href'))"
    )
    folder = demo_report(demo_run).parent
    assert {"board.xlsx", *(f"{table}.csv" for table in BOARD_TABLES)} <= set(links)
    assert all((folder / link).is_file() for link in links)
    files_text = page.inner_text("nav.files")
    if (folder / "report.pdf").is_file():
        assert "report.pdf" in links
    else:
        assert "report.pdf" not in links and "No PDF of this report" in files_text
    page.close()


def test_the_index_lists_every_night_newest_first_and_each_opens(demo_run, browser):
    nights = sorted(
        (
            night
            for (night,) in query(
                demo_db(demo_run), "SELECT DISTINCT snapshot_date FROM catalog.snapshots"
            )
        ),
        reverse=True,
    )
    assert len(nights) > 1
    reports = demo_run.folder / "reports"
    page = open_page(browser, reports / "index.html", 390)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.title().startswith(demo_portal_file().report.title)
    assert f"Every night's report ({len(nights)}), newest first" in page.inner_text("caption")
    rows = page.eval_on_selector_all(
        "tbody tr",
        "rows => rows.map(r => [r.querySelector('.night-date').textContent, "
        "r.querySelector('a').getAttribute('href')])",
    )
    assert [night for night, _ in rows] == [night.isoformat() for night in nights]
    for night, href in rows:
        assert href == f"{night}/report.html"
        opened = open_page(browser, reports / href)
        assert opened.title().endswith(f"State Data Plan metrics, {night}")
        assert date.fromisoformat(night).strftime("%B") in opened.inner_text("h1")
        opened.close()
    page.close()


def test_keyboard_focus_is_visible(demo_run, browser):
    page = open_page(browser, demo_report(demo_run))
    for _ in range(3):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement); "
            "return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; })()"
        )
        assert outline[0] != "BODY" and outline[1] == "solid" and outline[2] == "3px"
    page.focus("#portal-1 > .scroll")  # a table's box takes the focus, to scroll by keyboard
    focused = page.evaluate(
        "(() => { const e = document.activeElement, s = getComputedStyle(e); "
        "return [e.classList.contains('scroll'), s.outlineStyle]; })()"
    )
    assert focused == [True, "solid"]
    page.close()


@pytest.mark.parametrize("width", (390, 1400))
def test_axe_finds_no_serious_or_critical_violation(demo_run, browser, width):
    page = open_page(browser, demo_report(demo_run), width)
    assert serious_accessibility_problems(page) == []
    page.close()


def test_a_portal_nothing_harvested_says_not_harvested(tmp_path, instance, today, browser):
    with serve("socrata", [socrata_record("a000-0001")]) as socrata:
        entries = [portal_entry("ct", socrata), portal_entry("other", socrata)]
        pipeline = Pipeline(tmp_path, entries)
        pipeline.run_ok(instance, today, "ct")  # "other" is not run at all
    pipeline.report_ok(instance, today)
    page = open_page(browser, tmp_path / "reports" / today.isoformat() / "report.html")
    text = " ".join(page.inner_text("#portal-2").split())
    assert "There is no snapshot of other for this night (not harvested that night)" in text
    page.close()


def test_a_portal_whose_harvest_failed_says_why(tmp_path, instance, today, browser):
    with serve("socrata", [socrata_record("a000-0001")]) as socrata:
        pipeline = Pipeline(
            tmp_path,
            [
                portal_entry("ct", socrata),
                {"name": "geo", "kind": "dcat", "url": f"{socrata.base_url}/none.json"},
            ],
        )
        results = pipeline.run(instance, today, "ct", "geo")
    [failed] = [result for result in results if not result.success]
    pipeline.report_ok(instance, today)
    page = open_page(browser, tmp_path / "reports" / today.isoformat() / "report.html")
    text = " ".join(page.inner_text("#portal-2").split())
    assert "There is no snapshot of geo for this night (its harvest failed: " in text
    assert failed.reason.removeprefix("geo: ")[:40] in text
    assert "not harvested" not in text
    page.close()


def test_a_portal_refused_by_the_shrink_guard_says_so(tmp_path, instance, today, browser):
    yesterday = today - timedelta(days=1)
    with serve("socrata", socrata_catalog(12, datasets_only=True)) as good:
        Pipeline(tmp_path, [portal_entry("ct", good, as_of=True)]).run_ok(instance, yesterday, "ct")
    with serve("socrata", socrata_catalog(2, datasets_only=True)) as shrunk:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", shrunk, as_of=True)])
        [refused] = pipeline.run(instance, today, "ct")
    assert not refused.success and "refused" in refused.reason
    pipeline.report_ok(instance, today)
    page = open_page(browser, tmp_path / "reports" / today.isoformat() / "report.html")
    text = " ".join(page.inner_text("#portal-1").split())
    assert (
        f"There is no snapshot of ct for this night (refused by the shrink guard: for {today}, "
        "2 in-scope datasets and 2 assets are below 0.5 x the 12 and 12"
    ) in text
    assert "harvest failed" not in text
    page.close()
