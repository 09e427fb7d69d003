"""The fault matrix, network and content: every fault hits tonight's harvest of a portal whose
last good night is stored (snapshot, metrics, board tables and report), through the real nightly
job. Each ends with one clear reason and every table and report file exactly as it was, or, for
input the pipeline can read, with the night stored and the odd values read the documented way.

The process faults (kill, concurrency, read-only file, full disk) are in test_process_faults.py;
hostile text in test_hostile_text.py."""

from __future__ import annotations

import gzip
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from ctdata_pipeline.demo.server import Reply, ServedRequest
from ctdata_pipeline_tests.support import (
    GOOD_ASSETS,
    GOOD_DATASETS,
    History,
    dcat_dataset,
    good_feed,
    portal_entry,
    query,
    serve,
    socrata_catalog,
    socrata_record,
)

UNRESOLVABLE_HOST = "portal.ctdata.invalid"
# Fast failures: no transport retry (tested on their own), half-second timeouts; faults pause
# for longer than that.
FAST = {"max_retries": 0, "timeout_seconds": 0.5}
PAUSE = 2.0


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """One Dagster instance for the matrix: its runs are independent, and a new instance per
    fault would cost more than the fault."""
    with dg.instance_for_test() as shared:
        yield shared


# --- network --------------------------------------------------------------------------------

PORTAL_NAMES = {"socrata": "ct", "dcat": "hub"}
FEED_PATH = "/api/feed/dcat-us/1.1.json"


def always(reply: Reply) -> Callable[[ServedRequest], Reply]:
    return lambda request: reply


def json_body(text: str) -> Reply:
    return Reply(body=text.encode("utf-8"))


def gzip_header_then_garbage() -> Reply:
    body = gzip.compress(b'{"results": [], "resultSetSize": 0}')[:12] + b"\x00garbage\xff" * 4
    return Reply(
        body=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )


NETWORK_FAULTS: dict[str, tuple[Callable[[], Reply] | None, str]] = {
    # name: (the reply forced on every request, or None for faults below HTTP; the reason)
    "connection refused": (None, r"connection failed \(.*Connection refused"),
    "DNS failure": (None, r"host name could not be resolved"),
    "read timeout": (lambda: Reply(delay_seconds=PAUSE), r"timed out"),
    "stall mid-body": (
        lambda: Reply(
            body=b'{"results": [], "resultSetSize": 0}', stall_after_bytes=9, stall_seconds=PAUSE
        ),
        r"timed out reading the response",
    ),
    "truncated JSON": (
        lambda: json_body('{"results": [{"resource": {"id": "ab'),
        r"not valid JSON",
    ),
    "connection closed mid-body": (
        lambda: Reply(body=b'{"results": [', declared_length=4096),
        r"cut short or unusable \(IncompleteRead",
    ),
    **{
        f"HTTP {status}": (
            lambda status=status: Reply(
                status=status,
                body=b'{"error": "refused"}',
                headers={"Content-Type": "application/json", "Retry-After": "0"},
            ),
            rf"HTTP {status} from http://127\.0\.0\.1:\d+/",
        )
        for status in (400, 401, 403, 404, 429, 500, 502, 503)
    },
    "redirect loop": (
        lambda: Reply(status=302, headers={"Location": "/again"}),
        r"redirected in a loop \(more than 30 redirects",
    ),
    "HTML error page with 200": (
        lambda: Reply(
            body=b"<html><body><h1>We'll be right back</h1></body></html>",
            headers={"Content-Type": "text/html; charset=utf-8"},
        ),
        r"content type 'text/html",
    ),
    "corrupt gzip body": (gzip_header_then_garbage, r"compressed body could not be decompressed"),
}


@pytest.fixture
def unresolvable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Name resolution that fails for one host, as a resolver answers NXDOMAIN: the only fault
    here not made on the wire, since the tests may not reach a real DNS server."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == UNRESOLVABLE_HOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def entry_at(kind: str, base_url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": PORTAL_NAMES[kind], "kind": kind, **FAST}
    if kind == "socrata":
        entry.update(url=base_url, domain="data.ct.gov")
    else:
        entry["url"] = base_url + FEED_PATH
    return entry


