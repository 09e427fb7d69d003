"""How the probes treat a host (metrics.md, "Probes"): robots.txt read once per run and obeyed,
at most one request at a time, a pause between requests, and backing off when the host asks.

The pause is measured from the END of one request to the START of the next one to the same host
(stricter than start-to-start: a slow answer does not eat into the pause)."""

from __future__ import annotations

import heapq
import threading
import time
import urllib.robotparser
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from ctdata_pipeline.probes.links import classify_failure
from ctdata_pipeline.probes.model import Outcome

ROBOTS_MAX_BYTES = 500 * 1024  # Google reads the first 500 KiB of a robots.txt; so do we
ROBOTS_MAX_REDIRECTS = 5  # RFC 9309 2.3.1.2: follow at least five redirects


def host_of(url: str) -> str:
    """The politeness key of a URL: its lowercase netloc (host[:port])."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


@dataclass(frozen=True)
class RobotsVerdict:
    """What a host's robots.txt says for this run.

    - parsed (2xx): its rules for our agent are obeyed, Crawl-delay included (capped);
    - 4xx (404, 401, 403, 410 ...): no rules, everything allowed (RFC 9309 2.3.1.3);
    - 429/5xx: "unreachable", so everything disallowed for the run (RFC 9309 2.3.1.4, as Google
      does): the host's URLs are not_checked, never fetched;
    - no answer at all (dns, refused, tls, timeout): the host cannot be reached, so its URLs
      are not requested either; each gets that same outcome (a dead host is a broken link, not
      an unchecked one), with a detail saying it was robots.txt that failed.
    """

    request: str
    parser: urllib.robotparser.RobotFileParser | None = None  # None: no rules
    disallow_all: str = ""  # why everything is disallowed ("" = it is not)
    unreachable: tuple[Outcome, str] | None = None
    crawl_delay: float = 0.0

    def allows(self, user_agent: str, url: str) -> bool:
        if self.disallow_all:
            return False
        return self.parser is None or self.parser.can_fetch(user_agent, url)


def fetch_robots(
    session: requests.Session, scheme: str, host: str, user_agent: str, timeout: float
) -> RobotsVerdict:
    """GET <scheme>://<host>/robots.txt with the session (its User-Agent) and read it."""
    url = f"{scheme}://{host}/robots.txt"
    request = f"GET {url}"
    previous_limit = session.max_redirects
    session.max_redirects = ROBOTS_MAX_REDIRECTS
    try:
        with session.get(url, timeout=timeout, stream=True) as response:
            status = response.status_code
            body = _read_at_most(response, ROBOTS_MAX_BYTES) if 200 <= status < 300 else b""
    except Exception as error:  # every failure is a verdict, never an exception
        outcome, problem = classify_failure(error)
        if outcome in ("dns", "refused", "tls", "timeout"):
            return RobotsVerdict(
                request,
                unreachable=(
                    outcome,
                    f"robots.txt could not be fetched ({problem}); not requested",
                ),
            )
        return RobotsVerdict(
            request, disallow_all=f"robots.txt could not be fetched ({problem}): disallow all"
        )
    finally:
        session.max_redirects = previous_limit
    if 200 <= status < 300:
        parser = urllib.robotparser.RobotFileParser(url)
        parser.parse(body.decode("utf-8", errors="replace").splitlines())
        delay = parser.crawl_delay(user_agent)
        return RobotsVerdict(request, parser=parser, crawl_delay=float(delay or 0))
    if status == 429 or status >= 500:
        return RobotsVerdict(
            request,
            disallow_all=f"robots.txt answered HTTP {status}: disallow all for this run (RFC 9309)",
        )
    return RobotsVerdict(request)  # 3xx left over, 4xx: no rules


def _read_at_most(response: requests.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=16 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


@dataclass(eq=False)
class Host:
    """One host's share of a run: its queue of probe steps and its politeness state."""

    name: str
    scheme: str
    queue: deque[Any] = field(default_factory=deque)
    ready_at: float = 0.0  # time.monotonic() before which no request may start
    robots: RobotsVerdict | None = None  # None until fetched
    backed_off: str = ""  # set when the host asked for a longer pause than we wait
    resources: dict[str, Any] = field(default_factory=dict)  # sessions, clients (closed at end)
    current: Any = None  # the step a worker is making, if any
    busy: bool = False
    scheduled: bool = False


class HostScheduler:
    """Hands hosts to workers: a host is held by one worker at a time (one request at a time to
    it), handed out no earlier than its `ready_at`, and at most `concurrency` workers run (so at
    most that many hosts are being asked at once). Workers wait on a condition, not on a host:
    a host pausing between requests does not hold a slot."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Host]] = []
        self._sequence = 0
        self._hosts: dict[str, Host] = {}
        self.open = 0  # steps queued or in flight; the run ends at 0
        self.stopped = False

    def host(self, name: str, scheme: str) -> Host:
        with self._cond:
            host = self._hosts.get(name)
            if host is None:
                host = self._hosts[name] = Host(name, scheme)
            return host

    @property
    def hosts(self) -> list[Host]:
        with self._cond:
            return list(self._hosts.values())

    def add(self, host: Host, step: Any, *, first: bool = False, new: bool = True) -> None:
        """Queue a step on a host; `new` counts it as a probe still to finish."""
        with self._cond:
            if first:
                host.queue.appendleft(step)
            else:
                host.queue.append(step)
            if new:
                self.open += 1
            self._schedule(host)
            self._cond.notify()

    def pop(self, host: Host) -> Any:
        """The host's next step, or None. Under the lock: another worker may be queueing a
        redirect hop on this host at the same moment."""
        with self._cond:
            return host.queue.popleft() if host.queue else None

    def finished(self, count: int = 1) -> None:
        with self._cond:
            self.open -= count
            if self.open <= 0:
                self._cond.notify_all()

    def take(self) -> Host | None:
        """The next host whose pause is over, or None when the run is done or stopped."""
        with self._cond:
            while True:
                if self.stopped or self.open <= 0:
                    return None
                if self._heap:
                    ready_at, _, host = self._heap[0]
                    wait = ready_at - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        host.scheduled = False
                        host.busy = True
                        return host
                    self._cond.wait(wait)
                else:
                    self._cond.wait()

    def give_back(self, host: Host, ready_at: float) -> None:
        with self._cond:
            host.busy = False
            host.ready_at = max(host.ready_at, ready_at)
            self._schedule(host)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()

    def _schedule(self, host: Host) -> None:
        if host.busy or host.scheduled or not host.queue:
            return
        self._sequence += 1
        heapq.heappush(self._heap, (host.ready_at, self._sequence, host))
        host.scheduled = True
