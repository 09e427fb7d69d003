"""The probe assets through real Dagster runs: loopback portals (Socrata and DCAT) whose records
name date columns, ArcGIS layers and links served by loopback probe servers, each night stored
by the nightly job and probed by the probe job, into a real DuckDB file."""

import copy
import json
import re
from datetime import timedelta

import dagster as dg

from ctdata_pipeline.cli import run_nights
from ctdata_pipeline.demo.server import Reply, ServedRequest
from ctdata_pipeline.jobs import PROBE_JOB, PROBE_SCHEDULE
from ctdata_pipeline.metrics.definitions import PROBED_METRIC_FAMILIES, PROBED_METRIC_NAMES
from ctdata_pipeline.partitions import night_instant, night_key
from ctdata_pipeline.probes.model import LINK_PROBES
from ctdata_pipeline.probes.targets import select_tonight
from ctdata_pipeline_tests.probe_servers import Answer, ProbeServer, closed_port, json_answer
from ctdata_pipeline_tests.support import (
    FCC_TEMPLATE,
    Pipeline,
    dcat_dataset,
    load_realdata,
    portal_entry,
    query,
    serve,
    socrata_record,
)

FAST = {"min_interval_seconds": 0, "timeout_seconds": 3}
LAYER_PATH = "/arcgis/rest/services/Roads/FeatureServer/0"
LAYER_END = re.compile(r"/(FeatureServer|MapServer)/\d+$")


def with_columns(asset_id, columns, **resource):
    """A real Discovery API record whose columns are (field name, datatype) pairs."""
    names = [name for name, _ in columns]
    return socrata_record(
        asset_id,
        columns_name=names,
        columns_field_name=names,
        columns_datatype=[datatype for _, datatype in columns],
        columns_description=[""] * len(names),
        columns_format=[{} for _ in names],
        attribution_link=resource.pop("attribution_link", None),
        **resource,
    )


def socrata_records(links):
    federated = with_columns("fedr-0005", [("day", "Calendar date")])
    federated["metadata"]["domain"] = "data.hartford.gov"
    return [
        # Two date columns by the Discovery API's names; a system column is never asked.
        with_columns(
            "aaaa-0001",
            [("date", "Calendar date"), ("name", "Text"), (":created_at", "Calendar date")],
            attribution_link=f"{links.url}/ok",
        ),
        with_columns("aaaa-0002", [("updated", "Date"), ("when", "calendar_date")]),
        with_columns("aaaa-0003", [("name", "Text")], attribution_link=f"{links.url}/missing"),
        # An href asset (not a dataset, so out of scope) names the link it stands for.
        with_columns("aaaa-0004", [], type="href", href=f"{links.url}/external"),
        federated,  # not the portal's own: nothing to probe
    ]


def hub_feed(hub_base, layers, links):
    feed = copy.deepcopy(load_realdata(FCC_TEMPLATE))
    roads = f"{layers.url}{LAYER_PATH}"
    feed["dataset"] = [
        dcat_dataset(
            "roads-1",
            title="Roads",
            landingPage=f"{hub_base}/datasets/roads-1",  # the portal's own page: not a link
            distribution=[
                {"accessURL": f"{roads}/query?where=1%3D1&f=geojson", "format": "Esri REST"},
                {"downloadURL": f"{links.url}/roads.csv", "mediaType": "text/csv"},
            ],
        ),
        dcat_dataset(
            "parcels-2",
            title="Parcels",
            landingPage=f"{links.url}/parcels-page",
            distribution=[{"accessURL": f"{layers.url}/arcgis/rest/services/P/MapServer/3"}],
        ),
    ]
    return feed


def soql(request: ServedRequest) -> Reply | None:
    """The Socrata portal's SoQL answers (sodapy's get): max of each date column."""
    if request.path == "/resource/aaaa-0001.json":
        return Reply(body=json.dumps([{"max_0": "2026-01-01T00:00:00.000"}]).encode())
    if request.path == "/resource/aaaa-0002.json":
        return Reply(body=json.dumps([{"max_0": "2025-06-30T12:00:00.000Z"}]).encode())
    return None


def probe_servers():
    links = ProbeServer(
        {path: Answer(200) for path in ("/ok", "/external", "/roads.csv", "/parcels-page")}
    )
    layers = ProbeServer(
        {LAYER_PATH: json_answer({"editingInfo": {"dataLastEditDate": 1767225600000}})}
    )
    return links, layers


def probe(pipeline, instance, night, *portals):
    """The night's probe runs, as `ctdata nightly` launches them after the nightly ones."""
    results = run_nights(
        pipeline.defs, [(night, p) for p in portals], instance, "ERROR", job_name=PROBE_JOB
    )
    for result in results:
        assert result.success, result.reason
    return results


