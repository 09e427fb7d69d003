"""The report's metrics v2 parts: the FR-5 / FR-8 and AC-1 headline cards beside FR-2, the
"silently stale" and "broken links" work lists on the main page and the agency pages, the
method table's new metrics, the probe tables' CSVs and the demo's printed headlines.

Every test reads a real DuckDB file whose board rows are inserted by hand (the probe metrics
that write them are tested in test_metrics_v2.py): two nights of one Socrata portal and one
DCAT feed, the first before any probe, the second with the probe metrics and their tables."""

from __future__ import annotations

import csv
import re
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from ctdata_pipeline import cli
from ctdata_pipeline.board.publish import ensure_schema as board_schema
from ctdata_pipeline.catalog.schema import ensure_schema as catalog_schema
from ctdata_pipeline.metrics.compute import ensure_schema as metrics_schema
from ctdata_pipeline.portals import parse_portal_document
from ctdata_pipeline.report.agencies import write_agency_pages
from ctdata_pipeline.report.data import load_night
from ctdata_pipeline.report.html import render_report
from ctdata_pipeline.report.publish import publish_report

SOCRATA, HUB = "data.example.gov", "hub.example.gov"
FIRST, SECOND = date(2026, 5, 1), date(2026, 5, 2)
HEALTH = "Department of <b>Health</b>"  # portal text: escaped wherever shown
PARKS = "Parks & Recreation"
HOSTILE_TITLE = "<script>alert('x')</script> Clinic visits"


def _at(day: date, hour: int = 6) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _metric(conn, night, portal, agency, metric_id, metric, num, den, unit="percent"):
    value = None if not den else (100 * num / den if unit == "percent" else num)
    if unit == "count":
        value, den = num, None
    conn.execute(
        "INSERT INTO board.plan_metrics VALUES (?, ?, ?, ?, ?, ?, ?, ?, 2, ?, NULL)",
        [night, portal, agency, metric_id, metric, num, den, value, unit],
    )


def _night(conn: duckdb.DuckDBPyConnection, night: date, probed: bool) -> None:
    for portal, kind in ((SOCRATA, "socrata"), (HUB, "dcat")):
        conn.execute(
            "INSERT INTO catalog.snapshots (snapshot_date, portal, kind, snapshot_time, "
            "source_url, assets_total, datasets_in_scope, origin, loaded_at) "
            "VALUES (?, ?, ?, ?, ?, 40, 20, 'harvest', ?)",
            [night, portal, kind, _at(night), f"http://127.0.0.1:9/{portal}", _at(night)],
        )
        _metric(conn, night, portal, None, "MD-1", "pct_missing_metadata", 4, 20)
        _metric(conn, night, portal, None, "FR-2", "pct_stale", 3, 15)
        for agency in (HEALTH, PARKS):
            conn.execute(
                "INSERT INTO board.agency_scorecard (snapshot_date, portal, agency, datasets, "
                "ranked, rank) VALUES (?, ?, ?, 10, true, ?)",
                [night, portal, agency, 1 if agency == HEALTH else 2],
            )
    if not probed:
        return
    # FR-5 on the Socrata portal: 2 of 16 silently stale (both the Health department's), 16 of
    # 20 with a date column have a content date.
    _metric(conn, night, SOCRATA, None, "FR-5", "pct_silently_stale", 2, 16)
    _metric(conn, night, SOCRATA, None, "FR-5", "content_date_coverage", 16, 20)
    _metric(conn, night, SOCRATA, HEALTH, "FR-5", "pct_silently_stale", 2, 8)
    _metric(conn, night, SOCRATA, PARKS, "FR-5", "pct_silently_stale", 0, 8)
    # AC-1 on the Socrata portal: one dataset of 10 with a checked link has a broken one (it
    # has two broken URLs); 45 of 50 links answered; 7 not checked.
    _metric(conn, night, SOCRATA, None, "AC-1", "pct_datasets_with_broken_link", 1, 10)
    _metric(conn, night, SOCRATA, None, "AC-1", "pct_links_ok", 45, 50)
    _metric(conn, night, SOCRATA, None, "AC-1", "links_not_checked", 7, None, unit="count")
    _metric(conn, night, SOCRATA, PARKS, "AC-1", "pct_datasets_with_broken_link", 1, 5)
    # FR-8 / FR-2 by data date on the DCAT feed; AC-1 with nothing broken.
    _metric(conn, night, HUB, None, "FR-2", "pct_stale_by_data_date", 5, 10)
    _metric(conn, night, HUB, None, "FR-8", "layer_date_coverage", 9, 12)
    _metric(conn, night, HUB, None, "FR-8", "pct_modified_after_data_edit", 4, 9)
    _metric(conn, night, HUB, None, "FR-5", "pct_silently_stale", 0, 0)  # not on a DCAT feed
    _metric(conn, night, HUB, None, "AC-1", "pct_datasets_with_broken_link", 0, 12)
    _metric(conn, night, HUB, None, "AC-1", "pct_links_ok", 30, 30)
    conn.executemany(
        "INSERT INTO board.silently_stale (snapshot_date, portal, asset_id, title, agency, "
        "update_frequency, data_updated_at, content_date, content_age_days, period_days, "
        "permalink, freshness_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'FRESH')",
        [
            [
                night,
                SOCRATA,
                "aaaa-1111",
                HOSTILE_TITLE,
                HEALTH,
                "monthly",
                _at(night, 1),
                datetime(2025, 9, 1, tzinfo=UTC),
                243.25,
                30.0,
                "https://data.example.gov/d/aaaa-1111",
            ],
            [
                night,
                SOCRATA,
                "bbbb-2222",
                "Weekly flu counts",
                HEALTH,
                "weekly",
                _at(night, 2),
                datetime(2026, 3, 1, tzinfo=UTC),
                62.0,
                7.0,
                "javascript:alert(1)",
            ],
        ],
    )
    conn.executemany(
        "INSERT INTO board.broken_links (snapshot_date, portal, asset_id, title, agency, url, "
        "status, first_failed, last_checked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                night,
                SOCRATA,
                "cccc-3333",
                "Park permits",
                PARKS,
                "https://parks.example.gov/old.csv",
                "404",
                _at(FIRST, 7),
                _at(night, 7),
            ],
            [
                night,
                SOCRATA,
                "cccc-3333",
                "Park permits",
                PARKS,
                "javascript:alert('link')",
                "timeout",
                _at(FIRST, 7),
                _at(night, 7),
            ],
        ],
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "ctdata.duckdb"
    with duckdb.connect(str(path)) as conn:
        catalog_schema(conn)
        metrics_schema(conn)
        board_schema(conn)
        _night(conn, FIRST, probed=False)
        _night(conn, SECOND, probed=True)
    return path


