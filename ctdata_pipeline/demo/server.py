"""Loopback portals: a Socrata Discovery API and an ArcGIS Hub DCAT feed, served over real HTTP.

`ctdata demo` serves the generated catalogs with them; the tests serve real catalog records
with them, and inject faults through `hook`. The Socrata side behaves like the real API where
the harvester depends on it: `domains` filtering, `limit`/`offset` with the 10,000 window (400
beyond it), `order=dataset_id`, deep scrolling with `scroll_id` (400 together with `order`),
`resultSetSize`, and unknown parameters read as custom-metadata filters (so a live-looking server
answers `as_of` with no results, as data.ct.gov would).

`routes` add a portal's other answers (the demo's SoQL resources and Hub pages), and
`host_server` is a loopback host answering only through them (the demo's ArcGIS layers and the
sites its catalogs link to). Every server answers HEAD as GET without the body."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from requests.structures import CaseInsensitiveDict

from ctdata_pipeline.harvest.asof import AS_OF_HEADER, AS_OF_PARAM

OFFSET_WINDOW = 10_000
SOCRATA_PATH = "/api/catalog/v1"
DCAT_PATHS = ("/api/feed/dcat-us/1.1.json", "/data.json")
_KNOWN_SOCRATA_PARAMS = {
    "domains",
    "search_context",
    "limit",
    "offset",
    "order",
    "scroll_id",
    "only",
    "provenance",
    "ids",
    "q",
    "categories",
    "tags",
    "attribution",
    "license",
}


@dataclass
class ServedRequest:
    """What the server received, for tests to inspect."""

    path: str
    params: list[tuple[str, str]]
    headers: CaseInsensitiveDict[str]
    method: str = "GET"

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None

    def instant(self) -> datetime | None:
        """The instant a probe asks "as of" (the X-Ctdata-As-Of header), None for now."""
        text = self.headers.get(AS_OF_HEADER)
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Reply:
    """A response a hook can force: status, headers, body, and the faults of a real network: a
    pause before answering, a stall part-way through the body, a connection that closes before
    the length it announced."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay_seconds: float = 0.0
    declared_length: int | None = None  # Content-Length to announce, if not the body's own
    stall_after_bytes: int | None = None
    stall_seconds: float = 0.0


Hook = Callable[[ServedRequest], Reply | None]
# (as_of date or None for "now") -> (records or feed document, the instant answered for)
CatalogSource = Callable[[date | None], tuple[Any, datetime]]


class PortalServer:
    """One portal on 127.0.0.1, answering for a catalog source. Use as a context manager."""

    def __init__(
        self,
        kind: str,
        source: CatalogSource,
        *,
        as_of_enabled: bool = True,
        hook: Hook | None = None,
        cache_replies: bool = False,
        routes: Hook | None = None,
    ) -> None:
        self.kind = kind
        self.source = source
        self.as_of_enabled = as_of_enabled
        self.hook = hook
        self.routes = routes  # answers beyond the catalog API; None from it: not theirs
        # The benchmarks serve one unchanging catalog many times: answering a page again from
        # its bytes keeps the server's own sorting and encoding out of the client's timings.
        self.cache_replies = cache_replies
        self.requests: list[ServedRequest] = []
        self._cache: dict[date | None, tuple[Any, datetime]] = {}
        self._replies: dict[tuple[str, tuple[tuple[str, str], ...]], Reply] = {}
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"portal": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """What a portal file's `url` should say for this server."""
        return self.base_url if self.kind == "socrata" else self.base_url + DCAT_PATHS[0]

    def start(self) -> PortalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> PortalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def catalog(self, as_of: date | None) -> tuple[Any, datetime]:
        """The catalog as of a date (cached, since every page of a night asks for it)."""
        if as_of is None:
            return self.source(None)
        with self._lock:
            if as_of not in self._cache:
                if len(self._cache) > 4:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[as_of] = self.source(as_of)
            return self._cache[as_of]

    def forget(self) -> None:
        """Drop cached catalogs and replies: the source now answers differently."""
        with self._lock:
            self._cache.clear()
            self._replies.clear()

    def answer(self, request: ServedRequest, compute: Callable[[ServedRequest], Reply]) -> Reply:
        """The reply to a request: computed, or with `cache_replies`, computed once."""
        if not self.cache_replies:
            return compute(request)
        key = (request.path, tuple(request.params))
        with self._lock:
            cached = self._replies.get(key)
        if cached is None:
            cached = compute(request)
            with self._lock:
                self._replies[key] = cached
        return cached


