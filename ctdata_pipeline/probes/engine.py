"""The probe engine: makes the night's probes politely and yields one result per item as each
finishes (README, "Probes"). A probe that fails is a result; nothing here raises for one.

Politeness (probes/politeness.py): per host one request at a time and `min_interval_seconds`
from the end of one request to the start of the next (robots.txt's Crawl-delay when longer);
robots.txt fetched once per host per run with our User-Agent and obeyed; a 429/503 with
Retry-After pauses that host and the request is retried once (a pause longer than
`max_retry_after_seconds` leaves the host's remaining items not_checked for the run); at most
`concurrency` requests in flight across hosts."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata

from ctdata_pipeline.harvest.asof import AS_OF_HEADER
from ctdata_pipeline.harvest.socrata import _without_sodapy_token_warning
from ctdata_pipeline.portals import ProbeSettings
from ctdata_pipeline.probes.layers import layer_request_url, layer_step
from ctdata_pipeline.probes.links import (
    BackOff,
    Continue,
    Step,
    StepOutcome,
    classify_failure,
    link_step,
)
from ctdata_pipeline.probes.model import ProbeItem, ProbeResult
from ctdata_pipeline.probes.politeness import Host, HostScheduler, fetch_robots, host_of
from ctdata_pipeline.probes.soql import content_step

SessionFactory = Callable[[], requests.Session]


def probe_items(
    items: Iterable[ProbeItem],
    settings: ProbeSettings,
    *,
    app_token: str | None = None,
    as_of: datetime | None = None,
    session_factory: SessionFactory | None = None,
) -> Iterator[ProbeResult]:
    """Probe every item; yield exactly one ProbeResult per item, in the order they finish.

    `as_of`: every request carries the X-Ctdata-As-Of header with that instant (how the demo
    portals answer for a past night). `app_token` goes only to Socrata SoQL requests, as the
    X-App-Token header; it never appears in a result. `session_factory` makes the
    requests.Session of each host (default requests.Session)."""
    run = _Run(settings, app_token, as_of, session_factory or requests.Session)
    yield from run.results(list(items))


class _Run:
    def __init__(
        self,
        settings: ProbeSettings,
        app_token: str | None,
        as_of: datetime | None,
        session_factory: SessionFactory,
    ) -> None:
        self.settings = settings
        self.app_token = app_token or None
        self.as_of_header = _instant_text(as_of) if as_of is not None else None
        self.session_factory = session_factory
        self.scheduler = HostScheduler()
        self.done: queue.Queue[ProbeResult] = queue.Queue()
        self.intervals: dict[str, float] = {}

    def results(self, items: list[ProbeItem]) -> Iterator[ProbeResult]:
        pending = 0
        for item in items:
            pending += 1
            refused = self._refuse(item)
            if refused is not None:
                self.done.put(refused)
                continue
            host = self.scheduler.host(host_of(item.url), urlsplit(item.url).scheme.lower())
            self.scheduler.add(host, _first_step(item))
        workers = [
            threading.Thread(target=self._work, name=f"probe-{number}", daemon=True)
            for number in range(min(self.settings.concurrency, max(self.scheduler.open, 0)))
        ]
        for worker in workers:
            worker.start()
        try:
            while pending:
                try:
                    result = self.done.get(timeout=1.0)
                except queue.Empty:
                    if not any(worker.is_alive() for worker in workers):
                        problem = "the probe workers stopped with probes unfinished"
                        raise RuntimeError(problem) from None
                    continue
                pending -= 1
                yield result
        finally:
            self.scheduler.stop()
            for worker in workers:
                worker.join(timeout=self.settings.timeout_seconds + 5)
            for host in self.scheduler.hosts:
                for resource in host.resources.values():
                    resource.close()

    def _refuse(self, item: ProbeItem) -> ProbeResult | None:
        """A result for an item that cannot be requested at all, else None."""
        step = Step(item, item.url, "GET")
        try:
            parts = urlsplit(item.url)
        except ValueError as error:
            return step.result("error", detail=f"not a URL: {error}")
        if parts.scheme.lower() not in ("http", "https"):
            if parts.scheme and parts.netloc:
                return step.result("not_checked", detail=f"{parts.scheme}: URLs are not probed")
            return step.result("error", detail="not an absolute http(s) URL")
        if not parts.netloc:
            return step.result("error", detail="the URL has no host")
        if item.kind == "content_date" and not item.columns:
            return step.result("error", detail="no date columns to ask about")
        return None

    def _work(self) -> None:
        while (host := self.scheduler.take()) is not None:
            ready_at = time.monotonic()
            try:
                ready_at = self._serve(host)
            except Exception as error:  # a bug here must not hang the run: finish the step
                step = host.current or self.scheduler.pop(host)
                if step is not None:
                    self._emit(step.result("error", detail=f"probe engine: {error!r}"))
            finally:
                host.current = None
                self.scheduler.give_back(host, ready_at)

    def _serve(self, host: Host) -> float:
        """Make at most one request to `host`; return when its next request may start."""
        if host.robots is None:
            host.robots = fetch_robots(
                self._session(host),
                host.scheme,
                host.name,
                self.settings.user_agent,
                self.settings.timeout_seconds,
            )
            delay = min(host.robots.crawl_delay, self.settings.max_retry_after_seconds)
            self.intervals[host.name] = max(self.settings.min_interval_seconds, delay)
            step = self._next_to_request(host)
            if step is not None:  # its turn comes after the pause
                self.scheduler.add(host, step, first=True, new=False)
            return time.monotonic() + self.intervals[host.name]
        step = host.current = self._next_to_request(host)
        if step is None:
            return time.monotonic()
        started = time.monotonic()
        try:
            outcome = self._request(host, step)
        except Exception as error:  # no answer (or none we could read): its error class
            kind, text = classify_failure(error)
            outcome = step.result(kind, detail=text)
        ended = time.monotonic()
        step.elapsed_seconds += ended - started
        interval = self.intervals[host.name]
        host.current = None  # from here on the step is handed on exactly once
        if isinstance(outcome, ProbeResult):
            self._emit(outcome)
        elif isinstance(outcome, Continue):
            target = urlsplit(step.url)
            next_host = self.scheduler.host(host_of(step.url), target.scheme.lower())
            self.scheduler.add(next_host, step, first=True, new=False)
        elif isinstance(outcome, BackOff):
            return self._back_off(host, outcome, ended, interval)
        return ended + interval

    def _next_to_request(self, host: Host) -> Step | None:
        """The host's next step that needs a request; the ones before it that need none
        (robots.txt says no, the host is unreachable or asked us to stay away) are finished."""
        while (step := self.scheduler.pop(host)) is not None:
            result = self._without_request(host, step)
            if result is None:
                return step
            self._emit(result)
        return None

    def _back_off(self, host: Host, back_off: BackOff, ended: float, interval: float) -> float:
        step, seconds = back_off.step, back_off.seconds
        if seconds > self.settings.max_retry_after_seconds:
            host.backed_off = (
                f"{host.name} answered HTTP {back_off.status_code} with Retry-After "
                f"{seconds:g} s, longer than max_retry_after_seconds "
                f"({self.settings.max_retry_after_seconds:g}): not asked again this run"
            )
            self._emit(
                step.result("not_checked", status_code=back_off.status_code, detail=host.backed_off)
            )
            return ended
        step.retried = True
        step.notes.append(
            f"HTTP {back_off.status_code} with Retry-After {seconds:g} s: waited, retried once"
        )
        self.scheduler.add(host, step, first=True, new=False)
        return ended + max(seconds, interval)

    def _without_request(self, host: Host, step: Step) -> ProbeResult | None:
        robots = host.robots
        assert robots is not None
        hop = " (a redirect target)" if step.hops else ""
        if robots.unreachable is not None:
            outcome, detail = robots.unreachable
            return step.result(outcome, detail=detail, request=step.first_request or robots.request)
        if robots.disallow_all:
            return step.result("not_checked", detail=robots.disallow_all)
        if host.backed_off:
            return step.result("not_checked", detail=host.backed_off)
        if not robots.allows(self.settings.user_agent, step.url):
            return step.result(
                "not_checked",
                detail=f"robots.txt of {host.name} disallows {step.url}{hop} for "
                f"{self.settings.user_agent}",
            )
        return None

    def _request(self, host: Host, step: Step) -> StepOutcome:
        timeout = self.settings.timeout_seconds
        if step.item.kind == "content_date":
            return content_step(step, self._socrata(host))
        if step.item.kind == "layer_date":
            return layer_step(step, self._session(host), timeout)
        return link_step(step, self._session(host), timeout)

    def _session(self, host: Host) -> requests.Session:
        session = host.resources.get("session")
        if session is None:
            session = host.resources["session"] = self._new_session()
        return session

    def _socrata(self, host: Host) -> Socrata:
        """sodapy's client for the host, on a session of our own; the app token is only here."""
        client = host.resources.get("socrata")
        if client is None:
            with _without_sodapy_token_warning():
                client = Socrata(
                    host.name,
                    self.app_token,
                    session_adapter={"prefix": f"{host.scheme}://", "adapter": HTTPAdapter()},
                    timeout=self.settings.timeout_seconds,
                )
            client.session.close()
            client.session = self._new_session()
            if self.app_token:
                client.session.headers["X-App-Token"] = self.app_token
            host.resources["socrata"] = client
        return client

    def _new_session(self) -> requests.Session:
        session = self.session_factory()
        session.headers["User-Agent"] = self.settings.user_agent_header
        if self.as_of_header is not None:
            session.headers[AS_OF_HEADER] = self.as_of_header
        return session

    def _emit(self, result: ProbeResult) -> None:
        self.done.put(self._redacted(result))
        self.scheduler.finished()

    def _redacted(self, result: ProbeResult) -> ProbeResult:
        """The result without the app token anywhere (a portal may echo it back)."""
        token = self.app_token
        if not token:
            return result
        fields: dict[str, Any] = {}
        for name in ("request", "detail", "final_url"):
            value = getattr(result, name)
            if isinstance(value, str) and token in value:
                fields[name] = value.replace(token, "[redacted]")
        return dataclasses.replace(result, **fields) if fields else result


def _first_step(item: ProbeItem) -> Step:
    if item.kind == "link":
        return Step(item, item.url, "HEAD")
    if item.kind == "layer_date":
        return Step(item, layer_request_url(item.url), "GET")
    return Step(item, item.url, "GET")


def _instant_text(moment: datetime) -> str:
    """An instant as ISO 8601 in UTC (a naive datetime is taken to be UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()
