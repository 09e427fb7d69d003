"""AC-1 link probes, and the HTTP steps every probe shares: one request per step (redirects are
followed one hop at a time, each hop queued on its own host so politeness holds for it too),
and what a failed request means (timeout, dns, refused, tls).

A link is asked with HEAD; a server that refuses HEAD (403, 405, 501) is asked again with a GET
that reads at most 64 KB. At most 5 redirects are followed; a sixth, or a redirect back to a URL
already visited, is `too_many_redirects`. OK = the final answer is 2xx or 3xx."""

from __future__ import annotations

import email.utils
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from ctdata_pipeline.harvest.http import error_chain
from ctdata_pipeline.probes.model import Outcome, ProbeItem, ProbeResult

MAX_REDIRECTS = 5
GET_READ_LIMIT = 64 * 1024  # a GET fallback reads no more than this of the body
HEAD_REFUSED = (403, 405, 501)  # answers that mean "ask me with GET"
REDIRECTS = (301, 302, 303, 307, 308)
DETAIL_LIMIT = 500


@dataclass
class Step:
    """A probe in flight: the next request to make and what the earlier ones got."""

    item: ProbeItem
    url: str
    method: str
    visited: list[str] = field(default_factory=list)
    hops: list[str] = field(default_factory=list)  # "301 -> <url>" per redirect followed
    notes: list[str] = field(default_factory=list)
    fell_back: bool = False  # HEAD refused, now asking with GET
    retried: bool = False  # already retried once after a Retry-After
    first_request: str = ""
    probed_at: datetime | None = None
    elapsed_seconds: float = 0.0

    def sent(self, request: str) -> None:
        if self.probed_at is None:
            self.probed_at = datetime.now(UTC)
            self.first_request = request

    def result(
        self,
        outcome: Outcome,
        *,
        status_code: int | None = None,
        final_url: str | None = None,
        observed: tuple[tuple[str, datetime | None], ...] = (),
        detail: str = "",
        request: str | None = None,
    ) -> ProbeResult:
        parts = [*self.notes]
        if self.hops:
            parts.append("redirects: " + ", ".join(self.hops))
        if detail:
            parts.append(detail)
        return ProbeResult(
            item=self.item,
            probed_at=self.probed_at or datetime.now(UTC),
            request=request or self.first_request or f"{self.method} {self.url} (not sent)",
            outcome=outcome,
            status_code=status_code,
            final_url=final_url,
            observed=observed,
            detail="; ".join(parts)[:DETAIL_LIMIT],
            elapsed_ms=round(self.elapsed_seconds * 1000),
        )


@dataclass(frozen=True)
class Continue:
    """The probe goes on with another request (a redirect hop or the GET fallback)."""

    step: Step


@dataclass(frozen=True)
class BackOff:
    """The host answered 429/503 with Retry-After: pause it, then retry the step once."""

    step: Step
    seconds: float
    status_code: int


StepOutcome = ProbeResult | Continue | BackOff


@dataclass(frozen=True)
class Answer:
    status_code: int
    url: str
    location: str | None
    body: bytes
    response: requests.Response


def send(
    session: requests.Session,
    method: str,
    url: str,
    timeout: float,
    *,
    read_limit: int,
    params: dict[str, str] | None = None,
) -> Answer:
    """One request, redirects not followed, at most `read_limit` bytes of the body read."""
    with session.request(
        method, url, params=params, timeout=timeout, allow_redirects=False, stream=True
    ) as response:
        body = b""
        if method != "HEAD" and read_limit > 0:
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_content(chunk_size=16 * 1024):
                chunks.append(chunk)
                size += len(chunk)
                if size >= read_limit:
                    break
            body = b"".join(chunks)
        location = response.headers.get("Location")
        return Answer(response.status_code, response.url, location, body, response)


def follow_redirect(step: Step, answer: Answer) -> StepOutcome | None:
    """A Continue to the redirect's target, `too_many_redirects`, or None if not a redirect."""
    if answer.status_code not in REDIRECTS or not answer.location:
        return None
    target = urljoin(answer.url, answer.location)
    step.hops.append(f"{answer.status_code} -> {target}")
    if len(step.hops) > MAX_REDIRECTS:
        return step.result(
            "too_many_redirects",
            status_code=answer.status_code,
            final_url=answer.url,
            detail=f"more than {MAX_REDIRECTS} redirects",
        )
    if target in step.visited:
        return step.result(
            "too_many_redirects",
            status_code=answer.status_code,
            final_url=answer.url,
            detail=f"redirect loop back to {target}",
        )
    if urlsplit(target).scheme not in ("http", "https"):
        return step.result(
            "error",
            status_code=answer.status_code,
            final_url=answer.url,
            detail=f"redirected to a non-http(s) URL {target}",
        )
    if answer.status_code == 303 and step.method != "HEAD":
        step.method = "GET"
    step.url = target
    return Continue(step)


def link_step(step: Step, session: requests.Session, timeout: float) -> StepOutcome:
    """One request of a link probe: HEAD (or the GET fallback) of the step's URL."""
    request = f"{step.method} {step.url}"
    step.visited.append(step.url)
    step.sent(request)
    answer = send(
        session,
        step.method,
        step.url,
        timeout,
        read_limit=GET_READ_LIMIT if step.method == "GET" else 0,
    )
    pause = retry_after_seconds(answer.response)
    if pause is not None and not step.retried:
        return BackOff(step, pause, answer.status_code)
    redirected = follow_redirect(step, answer)
    if redirected is not None:
        return redirected
    if answer.status_code in HEAD_REFUSED and step.method == "HEAD" and not step.fell_back:
        step.notes.append(f"HEAD answered {answer.status_code}, asked again with GET")
        step.fell_back = True
        step.method = "GET"
        step.visited.remove(step.url)  # the same URL again, with GET: not a loop
        return Continue(step)
    ok = 200 <= answer.status_code < 400
    return step.result(
        "ok" if ok else "http_error",
        status_code=answer.status_code,
        final_url=answer.url,
        detail="" if ok else f"HTTP {answer.status_code}",
    )


def retry_after_seconds(response: requests.Response) -> float | None:
    """The pause a 429/503 asks for (Retry-After in seconds or as an HTTP date), else None."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify_failure(error: BaseException) -> tuple[Outcome, str]:
    """The error class of a request that got no answer, and a short description."""
    chain = list(error_chain(error))
    text = _describe(chain[-1]) if chain else repr(error)
    if any(isinstance(link, requests.exceptions.SSLError | ssl.SSLError) for link in chain):
        return "tls", f"TLS failed: {text}"
    if any(
        isinstance(link, socket.gaierror | urllib3.exceptions.NameResolutionError) for link in chain
    ):
        return "dns", f"the host name could not be resolved: {text}"
    if any(isinstance(link, ConnectionRefusedError) for link in chain):
        return "refused", f"connection refused: {text}"
    if isinstance(error, requests.exceptions.Timeout) or any(
        isinstance(link, TimeoutError | urllib3.exceptions.ReadTimeoutError)
        or type(link) is urllib3.exceptions.ConnectTimeoutError
        for link in chain
    ):
        return "timeout", f"no answer in time: {text}"
    if isinstance(error, requests.exceptions.TooManyRedirects):
        return "too_many_redirects", text
    if isinstance(error, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return "error", f"not a usable URL: {text}"
    return "error", f"{error.__class__.__name__}: {text}"


def _describe(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    return text if len(text) <= 200 else text[:200] + "…"
