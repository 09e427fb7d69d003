"""The demo catalogs: deterministic, shaped like the real responses in ../shared/realdata, and
changing night by night the way a portal does."""

import re
import socket
import struct
import threading
from collections import Counter
from datetime import date, timedelta
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata

from ctdata_pipeline.demo.generator import DATE_TYPE, DemoStory, HubDemoFeed, SocrataDemoCatalog
from ctdata_pipeline.demo.portals import DEMO_HUB, DEMO_SOCRATA, DemoPortals, demo_portal_file
from ctdata_pipeline.demo.vocabulary import CATEGORIES
from ctdata_pipeline.harvest.asof import AS_OF_HEADER
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline_tests.support import load_realdata, normalized_rows

STORY = DemoStory(last_night=date(2026, 5, 20), nights=14, seed=7)
FIRST, LAST = night_instant(STORY.first_night), night_instant(STORY.last_night)


def in_scope_rows(records):
    portal = demo_portal_file().get(DEMO_SOCRATA)
    rows = normalized_rows(portal, records)
    return [row for row in rows if row["in_scope"]]


def test_the_same_story_gives_the_same_catalogs():
    assert SocrataDemoCatalog(STORY).records(LAST) == SocrataDemoCatalog(STORY).records(LAST)
    assert HubDemoFeed(STORY).feed(LAST) == HubDemoFeed(STORY).feed(LAST)
    other_seed = DemoStory(last_night=STORY.last_night, nights=14, seed=8)
    assert SocrataDemoCatalog(other_seed).records(LAST) != SocrataDemoCatalog(STORY).records(LAST)


def test_socrata_records_have_the_real_discovery_api_shape():
    real = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")
    real_record = real["results"][0]
    records = SocrataDemoCatalog(STORY).records(LAST)
    for record in records:
        assert set(record) == set(real_record)
        assert set(record["resource"]) == set(real_record["resource"])
        assert set(record["resource"]["page_views"]) == set(real_record["resource"]["page_views"])
        assert re.fullmatch(r"[a-z0-9]{4}-[a-z0-9]{4}", record["resource"]["id"])
        assert record["resource"]["data_updated_at"] is None or record["resource"][
            "data_updated_at"
        ].endswith(".000Z")
    keys = {m["key"] for r in records for m in r["classification"]["domain_metadata"]}
    assert keys == {"Agency_Agency", "Details_Geographic-Unit", "Details_Update-Frequency"}
    categories = {r["classification"].get("domain_category") for r in records}
    assert categories - {None} <= set(CATEGORIES)


def test_a_connecticut_mix_of_assets_and_metadata():
    records = SocrataDemoCatalog(STORY).records(FIRST)
    types = Counter(record["resource"]["type"] for record in records)
    assert {"dataset", "filter", "chart", "map", "story", "file", "href"} <= set(types)
    assert 1000 < len(records) < 1300
    assert Counter(record["metadata"]["domain"] for record in records)["data.hartford.gov"] == 25
    assert sum(record["resource"]["provenance"] == "community" for record in records) > 10
    assert sum(bool(record["resource"]["parent_fxf"]) for record in records) > 300

    rows = in_scope_rows(records)
    assert 600 < len(rows) < 700
    missing = [
        row
        for row in rows
        if row["description_text"] is None or not row["tags"] or row["update_frequency_raw"] is None
    ]
    # The plan says the portal went from 94% missing metadata to "under 20%": the demo starts
    # a little above that and improves.
    assert 0.18 < len(missing) / len(rows) < 0.30
    frequencies = Counter(row["update_frequency"] for row in rows)
    assert {
        "daily",
        "weekly",
        "monthly",
        "quarterly",
        "annual",
        "historical",
        "as_needed",
        "unknown",
    } <= set(frequencies)
    assert {row["update_frequency_raw"] for row in rows} >= {
        "Other",
        "Not updated (historical data)",
    }
    agency_rules = Counter(row["agency_rule"] for row in rows)
    assert (
        agency_rules["custom_field"] > agency_rules["attribution"] > 0 and agency_rules["owner"] > 0
    )
    ages = [
        (FIRST - row["data_updated_at"]).total_seconds() / 86400
        for row in rows
        if row["data_updated_at"] and row["update_frequency"] == "monthly"
    ]
    assert min(ages) < 30 < max(ages)  # some monthly datasets are fresh, some are not