@contextmanager
def faulty_portal(kind: str, fault: str) -> Iterator[dict[str, Any]]:
    """The portal file entry of a portal that answers with the fault."""
    reply, _ = NETWORK_FAULTS[fault]
    if fault == "connection refused":
        yield entry_at(kind, f"http://127.0.0.1:{closed_port()}")
    elif fault == "DNS failure":
        yield entry_at(kind, f"http://{UNRESOLVABLE_HOST}")
    else:
        assert reply is not None
        payload = socrata_catalog(GOOD_ASSETS) if kind == "socrata" else good_feed()
        with serve(kind, payload, hook=always(reply())) as server:
            yield entry_at(kind, server.base_url)


@pytest.mark.usefixtures("unresolvable_host")
@pytest.mark.parametrize("kind", ["socrata", "dcat"])
@pytest.mark.parametrize("fault", list(NETWORK_FAULTS))
def test_a_network_fault_fails_the_night_and_loses_nothing(fault, kind, history, instance, today):
    with faulty_portal(kind, fault) as entry:
        succeeded, reason = history.tonight(instance, today, entry)
    assert not succeeded
    _, expected = NETWORK_FAULTS[fault]
    assert re.search(rf"^{entry['name']}: .*{expected}", reason), reason
    assert "\n" not in reason and "Traceback" not in reason
    history.assert_nothing_lost()


# --- content --------------------------------------------------------------------------------


def with_duplicate_ids() -> list[dict[str, Any]]:
    """Two records with one id: the portal counts 60 assets but only 59 can be told apart."""
    records = socrata_catalog(GOOD_ASSETS)
    records[7]["resource"]["id"] = records[8]["resource"]["id"]
    return records


def with_wrong_shaped_id() -> list[dict[str, Any]]:
    records = socrata_catalog(GOOD_ASSETS)
    records[3]["resource"]["id"] = "'; DROP TABLE catalog.snapshots; --"
    return records


def growing_catalog() -> Callable:
    """A catalog that gains an asset between every two pages, night after night."""
    calls = {"n": 0}

    def source(as_of: date | None) -> tuple[Any, datetime]:
        calls["n"] += 1
        return socrata_catalog(GOOD_ASSETS + calls["n"]), datetime.now(UTC)

    return source


EMPTY_REFUSED = (
    r"holds no assets at all, against \d+ in the last good snapshot before it \(.*\); an "
    r"empty catalog is never stored, so nothing was written"
)
REFUSED_CONTENT: dict[str, tuple[str, Any, str, dict[str, Any]]] = {
    # name: (kind, what the portal serves, the reason, portal options)
    "empty catalog": ("socrata", [], EMPTY_REFUSED, {}),
    "shrunken catalog": (
        "socrata",
        socrata_catalog(12),
        r"refused: for .*, \d+ in-scope datasets and \d+ assets are below 0.5 x the \d+ and "
        r"\d+ of the last good snapshot before it \(.*\); nothing was written",
        {},
    ),
    "empty feed": ("dcat", {"dataset": []}, EMPTY_REFUSED, {}),
    "duplicate ids that hide an asset": (
        "socrata",
        with_duplicate_ids(),
        r"catalog kept changing while it was paged .*59 unique assets were paged but "
        r"resultSetSize is 60",
        {},
    ),
    "id of the wrong shape": ("socrata", with_wrong_shaped_id(), r"not a Socrata id", {}),
    "catalog changing between pages": (
        "socrata",
        growing_catalog(),
        r"catalog kept changing while it was paged \(3 attempts",
        {"page_size": 25},
    ),
    "dataset not a list": (
        "dcat",
        {"dataset": {"identifier": "a", "title": "A"}},
        r"the feed's 'dataset' is an object, not a list",
        {},
    ),
    "feed that is a list": ("dcat", [dcat_dataset("a")], r"top level is a list", {}),
    "dataset entries that are not objects": (
        "dcat",
        {"dataset": [dcat_dataset("a"), "b"]},
        r"dataset\[1\] is a string, not an object",
        {},
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_CONTENT))
def test_content_that_cannot_be_a_catalog_is_refused_and_loses_nothing(
    case, history, instance, today
):
    kind, payload, expected, options = REFUSED_CONTENT[case]
    with serve(kind, payload) as server:
        entry = portal_entry(PORTAL_NAMES[kind], server, **FAST, **options)
        succeeded, reason = history.tonight(instance, today, entry)
    assert not succeeded
    assert re.search(expected, reason), reason
    history.assert_nothing_lost()


