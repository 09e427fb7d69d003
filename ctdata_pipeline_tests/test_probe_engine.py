"""The probe engine against real loopback servers (one host per server): what each kind of probe
asks and records, the error classes, and politeness measured from the servers' own clocks."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from ctdata_pipeline.harvest.asof import AS_OF_HEADER
from ctdata_pipeline.portals import ProbeSettings
from ctdata_pipeline.probes.engine import probe_items
from ctdata_pipeline.probes.model import ProbeItem, ProbeResult
from ctdata_pipeline_tests.probe_servers import (
    Answer,
    ProbeServer,
    Received,
    closed_port,
    json_answer,
    redirect,
)

FAST = ProbeSettings(min_interval_seconds=0.05, timeout_seconds=2.0)
UA = FAST.user_agent_header


def link(url: str) -> ProbeItem:
    return ProbeItem("link", url, url)


def layer(url: str) -> ProbeItem:
    return ProbeItem("layer_date", url, url)


def probe(items: list[ProbeItem], settings: ProbeSettings = FAST, **options) -> dict:
    """Results by target; every item yields exactly one result."""
    results = list(probe_items(items, settings, **options))
    assert sorted(r.item.target for r in results) == sorted(i.target for i in items)
    return {result.item.target: result for result in results}


def only(results: dict) -> ProbeResult:
    (result,) = results.values()
    return result


# --- links (AC-1) -----------------------------------------------------------------------------


def test_a_link_answering_200_is_ok_and_every_request_names_us():
    with ProbeServer({"/data.csv": Answer(200, "a,b\n")}) as server:
        result = only(probe([link(server.url + "/data.csv")]))
        seen = server.all_received()
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert result.request == f"HEAD {server.url}/data.csv"
    assert result.final_url == server.url + "/data.csv"
    assert result.probed_at.tzinfo is not None
    # robots.txt first, then the HEAD: both with the configured User-Agent
    assert [(r.method, r.path) for r in seen] == [("GET", "/robots.txt"), ("HEAD", "/data.csv")]
    assert all(r.headers["User-Agent"] == UA for r in seen)
    assert "ctdata_pipeline" in UA and "https://github.com/ctdata/ctdata_pipeline" in UA


def test_a_redirect_is_followed_to_its_final_answer():
    with ProbeServer({"/old": redirect("/new", 301), "/new": Answer(200)}) as server:
        result = only(probe([link(server.url + "/old")]))
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert result.final_url == server.url + "/new"
    assert f"301 -> {server.url}/new" in result.detail


def test_a_redirect_loop_and_a_long_chain_are_too_many_redirects():
    routes = {"/a": redirect("/b"), "/b": redirect("/a")}
    routes |= {f"/hop{n}": redirect(f"/hop{n + 1}") for n in range(6)}  # 6 redirects, /hop6 404
    with ProbeServer(routes) as server:
        results = probe([link(server.url + "/a"), link(server.url + "/hop0")])
        asked = [r.path for r in server.all_received()]
    loop, chain = results[server.url + "/a"], results[server.url + "/hop0"]
    assert loop.outcome == "too_many_redirects" and "loop" in loop.detail
    assert asked.count("/a") == 1 and asked.count("/b") == 1  # the loop is not walked again
    assert chain.outcome == "too_many_redirects" and "more than 5 redirects" in chain.detail
    assert "/hop6" not in asked  # the sixth redirect is not followed


@pytest.mark.parametrize("status", [404, 410, 500])
def test_a_link_answering_an_error_status_is_http_error_with_it(status):
    with ProbeServer({"/gone": Answer(status)}) as server:
        result = only(probe([link(server.url + "/gone")]))
    assert (result.outcome, result.status_code) == ("http_error", status)


def test_a_server_refusing_head_is_asked_with_a_get_reading_at_most_64_kb():
    def refuse_head(request: Received) -> Answer:
        if request.method == "HEAD":
            return Answer(405)
        return Answer(200, b"x" * 1_000_000, {"Content-Type": "text/csv"})

    with ProbeServer({"/big.csv": refuse_head}) as server:
        result = only(probe([link(server.url + "/big.csv")]))
        methods = [r.method for r in server.requests_to("/big.csv")]
    assert methods == ["HEAD", "GET"]
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert "HEAD answered 405" in result.detail


def test_no_answer_within_the_timeout_is_a_timeout():
    settings = FAST.model_copy(update={"timeout_seconds": 0.3})
    with ProbeServer({"/slow": Answer(200, delay_seconds=1.5)}) as server:
        result = only(probe([link(server.url + "/slow")], settings))
    assert result.outcome == "timeout" and result.status_code is None


def test_dns_refused_and_tls_failures_are_named():
    unresolvable = "http://no-such-host.invalid/data.csv"
    refusing = f"http://127.0.0.1:{closed_port()}/data.csv"
    with ProbeServer({"/x": Answer(200)}) as plain:
        not_tls = f"https://{plain.host}/x"  # TLS to a plain-HTTP port
        results = probe([link(unresolvable), link(refusing), link(not_tls)])
    assert results[unresolvable].outcome == "dns"
    assert results[refusing].outcome == "refused"
    assert results[not_tls].outcome == "tls"
    assert all(r.status_code is None and r.detail for r in results.values())


def test_urls_that_are_not_http_are_not_requested():
    results = probe([link("ftp://ftp.example.org/a.zip"), link("not a url"), link("http://[::1")])
    assert results["ftp://ftp.example.org/a.zip"].outcome == "not_checked"
    assert results["not a url"].outcome == "error"
    assert results["http://[::1"].outcome == "error"


# --- robots.txt and politeness ----------------------------------------------------------------


def test_robots_txt_disallow_for_our_agent_is_obeyed_and_never_fetched():
    robots = "User-agent: *\nDisallow: /private/\n\nUser-agent: ctdata_pipeline\nDisallow: /ours/\n"
    routes = {path: Answer(200) for path in ("/public/a", "/private/b", "/ours/c")}
    with ProbeServer(routes, robots=robots) as server:
        results = probe([link(server.url + path) for path in routes])
        asked = [r.path for r in server.all_received()]
    # the first group that names our agent applies to us (RFC 9309), so /private/ is allowed
    assert results[server.url + "/public/a"].outcome == "ok"
    assert results[server.url + "/private/b"].outcome == "ok"
    blocked = results[server.url + "/ours/c"]
    assert blocked.outcome == "not_checked" and "robots.txt" in blocked.detail
    assert "/ours/c" not in asked
    assert asked.count("/robots.txt") == 1  # once per host per run


def test_a_robots_txt_that_errors_disallows_the_host_and_a_missing_one_allows_it():
    with (
        ProbeServer({"/robots.txt": Answer(503), "/a": Answer(200)}) as erroring,
        ProbeServer({"/a": Answer(200)}) as missing,
    ):
        results = probe([link(erroring.url + "/a"), link(missing.url + "/a")])
        erroring_asked = [r.path for r in erroring.all_received()]
    assert results[erroring.url + "/a"].outcome == "not_checked"
    assert "503" in results[erroring.url + "/a"].detail
    assert erroring_asked == ["/robots.txt"]
    assert results[missing.url + "/a"].outcome == "ok"


def test_a_redirect_to_another_host_obeys_that_hosts_robots_txt():
    with ProbeServer({"/x": Answer(200)}, robots="User-agent: *\nDisallow: /\n") as closed:
        with ProbeServer({"/go": redirect(closed.url + "/x")}) as start:
            result = only(probe([link(start.url + "/go")]))
            asked = [r.path for r in closed.all_received()]
    assert result.outcome == "not_checked" and "redirect target" in result.detail
    assert asked == ["/robots.txt"]


def test_requests_to_one_host_are_one_at_a_time_and_spaced():
    settings = FAST.model_copy(update={"min_interval_seconds": 0.2})
    with ProbeServer({f"/{n}": Answer(200, delay_seconds=0.05) for n in range(5)}) as server:
        results = probe([link(f"{server.url}/{n}") for n in range(5)], settings)
        seen = sorted(server.all_received(), key=lambda r: r.started)
    assert {r.outcome for r in results.values()} == {"ok"}
    assert len(seen) == 6  # robots.txt + 5
    for earlier, later in pairwise(seen):
        assert later.started > earlier.ended  # never two at once
        assert later.started - earlier.started >= 0.2  # and spaced by the interval


def test_a_crawl_delay_longer_than_the_interval_is_honoured():
    robots = "User-agent: *\nCrawl-delay: 1\n"  # urllib.robotparser reads whole seconds
    with ProbeServer({f"/{n}": Answer(200) for n in range(3)}, robots=robots) as server:
        probe([link(f"{server.url}/{n}") for n in range(3)])
        seen = sorted(server.all_received(), key=lambda r: r.started)
    gaps = [later.started - earlier.ended for earlier, later in pairwise(seen)]
    assert len(seen) == 4 and min(gaps) >= 1.0


def _overlapping(a: list[Received], b: list[Received]) -> bool:
    return any(x.started < y.ended and y.started < x.ended for x in a for y in b)


@pytest.mark.parametrize("concurrency", [1, 2])
def test_hosts_are_probed_in_parallel_up_to_the_concurrency(concurrency):
    settings = FAST.model_copy(update={"concurrency": concurrency, "min_interval_seconds": 0.0})
    routes = {f"/{n}": Answer(200, delay_seconds=0.2) for n in range(3)}
    with ProbeServer(routes) as one, ProbeServer(routes) as two, ProbeServer(routes) as three:
        servers = (one, two, three)
        probe([link(f"{s.url}/{n}") for s in servers for n in range(3)], settings)
        seen = [r for s in servers for r in s.all_received()]
        overlap = _overlapping(one.all_received(), two.all_received())
    events = sorted([(r.started, 1) for r in seen] + [(r.ended, -1) for r in seen])
    in_flight = peak = 0
    for _, change in events:
        in_flight += change
        peak = max(peak, in_flight)
    assert peak == concurrency  # never more requests at once than hosts allowed
    assert overlap is (concurrency > 1)


def test_retry_after_pauses_the_host_then_retries_once():
    answers = iter([Answer(429, headers={"Retry-After": "1"}), Answer(200)])
    with ProbeServer({"/busy": lambda request: next(answers)}) as server:
        result = only(probe([link(server.url + "/busy")]))
        first, second = server.requests_to("/busy")
    assert (result.outcome, result.status_code) == ("ok", 200)
    assert "Retry-After 1 s" in result.detail
    waited = second.started - first.ended
    print(f"waited {waited:.2f} s after Retry-After: 1")
    assert waited >= 1.0


def test_a_second_429_is_an_http_error():
    with ProbeServer({"/busy": Answer(429, headers={"Retry-After": "0"})}) as server:
        result = only(probe([link(server.url + "/busy")]))
        asked = len(server.requests_to("/busy"))
    assert (result.outcome, result.status_code, asked) == ("http_error", 429, 2)


def test_a_retry_after_longer_than_allowed_leaves_the_host_unchecked_for_the_run():
    settings = FAST.model_copy(update={"max_retry_after_seconds": 5})
    routes = {f"/{n}": Answer(503, headers={"Retry-After": "3600"}) for n in range(3)}
    with ProbeServer(routes) as server:
        results = probe([link(f"{server.url}/{n}") for n in range(3)], settings)
        asked = [r.path for r in server.all_received() if r.path != "/robots.txt"]
    assert {r.outcome for r in results.values()} == {"not_checked"}
    assert all("3600" in r.detail for r in results.values())
    assert len(asked) == 1  # the host was asked once, then left alone


# --- content dates (FR-5, SoQL through sodapy) ------------------------------------------------


def soql_server(answers: dict[str, Answer]) -> ProbeServer:
    return ProbeServer({f"/resource/{dataset}.json": answer for dataset, answer in answers.items()})


def content(server: ProbeServer, dataset: str, *columns: str) -> ProbeItem:
    return ProbeItem("content_date", dataset, f"{server.url}/resource/{dataset}.json", columns)


def test_soql_max_answers_are_read_per_column():
    row = {
        "max_0": "2024-05-01T00:00:00.000",  # floating timestamp: read as UTC
        "max_1": "2024-05-02T10:30:00.000Z",
        "max_2": "2024-05-03T08:00:00-04:00",
        # max_3 absent: Socrata leaves a null max out of the row
        "max_4": "2031-01-01T00:00:00.000",  # in the future: kept as observed
    }
    server = soql_server({"abcd-1234": json_answer([row])})
    with server:
        result = only(probe([content(server, "abcd-1234", "a", "b", "c", "d", "e")]))
        (asked,) = server.requests_to("/resource/abcd-1234.json")
    assert asked.query["$select"] == (
        "max(`a`) AS max_0, max(`b`) AS max_1, max(`c`) AS max_2, max(`d`) AS max_3, "
        "max(`e`) AS max_4"
    )
    assert result.outcome == "ok"
    assert result.observed == (
        ("a", datetime(2024, 5, 1, tzinfo=UTC)),
        ("b", datetime(2024, 5, 2, 10, 30, tzinfo=UTC)),
        ("c", datetime(2024, 5, 3, 12, 0, tzinfo=UTC)),
        ("d", None),
        ("e", datetime(2031, 1, 1, tzinfo=UTC)),
    )
    assert result.request.startswith(f"GET {server.url}/resource/abcd-1234.json?$select=max(`a`)")


def test_soql_errors_carry_socratas_message_and_never_the_token():
    token = "s3cret-app-token"
    error = {
        "code": "query.soql.no-such-column",
        "error": True,
        "message": f"No such column: nope (token {token})",  # a portal echoing the token
    }
    server = soql_server({"bad0-1234": json_answer(error, 400)})
    with server:
        result = only(probe([content(server, "bad0-1234", "nope")], app_token=token))
        (asked,) = server.requests_to("/resource/bad0-1234.json")
    assert asked.headers["X-App-Token"] == token  # the token travels as the header only
    assert token not in asked.query.get("$$app_token", "")
    assert (result.outcome, result.status_code) == ("http_error", 400)
    assert "No such column: nope" in result.detail
    assert token not in repr(result)


def test_a_soql_429_with_retry_after_is_waited_and_retried():
    answers = iter(
        [json_answer({"message": "slow down"}, 429, **{"Retry-After": "1"}), json_answer([{}])]
    )
    server = ProbeServer({"/resource/busy-1234.json": lambda request: next(answers)})
    with server:
        result = only(probe([content(server, "busy-1234", "d")]))
        first, second = server.requests_to("/resource/busy-1234.json")
    assert (result.outcome, result.observed) == ("ok", (("d", None),))
    assert second.started - first.ended >= 1.0


def test_a_soql_answer_that_is_not_rows_is_a_bad_answer():
    server = soql_server({"html-1234": Answer(200, "<html>", {"Content-Type": "text/html"})})
    with server:
        result = only(probe([content(server, "html-1234", "d")]))
    assert result.outcome == "bad_answer"


# --- layer dates (FR-8, ArcGIS REST ?f=json) --------------------------------------------------

MAY_1 = 1714521600000  # 2024-05-01T00:00:00Z in epoch milliseconds
JUNE_1 = 1717200000000  # 2024-06-01T00:00:00Z


def test_featureserver_edit_dates_are_read_from_f_json():
    base = "/arcgis/rest/services/Roads/FeatureServer"
    routes = {
        f"{base}/0": json_answer(
            {"editingInfo": {"dataLastEditDate": MAY_1, "lastEditDate": JUNE_1}}
        ),
        f"{base}/1": json_answer({"editingInfo": {"lastEditDate": JUNE_1}}),
        f"{base}/2": json_answer({"name": "no editing info"}),
        f"{base}/3": json_answer(
            {"error": {"code": 499, "message": "Token Required", "details": []}}
        ),
    }
    with ProbeServer(routes) as server:
        results = probe([layer(f"{server.url}{base}/{n}") for n in range(4)])
        formats = {r.query.get("f") for r in server.all_received() if r.path != "/robots.txt"}
    by_layer = {target.rsplit("/", 1)[1]: result for target, result in results.items()}
    may_1, june_1 = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    assert formats == {"json"}
    assert by_layer["0"].outcome == "ok"
    assert by_layer["0"].observed == (("dataLastEditDate", may_1), ("lastEditDate", june_1))
    assert by_layer["1"].observed == (("lastEditDate", june_1),)
    assert (by_layer["2"].outcome, by_layer["2"].observed) == ("ok", ())
    assert (by_layer["3"].outcome, by_layer["3"].status_code) == ("bad_answer", 200)
    assert "Token Required" in by_layer["3"].detail


# --- as of a past night -----------------------------------------------------------------------


def test_every_request_carries_the_as_of_instant():
    night = datetime(2025, 6, 30, 6, 0, tzinfo=UTC)
    routes = {
        "/resource/abcd-1234.json": json_answer([{"max_0": "2025-06-01T00:00:00.000"}]),
        "/layer/FeatureServer/0": json_answer({"editingInfo": {"lastEditDate": MAY_1}}),
        "/file.csv": Answer(200),
    }
    with ProbeServer(routes) as server:
        results = probe(
            [
                content(server, "abcd-1234", "d"),
                layer(server.url + "/layer/FeatureServer/0"),
                link(server.url + "/file.csv"),
            ],
            as_of=night,
        )
        seen = server.all_received()
    assert {r.outcome for r in results.values()} == {"ok"}
    assert len(seen) == 4  # robots.txt and the three probes
    assert {r.headers.get(AS_OF_HEADER) for r in seen} == {"2025-06-30T06:00:00+00:00"}
    assert {r.headers.get("User-Agent") for r in seen} == {UA}


def test_results_arrive_as_they_finish():
    settings = FAST.model_copy(update={"min_interval_seconds": 0.0})
    with (
        ProbeServer({"/slow": Answer(200, delay_seconds=1.0)}) as slow,
        ProbeServer({"/quick": Answer(200)}) as quick,
    ):
        started = time.monotonic()
        results = probe_items([link(slow.url + "/slow"), link(quick.url + "/quick")], settings)
        first = next(results)
        first_after = time.monotonic() - started
        rest = list(results)
    assert first.item.url == quick.url + "/quick"
    assert [r.item.url for r in rest] == [slow.url + "/slow"]
    print(f"first result after {first_after:.2f} s")


def test_closing_the_results_early_stops_the_probes():
    settings = FAST.model_copy(update={"min_interval_seconds": 0.0})
    with ProbeServer({f"/{n}": Answer(200, delay_seconds=0.2) for n in range(5)}) as server:
        results = probe_items([link(f"{server.url}/{n}") for n in range(5)], settings)
        next(results)
        results.close()  # waits for the request in flight, sends no more
        asked = len(server.all_received())
    assert asked < 6  # robots.txt + 5 had it run to the end
