"""HTTP plumbing shared by the harvesters: transport retries, body retries, clear errors."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import orjson
import requests
import tenacity
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from ctdata_pipeline.portals import Portal

USER_AGENT = "ctdata_pipeline (+https://github.com/ctdata/ctdata_pipeline)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
# A portal asking us to wait longer than this is treated as down for the night.
MAX_RETRY_AFTER_SECONDS = 300.0
BODY_ATTEMPTS = 3

T = TypeVar("T")


class HarvestError(Exception):
    """A harvest that cannot produce a complete catalog. `retryable` says whether trying again
    later could help (a network fault) or not (a refusal, a malformed feed, a bad answer)."""

    def __init__(self, portal: str, problem: str, *, retryable: bool = False) -> None:
        super().__init__(f"{portal}: {problem}")
        self.portal = portal
        self.problem = problem
        self.retryable = retryable


class InvalidBody(Exception):
    """A response body that could not be used (cut short, not JSON, wrong shape)."""


class CappedRetry(Retry):
    """urllib3's Retry, honouring Retry-After only up to a ceiling (a portal that asks for an
    hour's pause should fail the night, not hang it)."""

    def get_retry_after(self, response) -> float | None:  # noqa: ANN001 - urllib3 signature
        seconds = super().get_retry_after(response)
        if seconds is None:
            return None
        return min(seconds, MAX_RETRY_AFTER_SECONDS)


def transport_retry(max_retries: int, methods: frozenset[str] = frozenset({"GET"})) -> Retry:
    """Retries for statuses and connection faults, with backoff and Retry-After honoured, for
    `methods` (a write may be retried only where sending it twice does no harm)."""
    return CappedRetry(
        total=max_retries,
        connect=max_retries,
        read=max_retries,
        status=max_retries,
        backoff_factor=1.0,
        backoff_max=60,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=methods,
        respect_retry_after_header=True,
        # Hand the last bad response back so the caller can report its status and body.
        raise_on_status=False,
    )


def retrying_adapter(portal: Portal) -> HTTPAdapter:
    return HTTPAdapter(max_retries=transport_retry(portal.max_retries))


def retrying_session(portal: Portal) -> requests.Session:
    """A requests session that retries like the Socrata client does (used for DCAT feeds)."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = retrying_adapter(portal)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# What a body-level retry may recover from: the connection dropped or stalled mid-body, or
# the body arrived cut short or garbled. Statuses were already retried by the transport.
BODY_FAULTS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    InvalidBody,
)


def require_utf8_json(response: requests.Response, *args: object, **kwargs: object) -> None:
    """A response hook: a JSON body must be UTF-8 (RFC 8259). requests would otherwise decode
    bad bytes as U+FFFD and the catalog would quietly hold text the portal never published."""
    content_type = response.headers.get("Content-Type", "").lower()
    if response.ok and "json" in content_type:
        try:
            response.content.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidBody(
                f"not valid UTF-8 (byte 0x{response.content[error.start]:02x} at position "
                f"{error.start})"
            ) from None


def parse_json_with_orjson(response: requests.Response, *args: object, **kwargs: object) -> None:
    """A response hook: sodapy's `response.json()` parses the body with orjson, which reads the
    same JSON into the same values about twice as fast as the standard library (a 100k
    catalog's fetching went from 9.4 s to 8.2 s, `benchmarks/RESULTS.md`). A body that is not
    JSON (RFC 8259's: NaN and Infinity are not) raises requests' JSONDecodeError, as before."""

    def parse(**_: object) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as error:
            raise requests.exceptions.JSONDecodeError(error.msg, response.text, error.pos) from None

    response.json = parse  # type: ignore[method-assign]


def with_body_retries(fetch: Callable[[], T], *, attempts: int = BODY_ATTEMPTS) -> T:
    """Run `fetch` again when its response body fails; re-raise the last fault."""
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(BODY_FAULTS),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=0.5, max=10),
        reraise=True,
    )
    return retrying(fetch)


def describe_http_failure(error: Exception) -> tuple[str, bool]:
    """A one-line description of a requests failure and whether it is worth retrying later."""
    if isinstance(error, requests.exceptions.HTTPError):
        response = error.response
        status = response.status_code if response is not None else None
        detail = _short_body(response)
        retryable = status in RETRY_STATUSES
        return f"HTTP {status} from {_url(response)}{detail}", retryable
    if isinstance(error, requests.exceptions.TooManyRedirects):
        last = _url(error.response)
        return f"redirected in a loop (more than 30 redirects, the last to {last})", False
    if isinstance(error, requests.exceptions.Timeout):
        return f"timed out waiting for the portal ({error.__class__.__name__})", True
    cause = _root_cause(error)
    if isinstance(error, requests.exceptions.ConnectionError):
        if "timed out" in cause.lower():  # the body stalled after the headers arrived
            return f"timed out reading the response ({cause})", True
        if _is_name_resolution_failure(error):
            return f"the portal's host name could not be resolved ({cause})", True
        return f"connection failed ({cause})", True
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return f"the response's compressed body could not be decompressed ({cause})", True
    if isinstance(error, requests.exceptions.ChunkedEncodingError | InvalidBody):
        return f"the response body was cut short or unusable ({cause})", True
    return f"{error.__class__.__name__}: {error}", False


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of a secret (the app token) replaced, for messages that
    quote what a portal sent back (a portal may echo the request's headers)."""
    return text.replace(secret, "[redacted]") if secret else text


def _url(response: requests.Response | None) -> str:
    if response is None or response.request is None:
        return "the portal"
    return str(response.request.url)


def _short_body(response: requests.Response | None) -> str:
    if response is None:
        return ""
    text = (response.text or "").strip().replace("\n", " ")
    return f": {text[:200]}" if text else ""


def _is_name_resolution_failure(error: BaseException) -> bool:
    return any(
        isinstance(link, socket.gaierror | urllib3.exceptions.NameResolutionError)
        for link in error_chain(error)
    )


def _root_cause(error: BaseException) -> str:
    *_, root = error_chain(error)
    text = str(root) or root.__class__.__name__
    return text if len(text) < 200 else text[:200] + "…"


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it, down to the root. requests and urllib3 carry the
    underlying error in `args` or `.reason` rather than as a cause, so those count too."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        reason = getattr(link, "reason", None)
        wrapped = next((arg for arg in link.args if isinstance(arg, BaseException)), None)
        link = (
            link.__cause__
            or link.__context__
            or (reason if isinstance(reason, BaseException) else wrapped)
        )
