"""Connecticut among its peers: a night of two Board portals and three peers made from real feeds
of the national corpus (and its three 0-byte feeds, which fail alone), served on loopback and
run through the real jobs. The peers section and the observatory equal board.plan_metrics; the
Board's own sections, files and digest hold only the Board's portals; the pages read in
Chromium; hostile text stays text."""

from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import openpyxl
import pytest

from ctdata_pipeline.delivery.compose import compose_board_digest
from ctdata_pipeline.delivery.model import Period
from ctdata_pipeline.delivery.recipients import RecipientsFile
from ctdata_pipeline.demo.server import Reply
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.portals import load_portal_file
from ctdata_pipeline.report.data import NightReport, PortalNight, Value
from ctdata_pipeline.report.html import render_report
from ctdata_pipeline.report.observatory import portal_links, portal_slugs, write_observatory
from ctdata_pipeline.report.peers import COMPARED
from ctdata_pipeline_tests.support import (
    Pipeline,
    good_feed,
    load_realdata,
    portal_entry,
    query,
    realdata,
    serious_accessibility_problems,
    serve,
    socrata_catalog,
)
from ctdata_pipeline_tests.test_digests import parts
from ctdata_pipeline_tests.test_report import Opened

OWN = ("ct", "hub")
# Real feeds of the national corpus, of three sizes and both generators (Hub and Socrata).
PEER_FEEDS = {
    "open-data-slcgis.hub.arcgis.com": "national/latest/05b-27137_20220417.json",
    "data.princegeorgescountymd.gov": "national/latest/04b-24033_20200722.json",
    "gis-countyofdane.opendata.arcgis.com": "national/latest/10b-55025_20220417.json",
}
# The corpus's three 0-byte answers: each portal answered nothing that night.
EMPTY_FEEDS = {
    "data.imap.maryland.gov": "national/latest/04a-01_20220417.json",
    "data-carltoncounty.opendata.arcgis.com": "national/latest/05b-27017_20220327.json",
    "getdata-hubbardcounty.opendata.arcgis.com": "national/latest/05b-27057_20220327.json",
}
WIDTHS = (390, 1400)


@dataclass(frozen=True)
class PeerNight:
    folder: Path
    night: date
    db_path: Path
    portals_file: Path
    failures: dict[str, str]  # portal -> the run's one-line reason

    @property
    def reports(self) -> Path:
        return self.folder / "reports" / self.night.isoformat()


