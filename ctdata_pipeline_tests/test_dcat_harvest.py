"""The DCAT-US harvest of real feeds (../shared/realdata/dcat, ../shared/realdata/socrata) served
byte for byte on loopback, and of feeds that are broken in the ways feeds break."""

import copy
import json
import tracemalloc
from datetime import timedelta

import pytest

from ctdata_pipeline.demo.server import Reply, ServedRequest
from ctdata_pipeline.harvest.dcat import dcat_asset_id, harvest_dcat
from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.staging import StagingArea
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import portal_entry, realdata, serve

FEEDS = {
    "geohive": ("dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json", 372),
    "cdc": ("socrata/data_json_data.cdc.gov_2025-09-24.json", 1359),
    "philadelphia": ("dcat/other/dcat-us-1.1/philadelphia_opendataphilly_data.json", 402),
    "fcc-2025-01-31": ("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-01-31.json", 59),
    "fcc-2025-02-04": ("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-02-04.json", 59),
    "act-excerpt": ("dcat/arcgis-hub/dcat-us-1.1/actmapi-act-gov-au_sportsfield_excerpt.json", 1),
}


def body_of(body: bytes, content_type: str = "application/json; charset=utf-8", status: int = 200):
    """A hook that answers every request with these exact bytes."""

    def hook(request: ServedRequest) -> Reply:
        return Reply(status=status, body=body, headers={"Content-Type": content_type})

    return hook


def harvest(server, tmp_path, night, *, as_of=None, **options):
    portal = Portal.model_validate(portal_entry("hub", server, **options))
    area = StagingArea(tmp_path / "staging")
    with area.writer(portal.name, night) as writer:
        summary = harvest_dcat(portal, writer, night, as_of=as_of)
        writer.commit(summary)
    return summary, list(area.records(portal.name, night))


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_real_feeds_harvest_whole(feed, tmp_path, today):
    relative, expected = FEEDS[feed]
    raw = realdata(relative).read_bytes()
    with serve("dcat", None, hook=body_of(raw)) as server:
        summary, staged = harvest(server, tmp_path, today)
    datasets = json.loads(raw)["dataset"]
    assert summary.assets == expected == len(staged)
    assert summary.paging == "feed" and summary.duplicates_dropped == 0
    assert [record for _, record in staged] == datasets  # staged exactly as published
    assert [asset_id for asset_id, _ in staged] == [dcat_asset_id(d) for d in datasets]


def test_hub_and_socrata_identifiers_become_stable_ids():
    assert (
        dcat_asset_id(
            {
                "identifier": "https://www.arcgis.com/home/item.html?id=9F47E4A06F84458F90311D0A34D70EBF&sublayer=0"
            }
        )
        == "9f47e4a06f84458f90311d0a34d70ebf_0"
    )
    assert (
        dcat_asset_id(
            {"identifier": "https://x.hub.arcgis.com/content/9f47e4a06f84458f90311d0a34d70ebf_2"}
        )
        == "9f47e4a06f84458f90311d0a34d70ebf_2"
    )
    socrata_view = "https://opendata.fcc.gov/api/views/2ah7-n9rk"
    assert dcat_asset_id({"identifier": socrata_view}) == "2ah7-n9rk"
    legacy = "https://actmapi-actgov.opendata.arcgis.com/datasets/ACTGOV::sportsfield"
    assert dcat_asset_id({"identifier": legacy}) == legacy
    assert dcat_asset_id({"landingPage": "https://x/y"}) == "https://x/y"
    untitled = dcat_asset_id({"title": "Parcels"})
    assert untitled.startswith("no-identifier:") and untitled == dcat_asset_id({"title": "Parcels"})