def test_targets_of_each_kind_are_probed_and_stored_with_their_probe_times(
    tmp_path, instance, today
):
    links, layers = probe_servers()
    with links, layers, serve("socrata", socrata_records(links), hook=soql) as socrata:
        with serve("dcat", None) as hub:
            hub.source = lambda as_of: (
                hub_feed(hub.base_url, layers, links),
                night_instant(as_of or today),
            )
            probes = {"probes": {**FAST, "probe_interval_days": 1}}
            pipeline = Pipeline(
                tmp_path,
                [
                    portal_entry("ct", socrata, as_of=True, **probes),
                    portal_entry("geo", hub, as_of=True, **probes),
                ],
            )
            pipeline.run_ok(instance, today, "ct", "geo")
            before = query(pipeline.db_path, "SELECT * FROM board.plan_metrics ORDER BY ALL")
            catalog_before = query(pipeline.db_path, "SELECT * FROM catalog.assets ORDER BY ALL")
            probe(pipeline, instance, today, "ct", "geo")

    targets = query(
        pipeline.db_path,
        "SELECT portal, asset_id, probe, target, columns FROM probes.targets ORDER BY ALL",
    )
    roads = f"{layers.url}{LAYER_PATH}"
    parcels = f"{layers.url}/arcgis/rest/services/P/MapServer/3"
    assert targets == sorted(
        [
            ("ct", "aaaa-0001", "content_date", "aaaa-0001", ["date"]),
            ("ct", "aaaa-0001", "link", f"{links.url}/ok", None),
            ("ct", "aaaa-0002", "content_date", "aaaa-0002", ["updated", "when"]),
            ("ct", "aaaa-0003", "link", f"{links.url}/missing", None),
            ("ct", "aaaa-0004", "link", f"{links.url}/external", None),
            ("geo", "parcels-2", "layer_date", parcels, None),
            ("geo", "parcels-2", "link", parcels, None),
            ("geo", "parcels-2", "link", f"{links.url}/parcels-page", None),
            ("geo", "roads-1", "layer_date", roads, None),
            ("geo", "roads-1", "link", f"{roads}/query?where=1%3D1&f=geojson", None),
            ("geo", "roads-1", "link", f"{links.url}/roads.csv", None),
        ]
    )
    results = {
        (portal, probe, target): (outcome, status, observed, replayed, probed_at)
        for portal, probe, target, outcome, status, observed, replayed, probed_at in query(
            pipeline.db_path,
            "SELECT portal, probe, target, outcome, status_code, observed, replayed, probed_at "
            "FROM probes.results",
        )
    }
    assert len(results) == len(targets)  # interval 1: every target, once
    assert results[("ct", "link", f"{links.url}/missing")][:2] == ("http_error", 404)
    assert results[("ct", "link", f"{links.url}/ok")][:2] == ("ok", 200)
    content = results[("ct", "content_date", "aaaa-0002")]
    assert content[0] == "ok"
    assert [item["name"] for item in content[2]] == ["updated", "when"]
    assert content[2][0]["at"].year == 2025 and content[2][1]["at"] is None
    layer = results[("geo", "layer_date", roads)]
    assert layer[0] == "ok"
    assert [(item["name"], item["at"].date().isoformat()) for item in layer[2]] == [
        ("dataLastEditDate", "2026-01-01")
    ]
    assert results[("geo", "layer_date", parcels)][:2] == ("http_error", 404)
    # As-of portals are probed as of the night: the probe times stand at its instant.
    instant = night_instant(today)
    for _, _, _, replayed, probed_at in results.values():
        assert replayed is True
        assert instant <= probed_at < instant + timedelta(minutes=5)
    # Every request named the night it asked about.
    assert all(r.headers.get("X-Ctdata-As-Of") for r in links.all_received())
    # Probing changed neither the snapshot nor the nightly metrics.
    assert query(pipeline.db_path, "SELECT * FROM catalog.assets ORDER BY ALL") == catalog_before
    after = query(pipeline.db_path, "SELECT * FROM board.plan_metrics ORDER BY ALL")
    nightly_after = [row for row in after if not _probed_metric(row[4])]
    assert nightly_after == before
    assert {row[4] for row in after} - {row[4] for row in before}, "probe metrics were written"


def _probed_metric(name):
    return name in PROBED_METRIC_NAMES or name.startswith(PROBED_METRIC_FAMILIES)


