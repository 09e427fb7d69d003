"""The Socrata harvest through real sodapy and requests, against a loopback Discovery API serving
real result records (from ../shared/realdata/socrata) — including the faults a nightly job meets."""

import json
import threading
import time
from datetime import timedelta

import pytest

from ctdata_pipeline.demo.server import Reply, ServedRequest
from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.socrata import harvest_socrata
from ctdata_pipeline.harvest.staging import StagingArea
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import portal_entry, serve, socrata_catalog


def portal_for(server, **options) -> Portal:
    return Portal.model_validate(portal_entry("ct", server, **options))


def harvest(portal, tmp_path, night, *, token=None, as_of=None):
    area = StagingArea(tmp_path / "staging")
    with area.writer(portal.name, night) as writer:
        summary = harvest_socrata(portal, writer, night, app_token=token, as_of=as_of)
        writer.commit(summary)
    return summary, [asset_id for asset_id, _ in area.records(portal.name, night)]


def first_requests(count: int, reply: Reply):
    """A hook that answers the first `count` catalog requests with `reply`, then behaves."""
    served = {"n": 0}
    lock = threading.Lock()

    def hook(request: ServedRequest) -> Reply | None:
        with lock:
            served["n"] += 1
            return reply if served["n"] <= count else None

    return hook


def catalog_requests(server):
    return [r for r in server.requests if r.path == "/api/catalog/v1"]


def test_offset_pages_in_dataset_id_order_with_the_app_token(tmp_path, today):
    records = socrata_catalog(2350, max_columns=3)
    with serve("socrata", records) as server:
        summary, ids = harvest(portal_for(server, page_size=1000), tmp_path, today, token="tok-1")
    assert summary.assets == 2350 and summary.result_set_size == 2350
    assert summary.paging == "offset" and summary.pages == 3 and summary.duplicates_dropped == 0
    assert sorted(ids) == sorted(r["resource"]["id"] for r in records)
    requests = catalog_requests(server)
    assert [(r.param("offset"), r.param("limit"), r.param("order")) for r in requests] == [
        ("0", "1000", "dataset_id"),
        ("1000", "1000", "dataset_id"),
        ("2000", "1000", "dataset_id"),
    ]
    assert all(r.param("domains") == "data.ct.gov" for r in requests)
    assert all(r.headers.get("X-App-Token") == "tok-1" for r in requests)
    assert summary.source_url == f"{server.base_url}/api/catalog/v1?domains=data.ct.gov"


def test_federated_domains_are_asked_for_too(tmp_path, today):
    own = socrata_catalog(30, datasets_only=True)
    federated = socrata_catalog(5, domain="data.hartford.gov", start=30)
    elsewhere = socrata_catalog(7, domain="data.ny.gov", start=40)
    with serve("socrata", own + federated + elsewhere) as server:
        portal = portal_for(server, federated_domains=["data.hartford.gov"])
        summary, _ = harvest(portal, tmp_path, today)
    assert summary.assets == 35
    assert catalog_requests(server)[0].param("domains") == "data.ct.gov,data.hartford.gov"
    assert catalog_requests(server)[0].param("search_context") == "data.ct.gov"


def test_a_503_then_success(tmp_path, today):
    hook = first_requests(1, Reply(status=503, body=b'{"error": "busy"}'))
    with serve("socrata", socrata_catalog(50), hook=hook) as server:
        summary, ids = harvest(portal_for(server), tmp_path, today)
    assert summary.assets == 50 and len(ids) == 50
    assert len(catalog_requests(server)) == 2


def test_a_429_waits_as_long_as_retry_after_says(tmp_path, today):
    throttled = Reply(
        status=429,
        body=b'{"error": "too many requests"}',
        headers={"Content-Type": "application/json", "Retry-After": "2"},
    )
    with serve("socrata", socrata_catalog(20), hook=first_requests(1, throttled)) as server:
        started = time.monotonic()
        summary, _ = harvest(portal_for(server), tmp_path, today)
        waited = time.monotonic() - started
    assert summary.assets == 20
    assert waited >= 2.0


def test_a_timeout_is_retried(tmp_path, today):
    stalled = Reply(body=b"{}", delay_seconds=2.0)
    with serve("socrata", socrata_catalog(20), hook=first_requests(1, stalled)) as server:
        summary, _ = harvest(portal_for(server, timeout_seconds=0.5), tmp_path, today)
    assert summary.assets == 20
    assert len(catalog_requests(server)) == 2


def test_a_portal_that_stays_down_is_a_retryable_failure(tmp_path, today):
    down = Reply(status=503, body=b'{"error": "maintenance"}')
    with serve("socrata", [], hook=first_requests(100, down)) as server:
        with pytest.raises(HarvestError) as raised:
            harvest(portal_for(server, max_retries=1), tmp_path, today)
    assert raised.value.retryable
    assert "HTTP 503" in str(raised.value) and "maintenance" in str(raised.value)
    assert str(raised.value).startswith("ct: ")


def test_malformed_json_is_a_clear_error_after_retries(tmp_path, today):
    broken = Reply(body=b'{"results": [{"resource": {"id": "abcd-1234"')
    with serve("socrata", [], hook=first_requests(100, broken)) as server:
        with pytest.raises(HarvestError, match="unusable page: not valid JSON") as raised:
            harvest(portal_for(server), tmp_path, today)
    assert raised.value.retryable
    assert len(catalog_requests(server)) == 3  # the page was fetched three times