def test_the_catalog_changes_night_by_night():
    catalog = SocrataDemoCatalog(STORY)
    first = {r["resource"]["id"]: r for r in catalog.records(FIRST)}
    last = {r["resource"]["id"]: r for r in catalog.records(LAST)}
    assert set(last) - set(first), "datasets were added"
    assert set(first) - set(last), "datasets were removed"
    renamed = [
        i
        for i in set(first) & set(last)
        if first[i]["resource"]["name"] != last[i]["resource"]["name"]
    ]
    assert renamed
    updated = [
        i
        for i in set(first) & set(last)
        if first[i]["resource"]["data_updated_at"] != last[i]["resource"]["data_updated_at"]
    ]
    assert len(updated) > 50

    def missing_share(records):
        rows = in_scope_rows(records)
        return sum(
            r["description_text"] is None or not r["tags"] or r["update_frequency_raw"] is None
            for r in rows
        ) / len(rows)

    assert missing_share(last.values()) < missing_share(first.values()) - 0.02


def test_the_hub_feed_has_the_hub_quirks():
    feed = HubDemoFeed(STORY).feed(LAST)
    real = load_realdata("dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json")
    assert {k: v for k, v in feed.items() if k != "dataset"} == {
        k: v for k, v in real.items() if k != "dataset"
    }
    real_keys = set().union(*(d.keys() for d in real["dataset"]))
    datasets = feed["dataset"]
    assert 200 < len(datasets) < 400
    assert all(set(d) <= real_keys | {"accrualPeriodicity"} for d in datasets)
    assert any(d["contactPoint"]["hasEmail"] == "{{orgContactEmail}}" for d in datasets)
    assert any(d["publisher"]["name"].startswith("    ") for d in datasets)
    assert any(d["description"].startswith("<div") for d in datasets)
    assert any(d["license"].startswith("<div") for d in datasets)
    assert any("item.html?id=" in d["identifier"] for d in datasets)
    assert any("/datasets/" in d["identifier"] for d in datasets)
    assert all("downloadURL" not in x for d in datasets for x in d["distribution"])
    assert any("accrualPeriodicity" in d for d in datasets)
    assert any("accrualPeriodicity" not in d for d in datasets)


def test_the_demo_servers_answer_like_the_discovery_api():
    portals = DemoPortals(STORY).start()
    try:
        url = f"{portals.socrata.base_url}/api/catalog/v1"
        too_deep = requests.get(url, params={"offset": 9500, "limit": 1000}, timeout=10)
        assert too_deep.status_code == 400 and "scroll_id" in too_deep.json()["error"]
        both = requests.get(url, params={"order": "dataset_id", "scroll_id": ""}, timeout=10)
        assert both.status_code == 400
        typo = requests.get(url, params={"domain": "data.ct.gov"}, timeout=10).json()
        assert typo["results"] == [] and typo["resultSetSize"] == 0  # afeld/sodapy #59
        asked = requests.get(
            url, params={"domains": "data.ct.gov", "as_of": "2026-05-10", "limit": 5}, timeout=10
        )
        assert asked.headers["X-Ctdata-As-Of"] == "2026-05-10T06:00:00+00:00"
        assert len(asked.json()["results"]) == 5
        feed = requests.get(portals.hub.url, timeout=10)
        assert feed.headers["Content-Type"].startswith("application/json")
        assert portals.portal_file().names == [DEMO_SOCRATA, DEMO_HUB]
    finally:
        portals.stop()


# --- what the metrics v2 probes find on the demo portals ----------------------------------------


def _as_of(instant):
    return {AS_OF_HEADER: instant.isoformat()}


def _soql(portals, dataset_id, columns, instant):
    """sodapy's `get`, as the content-date probe asks it, against the demo Socrata portal."""
    client = Socrata(
        urlsplit(portals.socrata.base_url).netloc,
        None,
        session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
        timeout=10,
    )
    client.session.headers.update(_as_of(instant))
    select = ", ".join(f"max(`{column}`) AS max_{i}" for i, column in enumerate(columns))
    return client.get(dataset_id, select=select)


def _date_columns(asset):
    return [c[1] for c in asset.columns if c[2] == DATE_TYPE]


@pytest.fixture(scope="module")
def portals():
    running = DemoPortals(STORY).start()
    yield running
    running.stop()