def test_each_night_probes_its_share_longest_unprobed_first_and_a_rerun_replaces_it(
    tmp_path, instance, today
):
    links = ProbeServer({f"/page-{n}": Answer(200) for n in range(10)})
    records = [
        with_columns(f"link-{n:04d}", [("name", "Text")], attribution_link=f"{links.url}/page-{n}")
        for n in range(10)
    ]
    nights = [today - timedelta(days=3 - n) for n in range(4)]
    with links, serve("socrata", records) as socrata:
        pipeline = Pipeline(
            tmp_path,
            [portal_entry("ct", socrata, as_of=True, probes={**FAST, "probe_interval_days": 3})],
        )
        for night in nights:
            pipeline.run_ok(instance, night, "ct")
            probe(pipeline, instance, night, "ct")
        first_night_rows = query(
            pipeline.db_path,
            "SELECT target, probed_at FROM probes.results WHERE snapshot_date = ? ORDER BY 1",
            [nights[0]],
        )
        probe(pipeline, instance, nights[0], "ct")  # a re-run of the first night

    by_night = {
        night: [row[0].rsplit("/", 1)[1] for row in rows]
        for night in nights
        if (
            rows := query(
                pipeline.db_path,
                "SELECT target FROM probes.results WHERE snapshot_date = ? ORDER BY 1",
                [night],
            )
        )
        is not None
    }
    pages = sorted(f"page-{n}" for n in range(10))
    # ceil(10 / 3) = 4 a night, in order, until every link has had its turn ...
    assert by_night[nights[0]] == pages[:4]
    assert by_night[nights[1]] == pages[4:8]
    assert by_night[nights[2]] == pages[8:]
    # ... then the ones probed longest ago, 3 nights on.
    assert by_night[nights[3]] == pages[:4]
    # The re-run replaced the first night's rows: the same links, once each.
    rerun_rows = query(
        pipeline.db_path,
        "SELECT target, probed_at FROM probes.results WHERE snapshot_date = ? ORDER BY 1",
        [nights[0]],
    )
    assert [t for t, _ in rerun_rows] == [t for t, _ in first_night_rows]
    assert query(pipeline.db_path, "SELECT count(*) FROM probes.results") == [(14,)]
    assert query(pipeline.db_path, "SELECT count(DISTINCT target) FROM probes.targets") == [(10,)]


def test_a_host_that_refuses_everything_is_a_result_and_the_run_succeeds(tmp_path, instance, today):
    dead = f"http://127.0.0.1:{closed_port()}"
    records = [
        with_columns(f"dead-{n:04d}", [("name", "Text")], attribution_link=f"{dead}/file-{n}")
        for n in range(3)
    ]
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(
            tmp_path,
            [portal_entry("ct", socrata, as_of=True, probes={**FAST, "probe_interval_days": 1})],
        )
        pipeline.run_ok(instance, today, "ct")
        [result] = probe(pipeline, instance, today, "ct")
    assert query(pipeline.db_path, "SELECT outcome, count(*) FROM probes.results GROUP BY 1") == [
        ("refused", 3)
    ]
    materialization = instance.get_latest_materialization_event(LINK_PROBES)
    metadata = materialization.asset_materialization.metadata
    assert metadata["outcome: refused"].value == 3
    assert metadata["hosts"].value == 1
    assert metadata["requests"].value == 3
    assert result.run_id == materialization.run_id


def test_a_live_portals_past_night_is_not_probed_and_says_so(tmp_path, instance, today):
    links = ProbeServer({"/ok": Answer(200)})
    records = [
        with_columns("aaaa-0001", [("d", "Calendar date")], attribution_link=f"{links.url}/ok")
    ]
    yesterday = today - timedelta(days=1)
    with links, serve("socrata", records) as socrata:
        stored = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True, probes=FAST)])
        for night in (yesterday, today):
            stored.run_ok(instance, night, "ct")
        # The same portal as a live one (no `as_of`): it answers for today only.
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, probes=FAST)])
        probe(pipeline, instance, yesterday, "ct")
        assert links.all_received() == []
        probe(pipeline, instance, today, "ct")
        assert links.all_received(), "tonight's night of a live portal is probed"
    # Tonight's link and content date, asked live; nothing for yesterday.
    assert query(
        pipeline.db_path,
        "SELECT snapshot_date, probe, replayed FROM probes.results ORDER BY ALL",
    ) == [(today, "content_date", False), (today, "link", False)]
    [yesterday_event] = [
        record.asset_materialization
        for record in instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=LINK_PROBES,
                asset_partitions=[night_key(yesterday, "ct")],
            ),
            limit=5,
        ).records
    ]
    assert "live portal" in yesterday_event.metadata["not probed"].value


def test_definitions_load_with_the_probe_job_and_its_schedule(tmp_path):
    with serve("socrata", []) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
    dg.Definitions.validate_loadable(pipeline.defs)
    job = pipeline.defs.resolve_job_def(PROBE_JOB)
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        "content_date_probes",
        "layer_date_probes",
        "link_probes",
        "probe_plan_metrics",
        "broken_links",
        "silently_stale",
    }
    schedule = pipeline.defs.resolve_schedule_def(PROBE_SCHEDULE)
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    # The report waits for the probe metrics too.
    report = pipeline.defs.resolve_assets_def("board_report")
    parents = {key.to_user_string() for key in report.dependency_keys}
    assert {"probe_plan_metrics", "broken_links", "silently_stale"} <= parents