def test_an_html_error_page_with_status_200_is_refused(tmp_path, today):
    page = Reply(
        body=b"<html><body>Site maintenance</body></html>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    with serve("socrata", [], hook=first_requests(100, page)) as server:
        with pytest.raises(HarvestError, match="content type 'text/html; charset=utf-8', not JSON"):
            harvest(portal_for(server), tmp_path, today)


def test_a_client_error_is_not_worth_retrying(tmp_path, today):
    bad = Reply(status=400, body=b'{"error": "bad parameter"}')
    with serve("socrata", [], hook=first_requests(100, bad)) as server:
        with pytest.raises(HarvestError, match="HTTP 400") as raised:
            harvest(portal_for(server), tmp_path, today)
    assert not raised.value.retryable
    assert len(catalog_requests(server)) == 1


def shifted_pages(records, shift_offsets: dict[int, int]):
    """A hook that answers some offsets with a page starting elsewhere (an unstable order)."""

    def hook(request: ServedRequest) -> Reply | None:
        offset = int(request.param("offset") or 0)
        if offset not in shift_offsets:
            return None
        limit = int(request.param("limit"))
        start = shift_offsets[offset]
        ordered = sorted(records, key=lambda r: r["resource"]["id"])
        body = {"results": ordered[start : start + limit], "resultSetSize": len(records)}
        return Reply(body=json.dumps(body).encode())

    return hook


def test_duplicates_across_pages_are_dropped(tmp_path, today):
    records = socrata_catalog(250, max_columns=2)
    # Page two starts one asset early (it repeats the last of page one); page three still covers
    # the end, so every asset arrives and one arrives twice.
    hook = shifted_pages(records, {100: 99, 200: 199})
    with serve("socrata", records, hook=hook) as server:
        summary, ids = harvest(portal_for(server, page_size=100), tmp_path, today)
    assert summary.duplicates_dropped == 1
    assert summary.assets == 250 and len(set(ids)) == 250


def test_duplicates_that_hide_an_asset_fail_after_recrawling(tmp_path, today):
    records = socrata_catalog(250, max_columns=2)
    # Page two repeats one asset and page three starts where it should: one asset is never seen.
    hook = shifted_pages(records, {100: 99})
    with serve("socrata", records, hook=hook) as server:
        with pytest.raises(HarvestError, match="kept changing while it was paged") as raised:
            harvest(portal_for(server, page_size=100), tmp_path, today)
    assert "249 unique assets were paged but resultSetSize is 250" in str(raised.value)
    assert raised.value.retryable
    assert len([r for r in catalog_requests(server) if r.param("offset") == "0"]) == 3


def test_a_catalog_that_changes_between_pages_is_crawled_again(tmp_path, today):
    records = socrata_catalog(150, max_columns=2)
    changed = {"done": False}

    def hook(request: ServedRequest) -> Reply | None:
        if request.param("offset") == "100" and not changed["done"]:
            changed["done"] = True  # an asset was published mid-crawl, once
            body = {"results": records[100:], "resultSetSize": 151}
            return Reply(body=json.dumps(body).encode())
        return None

    with serve("socrata", records, hook=hook) as server:
        summary, ids = harvest(portal_for(server, page_size=100), tmp_path, today)
    assert summary.assets == 150 and len(set(ids)) == 150
    assert len([r for r in catalog_requests(server) if r.param("offset") == "0"]) == 2


def test_an_empty_catalog_harvests_nothing(tmp_path, today):
    with serve("socrata", []) as server:
        summary, ids = harvest(portal_for(server), tmp_path, today)
    assert summary.assets == 0 and ids == [] and summary.result_set_size == 0


def test_more_than_10000_assets_by_deep_scrolling(tmp_path, today):
    records = socrata_catalog(10_500, max_columns=1)
    with serve("socrata", records) as server:
        summary, ids = harvest(portal_for(server, page_size=2000), tmp_path, today)
    assert summary.paging == "scroll"
    assert summary.assets == 10_500 and len(set(ids)) == 10_500
    requests = catalog_requests(server)
    scrolls = [r for r in requests if r.param("scroll_id") is not None]
    assert scrolls[0].param("scroll_id") == ""
    assert all(r.param("order") is None and r.param("offset") is None for r in scrolls)
    assert len(scrolls) == 7  # six pages of 2,000 or fewer, then the empty page that ends it
    for request in requests:  # never past the API's 10,000 offset window
        assert int(request.param("offset") or 0) + int(request.param("limit")) <= 10_000


def test_a_past_night_only_from_a_portal_that_confirms_it(tmp_path, today):
    night = today - timedelta(days=3)
    with serve("socrata", socrata_catalog(10)) as server:
        summary, _ = harvest(portal_for(server, as_of=True), tmp_path, night, as_of=night)
    assert summary.snapshot_time == night_instant(night)
    assert catalog_requests(server)[0].param("as_of") == night.isoformat()

    with serve("socrata", socrata_catalog(10), as_of_enabled=False) as live_looking:
        with pytest.raises(HarvestError, match="did not confirm that date") as raised:
            harvest(portal_for(live_looking, as_of=True), tmp_path, night, as_of=night)
    assert not raised.value.retryable
