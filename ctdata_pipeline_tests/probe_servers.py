"""Loopback servers for the probe engine's tests and benchmark: each one is its own host
(127.0.0.1:<port>), answers routes the test gives it, and records every request it received
with server-side times, so a test can check what was sent and how far apart."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from requests.structures import CaseInsensitiveDict


@dataclass
class Received:
    """One request as the server saw it; `started` (request read) and `ended` (answer about to
    be sent) are time.monotonic()."""

    method: str
    path: str
    query: dict[str, str]
    headers: CaseInsensitiveDict[str]
    started: float
    ended: float = 0.0


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # a pause before answering (latency, or a hang)


Route = Answer | Callable[[Received], Answer]


def json_answer(document: Any, status: int = 200, **headers: str) -> Answer:
    return Answer(status, document, {"Content-Type": "application/json", **headers})


def redirect(location: str, status: int = 302) -> Answer:
    return Answer(status, b"", {"Location": location})


class ProbeServer:
    """`routes` maps a path (no query) to an Answer or a function of the request; anything
    else is a 404. `robots` is the body of /robots.txt (None: a 404 there too)."""

    def __init__(
        self,
        routes: dict[str, Route] | None = None,
        *,
        robots: str | None = None,
        latency: Callable[[], float] | None = None,
    ) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        if robots is not None:
            self.routes["/robots.txt"] = Answer(200, robots, {"Content-Type": "text/plain"})
        self.latency = latency
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [seen for seen in self.received if seen.path == path]

    def all_received(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> ProbeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _answer(self, seen: Received) -> Answer:
        with self._lock:
            self.received.append(seen)
        route = self.routes.get(seen.path)
        if route is None:
            return Answer(404, "not found", {"Content-Type": "text/plain"})
        return route(seen) if callable(route) else route

    def _done(self, seen: Received) -> None:
        with self._lock:
            seen.ended = time.monotonic()


def _handler_for(server: ProbeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            # The client may close early: a GET that read its 64 KB, a TLS hello.
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                super().handle()

        def do_GET(self) -> None:
            self._serve(with_body=True)

        def do_HEAD(self) -> None:
            self._serve(with_body=False)

        def _serve(self, *, with_body: bool) -> None:
            parts = urlsplit(self.path)
            seen = Received(
                self.command,
                parts.path,
                dict(parse_qsl(parts.query, keep_blank_values=True)),
                CaseInsensitiveDict(dict(self.headers.items())),
                time.monotonic(),
            )
            answer = server._answer(seen)
            pause = answer.delay_seconds + (server.latency() if server.latency else 0.0)
            if pause:
                time.sleep(pause)
            body = answer.body
            if isinstance(body, dict | list):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode("utf-8")
            # The request counts as answered from here: before the first byte goes out, so a
            # client's next request can never seem to start before this one ended.
            server._done(seen)
            try:
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if with_body:
                    self.wfile.write(body)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
