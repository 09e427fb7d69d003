"""Harvest a Socrata catalog through the Discovery API (/api/catalog/v1), with sodapy.

sodapy's own `datasets()` cannot be used as is: it pages in relevance order (unstable across
pages), drops `resultSetSize`, and raises on the short last page when a limit is given. So each
page goes through the client's request path (`_perform_request`: its session with the app token
and our retrying adapter, its timeout, its error mapping) with explicit paging:

- catalogs under 10,000 assets: offset paging ordered by `dataset_id`, each page no further than
  offset + limit = 10,000 (the API answers 400 beyond that);
- larger catalogs (the API caps `resultSetSize` at 10,000, so that count is a floor): deep
  scrolling with `scroll_id` = the last id of the previous page, until an empty page.

Records are de-duplicated by `resource.id`. When the portal's count moves during the crawl, or
the unique count does not match it, the catalog changed under us and the crawl starts over."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests
from sodapy import Socrata

from ctdata_pipeline.harvest.asof import AS_OF_PARAM, AsOfCheck
from ctdata_pipeline.harvest.http import (
    HarvestError,
    InvalidBody,
    describe_http_failure,
    parse_json_with_orjson,
    redact,
    require_utf8_json,
    retrying_adapter,
    with_body_retries,
)
from ctdata_pipeline.harvest.staging import COUNTER_COLUMNS, HarvestSummary, StagedWriter
from ctdata_pipeline.portals import Portal

CATALOG_PATH = "/api/catalog/v1"
OFFSET_WINDOW = 10_000  # offset + limit may not exceed this on the Discovery API
CRAWL_ATTEMPTS = 3
FOUR_BY_FOUR = re.compile(r"[a-z0-9]{4}-[a-z0-9]{4}")


@dataclass
class _Crawl:
    """One pass over the catalog."""

    seen: set[str] = field(default_factory=set)
    pages: int = 0
    duplicates: int = 0
    result_set_size: int | None = None


class CatalogChanged(Exception):
    """The catalog moved while it was being paged; start over."""


class SocrataHarvester:
    """Pages one Socrata portal's catalog into a staged writer."""

    def __init__(self, portal: Portal, app_token: str | None, as_of: date | None) -> None:
        self.portal = portal
        self.as_of = as_of
        self._as_of_check = AsOfCheck(portal.name, as_of)
        with _without_sodapy_token_warning():
            self._client = Socrata(
                portal.netloc,
                app_token,
                session_adapter={
                    "prefix": f"{portal.scheme}://",
                    "adapter": retrying_adapter(portal),
                },
                timeout=portal.timeout_seconds,
            )
        self._client.session.hooks["response"].extend(
            [self._as_of_check.on_response, require_utf8_json, parse_json_with_orjson]
        )

    @property
    def source_url(self) -> str:
        return f"{self.portal.url}{CATALOG_PATH}?domains={','.join(self._domains)}"

    @property
    def _domains(self) -> list[str]:
        return [self.portal.socrata_domain, *self.portal.federated_domains]

    def harvest(self, writer: StagedWriter, snapshot_date: date) -> HarvestSummary:
        started = time.monotonic()
        try:
            with self._client:
                crawl, paging = self._crawl_until_consistent(writer)
        except requests.exceptions.RequestException as error:
            problem, retryable = describe_http_failure(error)
            raise HarvestError(self.portal.name, problem, retryable=retryable) from None
        except InvalidBody as error:
            raise HarvestError(
                self.portal.name,
                f"the Discovery API answered with an unusable page: {error}",
                retryable=True,
            ) from None
        return HarvestSummary(
            portal=self.portal.name,
            kind="socrata",
            snapshot_date=snapshot_date,
            snapshot_time=self._as_of_check.snapshot_time(),
            source_url=self.source_url,
            assets=writer.count,
            result_set_size=crawl.result_set_size,
            pages=crawl.pages,
            paging=paging,
            duplicates_dropped=crawl.duplicates,
            seconds=round(time.monotonic() - started, 3),
        )

    def _crawl_until_consistent(self, writer: StagedWriter) -> tuple[_Crawl, str]:
        last_problem = ""
        for _attempt in range(CRAWL_ATTEMPTS):
            writer.reset()
            try:
                first = self._page(offset=0, limit=self.portal.page_size, ordered=True)
                total = first["resultSetSize"]
                if total < OFFSET_WINDOW:
                    return self._offset_crawl(first, total, writer), "offset"
                return self._scroll_crawl(total, writer), "scroll"
            except CatalogChanged as change:
                last_problem = str(change)
        raise HarvestError(
            self.portal.name,
            f"the catalog kept changing while it was paged ({CRAWL_ATTEMPTS} attempts; "
            f"last: {last_problem})",
            retryable=True,
        )

    def _offset_crawl(self, first: dict[str, Any], total: int, writer: StagedWriter) -> _Crawl:
        crawl = _Crawl(result_set_size=total)
        page, offset = first, 0
        while True:
            crawl.pages += 1
            if page["resultSetSize"] != total:
                raise CatalogChanged(
                    f"resultSetSize went from {total} to {page['resultSetSize']} at offset {offset}"
                )
            results = page["results"]
            self._keep(results, crawl, writer, where=f"offset {offset}")
            offset += len(results)
            if not results or offset >= total:
                break
            limit = min(self.portal.page_size, OFFSET_WINDOW - offset)
            page = self._page(offset=offset, limit=limit, ordered=True)
        if len(crawl.seen) != total:
            raise CatalogChanged(
                f"{len(crawl.seen)} unique assets were paged but resultSetSize is {total}"
            )
        return crawl

    def _scroll_crawl(self, floor: int, writer: StagedWriter) -> _Crawl:
        crawl = _Crawl(result_set_size=floor)
        scroll_id = ""
        while True:
            page = self._page(scroll_id=scroll_id, limit=self.portal.page_size)
            crawl.pages += 1
            results = page["results"]
            if not results:
                break
            new = self._keep(results, crawl, writer, where=f"scroll_id {scroll_id!r}")
            next_scroll_id = results[-1]["resource"]["id"]
            if new == 0 or next_scroll_id == scroll_id:
                raise HarvestError(
                    self.portal.name,
                    f"deep scrolling did not advance past {scroll_id!r}",
                    retryable=True,
                )
            scroll_id = next_scroll_id
        if len(crawl.seen) < floor:
            raise CatalogChanged(
                f"{len(crawl.seen)} unique assets were scrolled but resultSetSize is {floor}"
            )
        return crawl

    def _keep(self, results: list[Any], crawl: _Crawl, writer: StagedWriter, where: str) -> int:
        new = 0
        for position, result in enumerate(results):
            asset_id = _asset_id(result)
            if asset_id is None:
                raise HarvestError(
                    self.portal.name,
                    f"result {position} of the page at {where} has no resource.id",
                )
            if not FOUR_BY_FOUR.fullmatch(asset_id):
                # Every Socrata asset id is a four-by-four; anything else is not a catalog answer.
                raise HarvestError(
                    self.portal.name,
                    f"result {position} of the page at {where} has resource.id "
                    f"{asset_id[:40]!r}, not a Socrata id (xxxx-xxxx)",
                )
            if asset_id in crawl.seen:
                crawl.duplicates += 1
                continue
            crawl.seen.add(asset_id)
            writer.write(asset_id, result, take_counters(result))
            new += 1
        return new

    def _page(
        self,
        *,
        limit: int,
        offset: int | None = None,
        ordered: bool = False,
        scroll_id: str | None = None,
    ) -> dict[str, Any]:
        params: list[tuple[str, Any]] = [
            ("domains", ",".join(self._domains)),
            ("search_context", self.portal.socrata_domain),
            ("limit", limit),
        ]
        if ordered:
            params.append(("order", "dataset_id"))
        if offset is not None:
            params.append(("offset", offset))
        if scroll_id is not None:
            params.append(("scroll_id", scroll_id))
        if self.as_of is not None:
            params.append((AS_OF_PARAM, self.as_of.isoformat()))
        return with_body_retries(lambda: self._request(params))

    def _request(self, params: list[tuple[str, Any]]) -> dict[str, Any]:
        try:
            body = self._client._perform_request("get", CATALOG_PATH, params=params)
        except requests.exceptions.JSONDecodeError as error:
            raise InvalidBody(f"not valid JSON ({error})") from None
        except requests.exceptions.RequestException:
            raise
        except InvalidBody:
            raise
        except Exception as error:  # sodapy raises bare Exception for an unknown content type
            problem = str(error)
            if problem.startswith("Unknown response format: "):
                problem = f"content type {problem.split(': ', 1)[1]!r}, not JSON"
            raise InvalidBody(problem) from None
        self._as_of_check.raise_if_unconfirmed()
        if isinstance(body, requests.Response):
            raise InvalidBody("the body was empty")
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("results"), list)
            or not isinstance(body.get("resultSetSize"), int)
        ):
            raise InvalidBody("expected an object with a 'results' list and a 'resultSetSize'")
        return body