def test_tonights_share_is_a_rule_of_nights_not_of_clock_times():
    """select_tonight on its own: a target probed exactly `interval` nights ago is due."""
    from datetime import date

    from ctdata_pipeline.probes.model import ProbeItem

    items = [ProbeItem("link", f"u{n}", f"u{n}") for n in range(5)]
    night = date(2026, 3, 10)
    history = {("link", "u0"): date(2026, 3, 3), ("link", "u1"): date(2026, 3, 4)}
    chosen = select_tonight(items, history, night, 7)
    # ceil(5 / 7) = 1: a never-probed one first (the first in target order).
    assert [item.target for item in chosen] == ["u2"]
    chosen = select_tonight(items[:2], history, night, 7)
    assert [item.target for item in chosen] == ["u0"]  # 7 nights ago: due; u1 is not


def test_nightly_then_probes_for_the_portals_stored_and_the_token_is_never_kept(
    tmp_path, instance, today, monkeypatch
):
    """run_nights(probes=True), as `ctdata nightly` and `ctdata demo` call it: each night's
    probe runs follow its nightly runs, only for the portals whose night was stored; the app
    token goes out as X-App-Token and never into a result or an asset's metadata."""
    token = "tok-h2-secret-1234"
    monkeypatch.setenv("SOCRATA_APP_TOKEN", token)
    links = ProbeServer({"/ok": Answer(200)})
    records = [
        with_columns("aaaa-0001", [("d", "Calendar date")], attribution_link=f"{links.url}/ok")
    ]
    with links, serve("socrata", records, hook=soql) as socrata, serve("dcat", {}) as hub:
        down = {"name": "down", "kind": "dcat", "url": f"{hub.base_url}/gone.json"}
        pipeline = Pipeline(
            tmp_path,
            [
                portal_entry("ct", socrata, as_of=True, probes={**FAST, "probe_interval_days": 1}),
                down,
            ],
        )
        results = run_nights(
            pipeline.defs, [(today, "ct"), (today, "down")], instance, "ERROR", probes=True
        )
        soql_requests = [r for r in socrata.requests if r.path.startswith("/resource/")]
    assert [(r.portal, r.success) for r in results] == [
        ("ct", True),
        ("down", False),
        ("ct probes", True),
    ]
    assert [r.headers.get("X-App-Token") for r in soql_requests] == [token]
    stored = query(pipeline.db_path, "SELECT * FROM probes.results")
    assert len(stored) == 2 and token not in repr(stored)
    for key in (LINK_PROBES, dg.AssetKey("content_date_probes")):
        event = instance.get_latest_materialization_event(key)
        assert token not in repr(event.asset_materialization.metadata)


def test_targets_of_a_real_hub_feed():
    """GeoHive's real DCAT-US feed (372 datasets): its first dataset read by hand has one
    ArcGIS layer (`.../MapServer/0`; the bare `.../MapServer` and `.../MapServer/WMSServer?...`
    are not layers) and 15 distinct distribution URLs to check (16 accessURLs, the WMS one
    twice), its layer and service among them."""
    from ctdata_pipeline.portals import Portal
    from ctdata_pipeline.probes.targets import find_targets

    feed = load_realdata("dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json")
    portal = Portal(
        name="geohive",
        kind="dcat",
        url="https://production-geohive.hub.arcgis.com/api/feed/dcat-us/1.1.json",
    )
    records = [(str(n), "dataset", True, d) for n, d in enumerate(feed["dataset"])]
    targets = find_targets(portal, records)
    first = [t.item for t in targets if t.asset_id == "0"]
    service = (
        "https://gsi.geodata.gov.ie/server/rest/services/Groundwater/"
        "IE_GSI_Groundwater_Historic_and_Probability_Flood_Maps_20K_IE26_ITM/MapServer"
    )
    assert [i.target for i in first if i.kind == "layer_date"] == [f"{service}/0"]
    links = [i.target for i in first if i.kind == "link"]
    assert len(links) == 15 and f"{service}/0" in links and service in links
    layers = {t.item.target for t in targets if t.item.kind == "layer_date"}
    assert all(LAYER_END.search(url) and "?" not in url for url in layers)
    # What a night of this feed asks (README, "Probe results"): 282 layers, 2,206 URLs.
    assert len(layers) == 282
    assert len({t.item.target for t in targets if t.item.kind == "link"}) == 2206