def test_a_quarter_of_the_datasets_have_date_columns_some_silently_stale(portals):
    catalog = portals.socrata_catalog
    records = {r["resource"]["id"]: r for r in catalog.records(LAST)}
    rows = in_scope_rows(records.values())
    dated = [row for row in rows if catalog.by_id[row["asset_id"]].content is not None]
    # The others' date-like columns are text, as on many portals (and the probes stay quick).
    assert 0.15 < len(dated) / len(rows) < 0.35
    assert all(
        DATE_TYPE in records[row["asset_id"]]["resource"]["columns_datatype"] for row in dated
    )
    silent = [row for row in dated if catalog.by_id[row["asset_id"]].content.frozen]
    assert len(silent) >= 5
    for row in silent:
        asset = catalog.by_id[row["asset_id"]]
        period = asset.updates.period_days
        newest = catalog.content_maxima(asset, LAST)[_date_columns(asset)[0]]
        # The upload is on time (FR-1 fresh or due) but the rows are over 3 periods old.
        assert (LAST - row["data_updated_at"]).total_seconds() / 86400 <= period
        assert (LAST - newest).total_seconds() / 86400 > 3 * period


def test_soql_answers_the_newest_dates_as_of_the_night_asked(portals):
    catalog = portals.socrata_catalog
    dated = [a for a in catalog.assets if a.content and a.alive(FIRST) and a.type == "dataset"]
    ordinary = next(
        a
        for a in dated
        if not (a.content.frozen or a.content.all_null)
        and a.content.future_column is None
        and a.content.unknown_column is None
        and a.updates.last_update(FIRST, a.created) != a.updates.last_update(LAST, a.created)
    )
    columns = _date_columns(ordinary)
    first, last = (_soql(portals, ordinary.id, columns, when)[0] for when in (FIRST, LAST))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000", last["max_0"])  # floating
    assert first["max_0"] < last["max_0"]  # the rows moved on with the data update
    expected = catalog.content_maxima(ordinary, LAST)[columns[0]]
    assert last["max_0"] == f"{expected:%Y-%m-%d}T00:00:00.000"

    empty = next(a for a in dated if a.content.all_null)
    assert _soql(portals, empty.id, _date_columns(empty), LAST) == [{}]  # nulls left out
    expiring = next(a for a in dated if a.content.future_column)
    row = _soql(portals, expiring.id, _date_columns(expiring), LAST)[0]
    assert row[f"max_{len(_date_columns(expiring)) - 1}"] > f"{LAST:%Y-%m-%d}"
    renamed = next(a for a in dated if a.content.unknown_column)
    with pytest.raises(requests.HTTPError) as refused:
        _soql(portals, renamed.id, _date_columns(renamed), LAST)
    assert refused.value.response.status_code == 400
    assert "No such column" in refused.value.response.json()["message"]


def test_hub_layers_answer_their_edit_dates_and_modified_is_often_a_metadata_date(portals):
    feed = portals.hub_feed
    living = [layer for layer in feed.layers if layer.alive(LAST)]
    answers = {}
    for layer in living:
        reply = requests.get(
            feed.layer_url(layer), params={"f": "json"}, headers=_as_of(LAST), timeout=10
        )
        assert reply.status_code == 200
        answers[layer.edits] = (layer, reply.json())
    layer, both = answers["both"]
    assert both["editingInfo"]["dataLastEditDate"] == int(layer.data_edit(LAST).timestamp() * 1000)
    assert both["editingInfo"]["lastEditDate"] >= both["editingInfo"]["dataLastEditDate"]
    assert set(answers["last_only"][1]["editingInfo"]) == {"lastEditDate"}
    assert "editingInfo" not in answers["neither"][1]
    assert "error" in answers["error"][1]  # an error, with HTTP 200
    later = [
        layer
        for layer in living
        if (layer.modified(LAST) - layer.data_edit(LAST)).total_seconds() > 86400
    ]
    assert 0.1 < len(later) / len(living) < 0.6
    distributions = [d["accessURL"] for d in feed.feed(LAST)["dataset"][0]["distribution"]]
    assert any(re.search(r"/FeatureServer/\d+$", url) for url in distributions)