class _Handler(BaseHTTPRequestHandler):
    portal: PortalServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test and demo output quiet

    def handle(self) -> None:
        # A client that gives up (a probe's timeout) resets its kept-alive connection while the
        # server waits for its next request: nothing to answer, nothing to print.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            super().handle()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        request = ServedRequest(
            path=parts.path,
            params=parse_qsl(parts.query, keep_blank_values=True),
            headers=CaseInsensitiveDict(dict(self.headers.items())),
            method=method,
        )
        self.portal.requests.append(request)
        reply = self.portal.hook(request) if self.portal.hook else None
        if reply is None and self.portal.routes is not None:
            reply = self.portal.routes(request)
        if reply is None:
            reply = self.portal.answer(request, self._answer)
        if reply.delay_seconds:
            threading.Event().wait(reply.delay_seconds)
        length = len(reply.body) if reply.declared_length is None else reply.declared_length
        cut = len(reply.body) if reply.stall_after_bytes is None else reply.stall_after_bytes
        # The client may have given up already (a timeout test, a probe's timeout): nothing to
        # do then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if method == "HEAD":
                return
            self.wfile.write(reply.body[:cut])
            self.wfile.flush()
            if reply.stall_seconds:
                threading.Event().wait(reply.stall_seconds)
            self.wfile.write(reply.body[cut:])
        if length != len(reply.body):
            self.close_connection = True

    def _answer(self, request: ServedRequest) -> Reply:
        if self.portal.kind == "socrata" and request.path == SOCRATA_PATH:
            return self._socrata(request)
        if self.portal.kind == "dcat" and request.path in DCAT_PATHS:
            return self._dcat(request)
        return json_reply({"error": f"not found: {request.path}"}, status=404)

    def _as_of(self, request: ServedRequest) -> tuple[date | None, bool]:
        """(date asked for, whether this server may answer for it)."""
        text = request.param(AS_OF_PARAM)
        if text is None:
            return None, True
        if not self.portal.as_of_enabled:
            return None, False
        try:
            return date.fromisoformat(text), True
        except ValueError:
            return None, False

    def _socrata(self, request: ServedRequest) -> Reply:
        as_of, answerable = self._as_of(request)
        records, instant = self.portal.catalog(as_of)
        try:
            limit = int(request.param("limit") or 100)
            offset = int(request.param("offset") or 0)
        except ValueError:
            return json_reply({"error": "limit and offset must be integers"}, status=400)
        order, scroll_id = request.param("order"), request.param("scroll_id")
        if offset + limit > OFFSET_WINDOW:
            return json_reply(
                {"error": f"offset + limit may not exceed {OFFSET_WINDOW}; use scroll_id"},
                status=400,
            )
        if order is not None and scroll_id is not None:
            return json_reply({"error": "order is not allowed with scroll_id"}, status=400)

        domains = {
            domain.strip()
            for key, value in request.params
            if key == "domains"
            for domain in value.split(",")
            if domain.strip()
        }
        custom_filters = [
            key
            for key, _ in request.params
            if key not in _KNOWN_SOCRATA_PARAMS and key != AS_OF_PARAM
        ]
        # A record with no domain at all is a broken record: served anyway (a fault test's).
        matching = [
            record
            for record in records
            if not domains or _field(record, "metadata", "domain") in domains | {None}
        ]
        if custom_filters or not answerable:
            matching = []  # an unknown parameter is a custom-metadata filter nothing matches
        if scroll_id is not None:
            ordered = sorted(matching, key=_record_id)
            page = [r for r in ordered if _record_id(r) > scroll_id][:limit]
        else:
            if order and order.split()[0] == "dataset_id":
                ordered = sorted(matching, key=_record_id, reverse=order.endswith("DESC"))
            else:  # relevance: here, most viewed first, which moves from night to night
                ordered = sorted(matching, key=_relevance)
            page = ordered[offset : offset + limit]
        body = {
            "results": page,
            "resultSetSize": min(len(matching), OFFSET_WINDOW),
            "timings": {"serviceMillis": 3, "searchMillis": [1, 1]},
            "warnings": [],
        }
        reply = json_reply(body)
        if as_of is not None:
            reply.headers[AS_OF_HEADER] = instant.astimezone(UTC).isoformat()
        return reply

    def _dcat(self, request: ServedRequest) -> Reply:
        as_of, answerable = self._as_of(request)
        document, instant = self.portal.catalog(as_of)
        reply = json_reply(document)
        reply.headers["Content-Type"] = "application/json; charset=utf-8"
        if as_of is not None and answerable:
            reply.headers[AS_OF_HEADER] = instant.astimezone(UTC).isoformat()
        return reply


def host_server(routes: Hook) -> PortalServer:
    """A loopback host that answers only through `routes` (404 for anything else)."""
    return PortalServer("host", lambda _: ([], datetime.now(UTC)), routes=routes)


def _field(record: Any, *path: str) -> Any:
    """A nested field of a record, or None where any level is missing or not an object."""
    for key in path:
        record = record.get(key) if isinstance(record, dict) else None
    return record


def _record_id(record: dict[str, Any]) -> str:
    return str(_field(record, "resource", "id") or "")


def _relevance(record: dict[str, Any]) -> tuple[float, str]:
    views = _field(record, "resource", "page_views", "page_views_last_week")
    return (-(views if isinstance(views, int | float) else 0), _record_id(record))


def json_reply(body: Any, status: int = 200) -> Reply:
    """A JSON answer, as the real APIs send it."""
    return Reply(
        status=status,
        body=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