@contextmanager
def _without_sodapy_token_warning() -> Iterator[None]:
    """sodapy warns on the root logger, outside the run's log, whenever no token is given; the
    harvest asset says it in the run log instead, for live portals only."""
    root = logging.getLogger()
    token_warning = _MessageFilter("without an app_token")
    root.addFilter(token_warning)
    try:
        yield
    finally:
        root.removeFilter(token_warning)


class _MessageFilter(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


def _asset_id(result: Any) -> str | None:
    if not isinstance(result, dict):
        return None
    resource = result.get("resource")
    if not isinstance(resource, dict):
        return None
    asset_id = resource.get("id")
    return asset_id if isinstance(asset_id, str) and asset_id.strip() else None


_PAGE_VIEW_KEYS = {
    "views_last_week": "page_views_last_week",
    "views_last_month": "page_views_last_month",
    "views_total": "page_views_total",
}


def take_counters(result: dict[str, Any]) -> dict[str, int | None]:
    """Remove the view and download counts from a Discovery API result (they move every night,
    the rest of the record rarely does) and return them; `*_log` views are derived from them."""
    resource = result["resource"]
    page_views = resource.pop("page_views", None)
    page_views = page_views if isinstance(page_views, dict) else {}
    counters = {column: _count(page_views.get(key)) for column, key in _PAGE_VIEW_KEYS.items()}
    counters["downloads_total"] = _count(resource.pop("download_count", None))
    return {column: counters[column] for column in COUNTER_COLUMNS}


def _count(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    # A count outside BIGINT is not a count the portal kept.
    return value if isinstance(value, int) and -(2**63) <= value < 2**63 else None


def harvest_socrata(
    portal: Portal,
    writer: StagedWriter,
    snapshot_date: date,
    *,
    app_token: str | None,
    as_of: date | None,
) -> HarvestSummary:
    """Harvest one Socrata portal into `writer`; raise HarvestError if the catalog is not whole.
    No message it raises contains the app token, even when the portal echoes it back."""
    try:
        return SocrataHarvester(portal, app_token, as_of).harvest(writer, snapshot_date)
    except Exception as error:
        if not app_token or app_token not in str(error):
            raise
        problem = error.problem if isinstance(error, HarvestError) else f"{error!r}"
        retryable = isinstance(error, HarvestError) and error.retryable
        raise HarvestError(portal.name, redact(problem, app_token), retryable=retryable) from None