INVALID_UTF8 = (
    b'{"results": [{"resource": {"id": "abcd-0001", "name": "Caf\xe9"}}], "resultSetSize": 1}'
)


@pytest.mark.parametrize("kind", ["socrata", "dcat"])
def test_invalid_utf8_is_refused_not_guessed(kind, history, instance, today):
    body = (
        INVALID_UTF8
        if kind == "socrata"
        else b'{"dataset": [{"identifier": "x", "title": "Caf\xe9"}]}'
    )
    reply = Reply(body=body, headers={"Content-Type": "application/json; charset=utf-8"})
    with serve(kind, [], hook=always(reply)) as server:
        succeeded, reason = history.tonight(
            instance, today, portal_entry(PORTAL_NAMES[kind], server, **FAST)
        )
    assert not succeeded
    expected = "not valid UTF-8 \\(byte 0xe9" if kind == "socrata" else "invalid bytes in UTF8"
    assert re.search(expected, reason), reason
    history.assert_nothing_lost()


# --- input the pipeline can read: stored, read the documented way -----------------------------


def odd_socrata_records(night: date) -> list[dict[str, Any]]:
    """Records a careless export could produce, each one field family at a time."""
    all_null = {
        "resource": dict.fromkeys(["name", "type", "description", "createdAt", "page_views"]),
        "classification": None,
        "metadata": None,
        "owner": None,
        "permalink": None,
    }
    all_null["resource"]["id"] = "null-0001"
    wrong_types = socrata_record(
        "type-0003",
        title=12345,  # a number where the title should be: not a title
        tags="transport",  # one string where a list should be: one tag
        createdAt=1_700_000_000,  # epoch seconds instead of ISO 8601
        data_updated_at=str(int(datetime(2026, 1, 2, tzinfo=UTC).timestamp())),  # as a string
        publication_date="1985-06-01",  # before any catalog platform: not a date
        columns_field_name="a,b",  # a string where a list should be: no columns known
        page_views={"page_views_total": "123", "page_views_last_month": "x"},
        download_count="7",
    )
    return [
        all_null,
        {"resource": {"id": "miss-0002"}},
        wrong_types,
        socrata_record("futr-0004", frequency="Daily", data_updated_at="2099-01-01T00:00:00Z"),
        socrata_record(
            "zero-0005",
            frequency="Monthly",
            data_updated_at=0,  # epoch 0: a missing value saved as a number
            publication_date="1970-01-01T00:00:00Z",
            createdAt=f"{night - timedelta(days=10)}T00:00:00Z",
        ),
    ]


def by_asset_id(history: History, sql: str, night: date) -> dict[str, tuple]:
    """Tonight's rows of a query whose first column is the asset id, keyed by it."""
    return {row[0]: row[1:] for row in query(history.db_path, sql, [night])}