def test_duplicate_identifiers_are_kept_once(tmp_path, today):
    feed = json.loads(realdata(FEEDS["fcc-2025-01-31"][0]).read_bytes())
    feed["dataset"].append(copy.deepcopy(feed["dataset"][0]))
    with serve("dcat", None, hook=body_of(json.dumps(feed).encode())) as server:
        summary, staged = harvest(server, tmp_path, today)
    assert summary.assets == 59 == len(staged) and summary.duplicates_dropped == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"conformsTo": "x", "datasets": []}', "the feed has no 'dataset' list"),
        (b'{"dataset": {"title": "one"}}', "the feed's 'dataset' is an object, not a list"),
        (b'{"dataset": "none"}', "the feed's 'dataset' is a string, not a list"),
        (b'[{"title": "one"}]', "top level is a list (a DCAT-US 1.0 feed?)"),
        (b'{"dataset": [{"title": "ok"}, 7]}', "dataset[1] is a number, not an object"),
    ],
)
def test_a_feed_that_is_not_a_dcat_catalog_is_refused(body, problem, tmp_path, today):
    with serve("dcat", None, hook=body_of(body)) as server:
        with pytest.raises(HarvestError) as raised:
            harvest(server, tmp_path, today)
    assert problem in str(raised.value) and str(raised.value).startswith("hub: ")
    assert not raised.value.retryable


def test_a_wrong_content_type_is_refused(tmp_path, today):
    html = b"<!doctype html><title>Hub is down</title>"
    with serve("dcat", None, hook=body_of(html, "text/html; charset=utf-8")) as server:
        with pytest.raises(HarvestError, match="content type 'text/html; charset=utf-8', not JSON"):
            harvest(server, tmp_path, today)


def test_broken_json_is_retried_then_refused(tmp_path, today):
    cut = realdata(FEEDS["geohive"][0]).read_bytes()[:100_000]
    with serve("dcat", None, hook=body_of(cut)) as server:
        with pytest.raises(HarvestError, match="the feed is not valid JSON") as raised:
            harvest(server, tmp_path, today)
    assert raised.value.retryable
    assert len(server.requests) == 3


def test_an_empty_dataset_list_harvests_nothing(tmp_path, today):
    with serve("dcat", None, hook=body_of(b'{"dataset": []}')) as server:
        summary, staged = harvest(server, tmp_path, today)
    assert summary.assets == 0 and staged == []


def test_a_missing_feed_is_not_retried(tmp_path, today):
    with serve("dcat", None, hook=body_of(b'{"error": "not found"}', status=404)) as server:
        with pytest.raises(HarvestError, match="HTTP 404") as raised:
            harvest(server, tmp_path, today)
    assert not raised.value.retryable and len(server.requests) == 1


def test_a_large_feed_streams_in_flat_memory(tmp_path, today):
    datasets = json.loads(realdata(FEEDS["geohive"][0]).read_bytes())["dataset"]
    copies = []
    for round_ in range(20):
        for index, dataset in enumerate(datasets):
            clone = dict(dataset)
            clone["identifier"] = f"https://example.org/feed/{round_}/{index}"
            copies.append(clone)
    body = json.dumps({"dataset": copies}).encode()
    assert len(body) > 35_000_000
    with serve("dcat", None, hook=body_of(body)) as server:
        portal = Portal.model_validate(portal_entry("hub", server))
        tracemalloc.start()
        try:
            with StagingArea(tmp_path).writer(portal.name, today) as writer:
                summary = harvest_dcat(portal, writer, today, as_of=None)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert summary.assets == len(copies) == 7440
    # The whole feed parsed at once would need several times its size; streaming needs a
    # few chunks and one dataset at a time.
    assert peak < len(body) / 8, f"peak {peak:,} bytes for a {len(body):,}-byte feed"


def test_a_past_night_only_from_a_feed_that_confirms_it(tmp_path, today):
    night = today - timedelta(days=1)
    feed = {"dataset": [{"identifier": "a", "title": "A"}]}
    with serve("dcat", feed) as server:
        summary, _ = harvest(server, tmp_path, night, as_of=night)
    assert summary.snapshot_time.date() == night
    with serve("dcat", feed, as_of_enabled=False) as live_looking:
        with pytest.raises(HarvestError, match="did not confirm that date"):
            harvest(live_looking, tmp_path, night, as_of=night)