def _portal_file():
    return parse_portal_document(
        {
            "portals": [
                {
                    "name": SOCRATA,
                    "kind": "socrata",
                    "url": "http://127.0.0.1:9",
                    "domain": "data.example.gov",
                },
                {"name": HUB, "kind": "dcat", "url": "http://127.0.0.1:9/data.json"},
            ]
        },
        source="the test portal file",
    )


def _page(warehouse: Path, night: date) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return render_report(load_night(conn, night, _portal_file()))


def _card(page: str, card_id: str) -> str:
    found = re.search(
        rf'<article class="card" aria-labelledby="{card_id}-title">(.*?)</article>', page, re.S
    )
    assert found, card_id
    return found.group(1)


def _section(page: str, section_id: str) -> str:
    found = re.search(
        rf'<section class="worklist" aria-labelledby="{section_id}">(.*?)</section>', page, re.S
    )
    assert found, section_id
    return found.group(1)


def test_before_any_probe_the_cards_and_lists_say_not_yet_probed(warehouse):
    with duckdb.connect(str(warehouse)) as conn:  # the probe tables do not exist yet
        conn.execute("DROP TABLE board.silently_stale; DROP TABLE board.broken_links")
    page = _page(warehouse, FIRST)
    fr5, ac1 = _card(page, "portal-1-fr5"), _card(page, "portal-1-ac1")
    assert 'data-metric="pct_silently_stale" data-value="">not yet probed<' in fr5
    assert 'data-metric="pct_datasets_with_broken_link" data-value="">not yet probed<' in ac1
    assert "No probe result for the datasets&#39; date columns yet" in fr5
    assert "Nothing is counted good or bad before it is checked" in ac1
    fr8 = _card(page, "portal-2-fr8")  # the DCAT feed: FR-2 by the data's own date
    assert 'data-metric="pct_stale_by_data_date" data-value="">not yet probed<' in fr8
    assert "Not yet probed" in _section(page, "portal-1-silent")
    assert "Not yet probed" in _section(page, "portal-1-broken")
    assert 'aria-labelledby="portal-2-silent"' not in page  # FR-5 is Socrata's
    # The cards stand beside FR-2's, in that order.
    order = [m.group(1) for m in re.finditer(r'aria-labelledby="(portal-1-[a-z0-9]+)-title"', page)]
    assert order[:4] == ["portal-1-md1", "portal-1-fr2", "portal-1-fr5", "portal-1-ac1"]


def test_the_probe_cards_show_their_figures_with_what_they_count(warehouse):
    page = _page(warehouse, SECOND)
    fr5 = _card(page, "portal-1-fr5")
    assert 'data-metric="pct_silently_stale" data-value="12.5">12.5%<' in fr5
    assert 'data-metric="content_date_coverage" data-value="80.0">80.0%<' in fr5
    assert "2 of 16 datasets the metadata calls current" in fr5
    assert "16 of 20 datasets with a date column have a content date" in fr5
    ac1 = _card(page, "portal-1-ac1")
    assert 'data-value="10.0">10.0%<' in ac1 and 'data-value="90.0">90.0%<' in ac1
    assert "1 of 10 datasets with a checked link have a broken one" in ac1
    assert "7 links not checked" in ac1
    fr8 = _card(page, "portal-2-fr8")
    assert "5 of 10 datasets with a schedule are overdue or delinquent by their data" in fr8
    assert "4 of 9 of those were modified" in fr8
    assert "not yet probed" not in _card(page, "portal-2-ac1")