def test_odd_but_readable_socrata_records_are_stored_the_documented_way(history, instance, today):
    with serve("socrata", socrata_catalog(GOOD_ASSETS) + odd_socrata_records(today)) as server:
        succeeded, reason = history.tonight(instance, today, portal_entry("ct", server, **FAST))
    assert succeeded, reason
    rows = by_asset_id(
        history,
        "SELECT asset_id, asset_type, in_scope, title, tags, created_at, data_updated_at, "
        "published_at, columns_total, views_total, views_last_month, downloads_total "
        "FROM catalog.assets WHERE snapshot_date = ? AND asset_id IN "
        "('null-0001', 'miss-0002', 'type-0003', 'futr-0004', 'zero-0005')",
        today,
    )
    # No type, no domain: counted in the inventory, not as datasets.
    assert rows["null-0001"][:2] == ("unknown", False)
    assert rows["miss-0002"][:2] == ("unknown", False)
    _, in_scope, title, tags, created, updated, published, columns, total, month, downloads = rows[
        "type-0003"
    ]
    assert (in_scope, title, tags) == (True, None, ["transport"])
    assert created == datetime.fromtimestamp(1_700_000_000, UTC)
    assert updated == datetime(2026, 1, 2, tzinfo=UTC)
    assert (published, columns) == (None, None)
    assert (total, month, downloads) == (123, None, 7)
    assert rows["zero-0005"][5:7] == (None, None)  # epoch 0 and 1970 are not dates

    freshness = dict(
        query(
            history.db_path,
            "SELECT asset_id, freshness_state || ' ' || coalesce(timestamp_source, '-') "
            "FROM metrics.datasets WHERE snapshot_date = ? AND asset_id IN "
            "('type-0003', 'futr-0004', 'zero-0005')",
            [today],
        )
    )
    assert freshness["futr-0004"].startswith("UNKNOWN")  # updated in 2099: cannot be aged
    assert freshness["zero-0005"] == "FRESH created_at"  # falls back past the non-dates
    missing_title = query(
        history.db_path,
        "SELECT list_contains(md2_missing, 'title') FROM metrics.datasets "
        "WHERE snapshot_date = ? AND asset_id = 'type-0003'",
        [today],
    )
    assert missing_title == [(True,)]  # MD-2 asks for a title; a number is not one
    history.assert_last_night_untouched()


def test_odd_but_readable_dcat_datasets_are_stored_the_documented_way(history, instance, today):
    feed = good_feed()
    feed["dataset"] += [
        {"identifier": "https://data.example/d/bare"},  # nothing but an id
        dict.fromkeys(["title", "description", "modified", "publisher", "keyword"])
        | {"identifier": "https://data.example/d/nulls"},
        dcat_dataset(
            "https://data.example/d/types",
            modified=1_700_000_000,
            issued="1901-01-01",
            keyword="roads",
            publisher="Department of Transportation",  # a string, not an object
        ),
        dcat_dataset(12345, title="Numeric identifier"),
    ]
    with serve("dcat", feed) as server:
        succeeded, reason = history.tonight(instance, today, portal_entry("hub", server, **FAST))
    assert succeeded, reason
    stored = by_asset_id(
        history,
        "SELECT asset_id, title, data_updated_at, created_at, tags, agency, schema_valid "
        "FROM catalog.assets WHERE snapshot_date = ? AND portal = 'hub' "
        "AND asset_id NOT LIKE 'https://data.example/d/_' "
        "AND asset_id NOT LIKE 'https://data.example/d/__'",
        today,
    )
    assert stored["https://data.example/d/bare"][0] is None
    assert stored["https://data.example/d/nulls"][-1] is False  # DCAT-US says why, per field
    types = stored["https://data.example/d/types"]
    assert types[1:5] == (datetime.fromtimestamp(1_700_000_000, UTC), None, ["roads"], None)
    # A dataset whose identifier is not text is keyed by its landing page instead.
    numeric = [key for key, row in stored.items() if row[0] == "Numeric identifier"]
    assert numeric and numeric[0].startswith("http")
    in_scope = query(
        history.db_path,
        "SELECT datasets_in_scope FROM catalog.snapshots "
        "WHERE snapshot_date = ? AND portal = 'hub'",
        [today],
    )
    assert in_scope == [(GOOD_DATASETS + 4,)]
    history.assert_last_night_untouched()


def test_a_50_mb_description_is_stored_whole(history, instance, today):
    huge = "<p>" + "Connecticut open data. " * (50_000_000 // 23) + "</p>"
    records = socrata_catalog(GOOD_ASSETS)
    records[0]["resource"]["description"] = huge
    with serve("socrata", records) as server:
        succeeded, reason = history.tonight(
            instance, today, portal_entry("ct", server, timeout_seconds=60)
        )
    assert succeeded, reason
    [(length, text_length)] = query(
        history.db_path,
        "SELECT length(description), length(description_text) FROM catalog.assets "
        "WHERE snapshot_date = ? AND asset_id = ?",
        [today, records[0]["resource"]["id"]],
    )
    assert length == len(huge) > 50_000_000
    assert text_length == len(huge) - len("<p></p>") - 1  # the trailing space is trimmed
    history.assert_last_night_untouched()