def test_links_answer_move_vanish_time_out_and_refuse_head(portals):
    catalog, feed = portals.socrata_catalog, portals.hub_feed
    outcomes = Counter()
    for asset in catalog.assets:
        if asset.attribution_link is None or not asset.alive(LAST):
            continue
        url = catalog.hosts.url(*asset.attribution_link)
        kind = catalog.links[asset.attribution_link].kind
        try:
            head = requests.head(url, headers=_as_of(LAST), timeout=1.0, allow_redirects=True)
        except requests.RequestException as error:
            outcomes[(kind, type(error).__name__)] += 1
            continue
        outcomes[(kind, head.status_code)] += 1
        if head.status_code == 405:
            assert requests.get(url, headers=_as_of(LAST), timeout=5).status_code == 200
    assert outcomes[("ok", 200)] > 50
    assert outcomes[("moved", 200)] == 6  # 301 to the new address, which answers
    assert outcomes[("loop", "TooManyRedirects")] == 1
    assert outcomes[("gone", 404)] == 5
    assert outcomes[("no_head", 405)] == 4
    assert outcomes[("slow", "ReadTimeout")] == 2
    assert outcomes[("ok", "ConnectionError")] == 1  # the host that is down
    robots = requests.get(catalog.hosts.url("robots", "/robots.txt"), timeout=5).text
    assert "Disallow: /internal/" in robots
    assert any(path.startswith("/internal/") for host, path in catalog.links if host == "robots")

    def status(path, instant):
        url = feed.hosts.url("downloads", path)
        return requests.head(url, headers=_as_of(instant), timeout=5).status_code

    plans = {plan.kind: path for (host, path), plan in feed.links.items()}
    assert status(plans["gone"], FIRST) == status(plans["gone"], LAST) == 404
    # Deleted on the second night: every later probe fails, so it is broken by the end.
    assert (status(plans["gone_from"], FIRST), status(plans["gone_from"], LAST)) == (200, 410)
    # Failing from the night before last only: one probe in two nights sees it, not two.
    night_before = night_instant(STORY.night_dates()[-3])
    assert (status(plans["failing_from"], night_before), status(plans["failing_from"], LAST)) == (
        200,
        500,
    )
    hosts = {urlsplit(url).netloc for url in dict(catalog.hosts.bases).values()}
    assert len(hosts) == 10  # two portals and eight hosts, each its own politeness


def test_hub_identifiers_change_form_one_night_and_keep_their_layer_urls(portals):
    feed = portals.hub_feed
    rekey = STORY.rekey_night
    before = feed.feed(night_instant(rekey - timedelta(days=1)))["dataset"]
    after = feed.feed(night_instant(rekey))["dataset"]

    def by_layer(datasets):
        return {
            next(
                d["accessURL"] for d in dataset["distribution"] if "FeatureServer" in d["accessURL"]
            ): dataset["identifier"]
            for dataset in datasets
        }

    old, new = by_layer(before), by_layer(after)
    assert len(old) == len(before) and len(new) == len(after)  # one layer URL per dataset
    common = set(old) & set(new)
    assert len(common) > 200
    changed = [url for url in common if old[url] != new[url]]
    assert len(changed) > 0.8 * len(common)
    for url in changed:
        assert re.fullmatch(r"https://geodata\.ct\.gov/datasets/[0-9a-f]{32}_\d+", old[url])
        assert re.fullmatch(r"https://geodata\.ct\.gov/datasets/[a-z]+::[a-z0-9-]+", new[url])
    # The few identified by their ArcGIS Online item page keep it.
    assert all("item.html?id=" in old[url] for url in common if old[url] == new[url])
    assert len({d["identifier"] for d in after}) == len(after)
    landing = requests.head(after[0]["landingPage"], timeout=5)
    assert landing.status_code == 200


def test_the_demo_portal_file_probes_quickly():
    for portal in demo_portal_file().portals:
        assert portal.probes.probe_interval_days == 2
        assert portal.probes.min_interval_seconds == 0.005
        assert portal.probes.timeout_seconds == 1.5


def test_a_client_resetting_its_connection_prints_nothing(portals, capfd):
    """A probe that times out drops its kept-alive connection: the server says nothing."""
    host, port = urlsplit(portals.hosts["slow"].base_url).netloc.split(":")
    before = threading.active_count()
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"GET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.recv(4096).startswith(b"HTTP/1.1 404")
        # Close with a reset (SO_LINGER 0) while the server waits for the next request.
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # The connection's handler thread ends once it has read the reset.
    threading.Event().wait(0.05)
    for _ in range(100):
        if threading.active_count() <= before:
            break
        threading.Event().wait(0.05)
    assert threading.active_count() <= before
    assert "Traceback" not in capfd.readouterr().err
    assert (
        requests.get(portals.hosts["slow"].base_url + "/robots.txt", timeout=5).status_code == 404
    )