def empty_answer(request) -> Reply | None:
    return Reply(status=200, body=b"", headers={"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def peer_night(tmp_path_factory) -> PeerNight:
    folder = tmp_path_factory.mktemp("peers")
    night = today_in_new_york()
    for relative in EMPTY_FEEDS.values():
        assert realdata(relative).stat().st_size == 0
    with (
        serve("socrata", socrata_catalog(40, datasets_only=True)) as socrata,
        serve("dcat", good_feed()) as hub,
        serve("dcat", load_realdata(PEER_FEEDS["open-data-slcgis.hub.arcgis.com"])) as p1,
        serve("dcat", load_realdata(PEER_FEEDS["data.princegeorgescountymd.gov"])) as p2,
        serve("dcat", load_realdata(PEER_FEEDS["gis-countyofdane.opendata.arcgis.com"])) as p3,
        serve("dcat", {}, hook=empty_answer) as e1,
        serve("dcat", {}, hook=empty_answer) as e2,
        serve("dcat", {}, hook=empty_answer) as e3,
    ):
        peers = [
            portal_entry(name, server, role="peer")
            for name, server in zip(
                [*PEER_FEEDS, *EMPTY_FEEDS], (p1, p2, p3, e1, e2, e3), strict=True
            )
        ]
        pipeline = Pipeline(
            folder,
            [portal_entry("ct", socrata), peers[0], portal_entry("hub", hub), *peers[1:]],
            targets={"MD-1": {"below": 20}},
        )
        with dg.instance_for_test() as instance:
            results = pipeline.run(instance, night, *OWN, *PEER_FEEDS, *EMPTY_FEEDS)
            pipeline.report_ok(instance, night)
    failures = {result.portal: result.reason for result in results if not result.success}
    return PeerNight(folder, night, pipeline.db_path, pipeline.portals_file, failures)


def stored_values(night: PeerNight, metric: str) -> dict[str, float]:
    """portal -> tonight's portal-wide value of `metric`, every portal that has one."""
    return {
        portal: value
        for portal, value in query(
            night.db_path,
            "SELECT portal, value FROM board.plan_metrics WHERE snapshot_date = ? "
            "AND agency IS NULL AND metric = ? AND value IS NOT NULL",
            [night.night, metric],
        )
    }


def expected_rank(values: dict[str, float], portal: str, lower_is_better: bool) -> int:
    """1 + how many portals are strictly better (ties share the better rank)."""
    mine = values[portal]
    return 1 + sum(1 for v in values.values() if (v < mine if lower_is_better else v > mine))


LOWER_IS_BETTER = {"MD-1": True, "MD-2": False, "MD-4": False, "FR-2": True, "FR-3": True}


def test_the_empty_feeds_fail_alone_in_one_line(peer_night):
    assert set(peer_night.failures) == set(EMPTY_FEEDS)
    for portal, reason in peer_night.failures.items():
        # yajl's word for a 0-byte body: the feed ended before its first value.
        assert reason == f"{portal}: the feed is not valid JSON (the answer was empty: 0 bytes)"
    stored = {row[0] for row in query(peer_night.db_path, "SELECT portal FROM catalog.snapshots")}
    assert stored == {*OWN, *PEER_FEEDS}  # peers stored and scored like the Board's own


def test_the_peers_section_equals_plan_metrics(peer_night, browser):
    opened = Opened(browser, peer_night.reports / "report.html")
    page = opened.page
    assert opened.console == []
    assert page.is_visible("#peers") and page.inner_text("#peers-title") == (
        "Connecticut among its peers"
    )
    for own in OWN:
        rows = page.eval_on_selector_all(
            f"table.peers[data-portal='{own}'] tbody tr",
            """rows => rows.map(r => ({id: r.dataset.metricId,
                value: r.cells[1].dataset.value, rank: r.cells[2].dataset.rank,
                of: r.cells[2].dataset.of, median: r.cells[3].dataset.value,
                best: r.cells[4].dataset.best, best_text: r.cells[4].textContent,
                n: r.cells[5].dataset.n}))""",
        )
        assert [row["id"] for row in rows] == [c.metric_id for c in COMPARED]
        measured = 0
        for compared, row in zip(COMPARED, rows, strict=True):
            values = stored_values(peer_night, compared.metric)
            lower = LOWER_IS_BETTER[compared.metric_id]
            peers = {name: v for name, v in values.items() if name in PEER_FEEDS}
            assert int(row["of"]) == len(values)
            assert int(row["n"]) == len(peers)
            if own in values:
                assert float(row["value"]) == values[own]
                assert int(row["rank"]) == expected_rank(values, own, lower), compared
            else:  # a figure with no value (FR-2 where nothing has a schedule): no rank
                assert row["value"] == row["rank"] == ""
            if not peers:  # FR-2 on feeds that state no schedule: no peer measured
                assert row["median"] == "" and row["best"] == ""
                assert "no peer measured" in row["best_text"]
                continue
            measured += 1
            assert float(row["median"]) == pytest.approx(statistics.median(peers.values()))
            best = (min if lower else max)(peers.values())
            assert peers[row["best"]] == best
            assert row["best"] in row["best_text"]
        assert measured >= 4  # MD-1, MD-2, MD-4 and FR-3 have every peer's value
    # The failed peers are named, with why, and counted in no rank.
    named = page.eval_on_selector_all(
        "#peers-not-measured [data-peer]", "nodes => nodes.map(n => n.textContent)"
    )
    assert sorted(text.split(" ")[0] for text in named) == sorted(EMPTY_FEEDS)
    assert all("its harvest failed: the feed is not valid JSON" in text for text in named)
    page.close()


def test_the_observatory_ranks_every_portal_and_links_its_page(peer_night, browser):
    opened = Opened(browser, peer_night.reports / "observatory.html")
    page = opened.page
    assert opened.console == [] and opened.dialogs == []
    for compared in COMPARED:
        values = stored_values(peer_night, compared.metric)
        rows = page.eval_on_selector_all(
            f"table[data-metric-id='{compared.metric_id}'] tbody tr",
            """rows => rows.map(r => [r.dataset.portal, +r.cells[0].textContent,
                r.cells[2].dataset.value, r.classList.contains('own'),
                r.querySelector('a').getAttribute('href')])""",
        )
        assert {name for name, *_ in rows} == set(values)
        lower = LOWER_IS_BETTER[compared.metric_id]
        for name, rank, raw, own, href in rows:
            assert float(raw) == values[name]
            assert rank == expected_rank(values, name, lower)
            assert own == (name in OWN)
            assert (peer_night.reports / href).is_file()
        ranks = [rank for _, rank, *_ in rows]
        assert ranks == sorted(ranks)  # best first
    absent = page.inner_text("#not-measured")
    assert all(name in absent for name in EMPTY_FEEDS)

    # Each portal's page: its figures as stored, its agencies, its catalog; back links work.
    slugs = portal_slugs_of(peer_night)
    for name, slug in slugs.items():
        portal_page = Opened(browser, peer_night.reports / "portals" / f"{slug}.html").page
        assert portal_page.inner_text("h1") == name
        if name in EMPTY_FEEDS:
            assert "its harvest failed" in portal_page.inner_text("main")
        else:
            shown = portal_page.eval_on_selector_all(
                "tr[data-metric]",
                "rows => rows.map(r => [r.dataset.metric, r.cells[0].dataset.value])",
            )
            for metric, raw in shown:
                if raw:
                    assert float(raw) == stored_values(peer_night, metric)[name]
            [(datasets, agencies)] = query(
                peer_night.db_path,
                "SELECT (SELECT value FROM board.plan_metrics WHERE snapshot_date = ? AND "
                "portal = ? AND agency IS NULL AND metric = 'datasets_in_scope'), "
                "(SELECT count(*) FROM board.agency_scorecard WHERE snapshot_date = ? AND "
                "portal = ?)",
                [peer_night.night, name, peer_night.night, name],
            )
            assert portal_page.inner_text("[data-count=datasets]") == f"{datasets:,.0f}"
            assert portal_page.inner_text("[data-count=agencies]") == str(agencies)
        for href in portal_page.eval_on_selector_all(
            "nav a", "nodes => nodes.map(n => n.getAttribute('href'))"
        ):
            target = (peer_night.reports / "portals" / href.split("#")[0]).resolve()
            assert target.is_file(), href
        portal_page.close()
    page.close()


def portal_slugs_of(peer_night: PeerNight) -> dict[str, str]:
    names = [*OWN, *PEER_FEEDS, *EMPTY_FEEDS]
    pages = {p.stem for p in (peer_night.reports / "portals").iterdir()}
    report = NightReport(
        night=peer_night.night,
        portals=[PortalNight(name, "", None, None) for name in OWN],
        peers=[PortalNight(name, "", None, None, role="peer") for name in names[2:]],
    )
    slugs = portal_slugs(report)
    assert set(slugs.values()) == pages
    return slugs


def test_the_boards_sections_files_and_digest_hold_only_its_portals(peer_night, browser):
    opened = Opened(browser, peer_night.reports / "report.html")
    page = opened.page
    # One section per Board portal, then the peers', then the method: no peer's own section.
    headings = page.eval_on_selector_all("main > section > h2", "hs => hs.map(h => h.textContent)")
    assert headings == [*OWN, "Connecticut among its peers", "How each number is computed"]
    assert {
        portal
        for (portal,) in page.eval_on_selector_all(
            "[data-metric][data-portal]", "ns => ns.map(n => [n.dataset.portal])"
        )
    } == set(OWN)
    page.close()
    for table in ("plan_metrics", "agency_scorecard", "missing_metadata"):
        with (peer_night.reports / f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            portals = {row["portal"] for row in csv.DictReader(handle)}
        # The peers miss metadata too (MD-1 40-100%): without the filter their rows were here.
        assert portals and portals <= set(OWN), table
    workbook = openpyxl.load_workbook(peer_night.reports / "board.xlsx", read_only=True)
    for sheet in ("plan_metrics", "agency_scorecard"):
        rows = list(workbook[sheet].iter_rows(values_only=True))
        column = rows[0].index("Portal") if "Portal" in rows[0] else rows[0].index("portal")
        assert {row[column] for row in rows[1:]} == set(OWN), sheet
    agencies_index = (peer_night.reports / "agencies" / "index.html").read_text(encoding="utf-8")
    assert not any(name in agencies_index for name in [*PEER_FEEDS, *EMPTY_FEEDS])

    # The Board's digest lists the Board's portals alone.
    portal_file = load_portal_file(peer_night.portals_file)
    conn = duckdb.connect(str(peer_night.db_path), read_only=True)
    try:
        digest = compose_board_digest(
            conn,
            Period.containing("monthly", peer_night.night),
            portal_file,
            peer_night.folder / "reports",
            RecipientsFile(board=("chair@example.gov",)),
        )
    finally:
        conn.close()
    assert digest is not None
    text, html = parts(digest.message)
    for own in OWN:
        assert own in text
    for peer in [*PEER_FEEDS, *EMPTY_FEEDS]:
        assert peer not in text and peer not in html and peer not in digest.message["Subject"]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_peer_pages_fit_the_screen(peer_night, browser, width):
    slug = portal_slugs_of(peer_night)["data.princegeorgescountymd.gov"]
    for relative in ("report.html", "observatory.html", f"portals/{slug}.html"):
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto((peer_night.reports / relative).resolve().as_uri())
        assert page.evaluate("document.documentElement.scrollWidth") <= width, relative
        # The peers' tables scroll in their own box, named by its caption, which a keyboard
        # reaches.
        boxes = page.eval_on_selector_all(
            ".scroll:has(> table.peers, > table.ranking, > table.portal-figures)",
            "bs => bs.map(b => [b.tabIndex, b.getAttribute('role'),"
            " !!document.getElementById(b.getAttribute('aria-labelledby'))])",
        )
        assert boxes and all(box == [0, "region", True] for box in boxes), relative
        page.close()


HOSTILE = "<img src=x onerror=alert(1)>"


def test_hostile_peer_text_stays_text(tmp_path, browser):
    """Portal names are checked in the portal file, but a page never trusts them: a name and a
    catalog address with markup are shown as text, and a javascript: address is no link."""
    night = today_in_new_york()
    value = Value(12.5, 5, 40, "percent", None)
    own = PortalNight("ct", "socrata", None, None)
    own.snapshot_time = dg_instant(night)
    own.values = {
        "pct_missing_metadata": value,
        "datasets_in_scope": Value(40, None, None, "count", None),
    }
    hostile = PortalNight(HOSTILE, "dcat", dg_instant(night), None, role="peer")
    hostile.url = 'https://evil.example/data.json?q="><script>alert(2)</script>'
    hostile.values = {"pct_missing_metadata": Value(3.0, 1, 33, "percent", None)}
    hostile.agencies = 2
    script = PortalNight("javascript-peer", "dcat", dg_instant(night), None, role="peer")
    script.url = "javascript:alert(3)"
    script.values = {"pct_missing_metadata": Value(50.0, 1, 2, "percent", None)}
    report = NightReport(night=night, portals=[own], peers=[hostile, script])
    assert write_observatory(tmp_path, report) == 3
    (tmp_path / "report.html").write_text(
        render_report(report, ["observatory.html"], {}, portal_links(report)), encoding="utf-8"
    )
    slugs = portal_slugs(report)
    pages = ["report.html", "observatory.html", *(f"portals/{s}.html" for s in slugs.values())]
    assert {p.name for p in (tmp_path / "portals").iterdir()} == {
        f"{s}.html" for s in slugs.values()
    }
    for relative in pages:
        opened = Opened(browser, tmp_path / relative)
        page = opened.page
        assert opened.dialogs == [] and opened.console == [], relative
        assert page.evaluate("document.querySelectorAll('img, [onerror]').length") == 0
        assert page.evaluate(
            "[...document.scripts].every(s => !s.src && !s.text.includes('alert'))"
        )
        assert page.evaluate("[...document.links].every(a => a.protocol !== 'javascript:')"), (
            relative
        )
        if relative == "observatory.html":
            assert HOSTILE in page.inner_text("main")
        page.close()
    best = Opened(browser, tmp_path / "report.html").page
    assert best.inner_text("table.peers [data-best]") == f"{HOSTILE} 3.0%"
    best.close()
    hostile_page = Opened(browser, tmp_path / "portals" / f"{slugs[HOSTILE]}.html").page
    assert hostile_page.inner_text("h1") == HOSTILE
    assert hostile.url in hostile_page.inner_text("header")
    hostile_page.close()


def dg_instant(night: date):
    from ctdata_pipeline.partitions import night_instant

    return night_instant(night)


def test_ctdata_demo_peers_end_to_end(tmp_path):
    """`ctdata demo --peers --nights 2`: the Board's portals on both nights, the peers on the
    last one, the 0-byte peer named and the demo still a success, its table equal to the
    warehouse, the report's section and observatory on the last night only."""
    from ctdata_pipeline.demo.peers import EXPECTED_TO_FAIL, PEER_FEEDS
    from ctdata_pipeline.demo.portals import DEMO_HUB, DEMO_SOCRATA
    from ctdata_pipeline_tests.support import SHARED, run_ctdata

    completed = run_ctdata(
        tmp_path, "demo", "--peers", "--nights", "2", CTDATA_SHARED_DIR=str(SHARED)
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = completed.stdout
    db = tmp_path / "data" / "ctdata.duckdb"
    night = today_in_new_york()
    peers = {feed.name for feed in PEER_FEEDS}
    stored = query(db, "SELECT snapshot_date, portal FROM catalog.snapshots")
    assert {portal for d, portal in stored if d == night} == {DEMO_SOCRATA, DEMO_HUB} | (
        peers - EXPECTED_TO_FAIL
    )
    assert {portal for d, portal in stored if d != night} == {DEMO_SOCRATA, DEMO_HUB}

    values = {
        portal: value
        for portal, value in query(
            db,
            "SELECT portal, value FROM board.plan_metrics WHERE snapshot_date = ? AND "
            "agency IS NULL AND metric = 'pct_missing_metadata'",
            [night],
        )
    }
    peer_values = [v for name, v in values.items() if name in peers]
    assert f"Connecticut among its peers, {night}: MD-1" in out
    assert f"{len(peer_values)} of {len(PEER_FEEDS)} peers measured" in out
    for own in (DEMO_SOCRATA, DEMO_HUB):
        rank = expected_rank(values, own, lower_is_better=True)
        line = next(
            line for line in out.splitlines() if line.startswith(f"  {own} ") and "of 12" in line
        )
        assert f"{values[own]:.1f}%" in line and f"{rank} of {len(values)}" in line
        assert f"{statistics.median(peer_values):.1f}%" in line
    for failed in EXPECTED_TO_FAIL:
        assert f"not measured: {failed} (its harvest failed: " in out

    reports = tmp_path / "reports"
    last = (reports / night.isoformat() / "report.html").read_text(encoding="utf-8")
    assert 'id="peers"' in last and (reports / night.isoformat() / "observatory.html").is_file()
    first = sorted(p for p in reports.iterdir() if p.name[:2] == "20")[0]
    assert first.name != night.isoformat()
    assert 'id="peers"' not in (first / "report.html").read_text(encoding="utf-8")
    assert not (first / "observatory.html").exists()
    # The Board's digest names the Board's portals only.
    [board_eml] = (tmp_path / "outbox" / "board").rglob("*.eml")
    message = board_eml.read_text(encoding="utf-8", errors="replace")
    assert DEMO_SOCRATA in message and not any(peer in message for peer in peers)


def test_demo_peers_without_the_corpus_is_one_line(tmp_path):
    from ctdata_pipeline_tests.support import run_ctdata

    completed = run_ctdata(tmp_path, "demo", "--peers", CTDATA_SHARED_DIR=str(tmp_path / "nowhere"))
    assert completed.returncode == 2
    assert completed.stderr.count("\n") == 1
    assert completed.stderr.startswith("ctdata demo: --peers serves real feeds")
    assert str(tmp_path / "nowhere" / "realdata" / "national" / "latest") in completed.stderr
    assert "CTDATA_SHARED_DIR" in completed.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("peers", ["1", None])
def test_the_demo_location_has_the_peers_partitions_when_asked(monkeypatch, tmp_path, peers):
    """CTDATA_DEMO_PEERS=1 with CTDATA_DEPLOYMENT=demo: the UI's location (and the commands)
    serve the portal file of `ctdata demo --peers`, its peers a row of partitions each."""
    from ctdata_pipeline.code_location import definitions_from_env
    from ctdata_pipeline.demo.peers import PEER_FEEDS
    from ctdata_pipeline.demo.portals import DEMO_HUB, DEMO_SOCRATA
    from ctdata_pipeline.partitions import PORTAL

    monkeypatch.setenv("CTDATA_DEPLOYMENT", "demo")
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "ctdata.duckdb"))
    if peers:
        monkeypatch.setenv("CTDATA_DEMO_PEERS", peers)
    defs = definitions_from_env()
    partitions = defs.resolve_job_def("nightly_job").partitions_def
    portals = partitions.get_partitions_def_for_dimension(PORTAL).get_partition_keys()
    expected = [DEMO_SOCRATA, DEMO_HUB, *(feed.name for feed in PEER_FEEDS if peers)]
    assert portals == expected


def test_axe_finds_nothing_serious_on_the_peer_pages(peer_night, browser):
    slug = portal_slugs_of(peer_night)["ct"]
    for relative in ("observatory.html", f"portals/{slug}.html", "report.html"):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto((peer_night.reports / relative).resolve().as_uri())
        context = "#peers" if relative == "report.html" else None
        assert serious_accessibility_problems(page, context) == [], relative
        page.close()