def test_the_work_lists_match_their_headlines_and_escape_portal_text(warehouse):
    page = _page(warehouse, SECOND)
    silent = _section(page, "portal-1-silent")
    assert "Work list: silently stale datasets, FR-5 (2)" in silent
    assert "These are the 2 of 16 datasets with a content date" in silent
    assert 'class="warning"' not in silent  # the list's count is FR-5's numerator
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Clinic visits" in silent
    assert "<script>alert" not in page
    assert "newest row is dated 2025-09-01, 243 days ago" in silent
    # Longest past its promise first: 62 days of a weekly (8.9 periods), then 243 of a monthly.
    assert silent.index("bbbb-2222") < silent.index("aaaa-1111")
    assert 'href="https://data.example.gov/d/aaaa-1111"' in silent
    assert 'href="javascript:' not in page
    broken = _section(page, "portal-1-broken")
    assert "Work list: broken links, AC-1 (2)" in broken  # two URLs of one dataset
    assert "(1 datasets here)" in broken and 'class="warning"' not in broken
    assert 'href="https://parks.example.gov/old.csv"' in broken
    assert "The link answers 404 (not found), failing since 2026-05-01" in broken
    assert "The link did not answer in time" in broken
    assert "javascript:alert(&#39;link&#39;)" in broken  # shown as text, never a link
    hub_broken = _section(page, "portal-2-broken")
    assert "No link is broken." in hub_broken


def test_a_list_that_disagrees_with_its_headline_says_so(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM board.silently_stale WHERE asset_id = 'bbbb-2222'")
    silent = _section(_page(warehouse, SECOND), "portal-1-silent")
    assert "This list holds 1 datasets but FR-5 counts 2." in silent


def test_the_method_lists_every_new_metric_with_tonights_counts(warehouse):
    page = _page(warehouse, SECOND)
    method = page[page.index('<section id="method"') :]
    for metric_id in ("FR-5", "FR-8", "AC-1", "AC-2", "GV-1"):
        assert f'<dt id="metric-{metric_id}">' in method
    assert 'Silently stale datasets <span class="id">(pct_silently_stale)</span>' in method
    assert 'Links not checked <span class="id">(links_not_checked)</span>' in method


def test_agency_pages_show_their_own_probe_figures_and_lists(warehouse, tmp_path):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        report = load_night(conn, SECOND, _portal_file())
        agencies = write_agency_pages(tmp_path, conn, report)
    pages = {agency.name: (tmp_path / "agencies" / agency.page) for agency in agencies}
    health = pages[HEALTH].read_text(encoding="utf-8")
    parks = pages[PARKS].read_text(encoding="utf-8")
    assert "Department of &lt;b&gt;Health&lt;/b&gt;" in health and "<b>Health" not in health
    row = re.search(r'<tr data-metric-id="FR-5">(.*?)</tr>', health, re.S).group(1)
    assert "25.0%" in row and "2 of 8" in row and "12.5%" in row  # the agency, the portal
    assert "Work list: silently stale datasets, FR-5 (2)" in health
    assert "Work list: broken links, AC-1 (0)" in health
    assert "Work list: silently stale datasets, FR-5 (0)" in parks
    assert "No dataset with a content date is silently stale." in parks
    assert "Work list: broken links, AC-1 (2)" in parks
    with (tmp_path / "agencies" / f"{pages[PARKS].stem}.csv").open(encoding="utf-8") as handle:
        listed = [r for r in csv.DictReader(handle) if r["work_list"] == "Broken links (AC-1)"]
    assert {r["url"] for r in listed} == {
        "https://parks.example.gov/old.csv",
        "javascript:alert('link')",
    }
    assert {r["what_to_fix"][:28] for r in listed} == {
        "The link answers 404 (not fo",
        "The link did not answer in t",
    }


def test_the_night_folder_holds_the_probe_tables(warehouse, tmp_path):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        written = publish_report(conn, tmp_path / "reports", SECOND, _portal_file())
    assert {"silently_stale.csv", "broken_links.csv"} <= set(written.files)
    assert written.rows["silently_stale"] == 2 and written.rows["broken_links"] == 2
    page = written.report.read_text(encoding="utf-8")
    assert 'href="silently_stale.csv"' in page and 'href="broken_links.csv"' in page


def test_the_demo_headlines_gain_fr5_and_ac1_once_probed(warehouse, capsys):
    cli._print_headlines(warehouse, [SOCRATA, HUB], FIRST, SECOND)
    out = capsys.readouterr().out
    socrata = [line for line in out.splitlines() if SOCRATA in line]
    assert any("FR-5" in line and "silently stale" in line and "12.5%" in line for line in socrata)
    assert any("AC-1" in line and "broken link" in line and "10.0%" in line for line in socrata)
    assert "(first probed 2026-05-02)" in out
    hub = [line for line in out.splitlines() if HUB in line]
    assert not any("FR-5" in line for line in hub)  # never measured there: no line
    assert any("AC-1" in line and "0.0%" in line for line in hub)
