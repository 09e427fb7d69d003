"""Harvest a DCAT-US 1.1 feed (ArcGIS Hub's /api/feed/dcat-us/1.1.json, a Socrata data.json, …).

The feed is one JSON document with no paging, tens of MB for a large site, so it is parsed as a
stream (ijson) and each dataset is staged as soon as it is complete: memory stays flat however
large the feed is."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

import ijson
import requests

from ctdata_pipeline.harvest.asof import AS_OF_PARAM, AsOfCheck
from ctdata_pipeline.harvest.http import (
    HarvestError,
    InvalidBody,
    describe_http_failure,
    retrying_session,
    with_body_retries,
)
from ctdata_pipeline.harvest.staging import HarvestSummary, StagedWriter
from ctdata_pipeline.portals import Portal

JSON_CONTENT_TYPE = re.compile(r"^(application|text)/([a-z.+-]*\+)?json\b|^application/ld\+json\b")
HUB_ITEM = re.compile(r"[?&]id=([0-9a-f]{32})\b(?:.*[?&]sublayer=(\d+))?", re.IGNORECASE)
HUB_CONTENT = re.compile(r"/(?:content|datasets)/([0-9a-f]{32})(?:_(\d+))?\b", re.IGNORECASE)
SOCRATA_VIEW = re.compile(r"/api/views/([a-z0-9]{4}-[a-z0-9]{4})\b", re.IGNORECASE)
CHUNK_BYTES = 256 * 1024


class FeedProblem(Exception):
    """The feed parsed but is not a DCAT-US catalog (wrong content type, no dataset list)."""


def dcat_asset_id(dataset: dict[str, Any]) -> str:
    """A stable id for a DCAT dataset across nights.

    Hub identifiers changed format over the years (landing page URL, then the ArcGIS Online item
    page with `&sublayer=N`), and each layer of a service is its own dataset, so Hub datasets
    are keyed `<itemId>_<layer>`; Socrata data.json datasets by their 4x4; anything else by its
    identifier as given."""
    identifier = dataset.get("identifier")
    text = identifier.strip() if isinstance(identifier, str) else ""
    for pattern in (HUB_ITEM, HUB_CONTENT):
        match = pattern.search(text)
        if match:
            item, layer = match.group(1).lower(), match.group(2)
            return f"{item}_{layer}" if layer is not None else item
    match = SOCRATA_VIEW.search(text)
    if match:
        return match.group(1).lower()
    if text:
        return text
    # No identifier (itself a metadata failure): fall back to what else names the dataset.
    landing = dataset.get("landingPage")
    if isinstance(landing, str) and landing.strip():
        return landing.strip()
    title = dataset.get("title") if isinstance(dataset.get("title"), str) else ""
    return "no-identifier:" + hashlib.blake2b(title.encode(), digest_size=8).hexdigest()


class _ChunkStream:
    """A file-like view of `iter_content`, so ijson reads the body through requests (which
    turns mid-body timeouts and resets into requests exceptions). `read(n)` never returns more
    than n bytes: ijson's C backend copies only what it asked for."""

    def __init__(self, response: requests.Response) -> None:
        self._chunks = response.iter_content(chunk_size=CHUNK_BYTES)
        self._buffer = b""
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
            self.bytes_read += len(chunk)
        if size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def iter_feed_datasets(stream: Any) -> Iterator[dict[str, Any]]:
    """Yield each object of the catalog's top-level `dataset` array, one at a time."""
    events = ijson.parse(stream, use_float=True)
    saw_dataset_array = False
    try:
        _, first_event, _ = next(events)
    except StopIteration:
        raise InvalidBody("the body was empty") from None
    if first_event != "start_map":
        kind = "a list (a DCAT-US 1.0 feed?)" if first_event == "start_array" else "not an object"
        raise FeedProblem(f"the feed's top level is {kind}; expected a catalog with 'dataset'")
    index = 0
    for prefix, event, _value in events:
        if prefix == "dataset":
            if event == "start_array":
                saw_dataset_array = True
            elif event != "end_array":
                raise FeedProblem(f"the feed's 'dataset' is {_json_kind(event)}, not a list")
            continue
        if prefix == "dataset.item":
            if event != "start_map":
                raise FeedProblem(f"dataset[{index}] is {_json_kind(event)}, not an object")
            yield _build_object(events)
            index += 1
    if not saw_dataset_array:
        raise FeedProblem("the feed has no 'dataset' list")


def _build_object(events: Iterator[tuple[str, str, Any]]) -> dict[str, Any]:
    builder = ijson.ObjectBuilder()
    builder.event("start_map", None)
    depth = 1
    for _prefix, event, value in events:
        builder.event(event, value)
        if event in ("start_map", "start_array"):
            depth += 1
        elif event in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                return builder.value
    raise InvalidBody("the feed ended inside a dataset")


def _first_line(error: Exception) -> str:
    """yajl's message without the excerpt of the body it quotes (bytes, over several lines)."""
    message = error.args[0] if error.args else error
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    return str(message).strip().splitlines()[0]


def _json_kind(event: str) -> str:
    return {
        "start_map": "an object",
        "start_array": "a list",
        "string": "a string",
        "number": "a number",
        "boolean": "a boolean",
        "null": "null",
    }.get(event, event)


class DcatHarvester:
    """Streams one DCAT feed into a staged writer."""

    def __init__(self, portal: Portal, as_of: date | None) -> None:
        self.portal = portal
        self.as_of = as_of
        self._as_of_check = AsOfCheck(portal.name, as_of)

    def harvest(self, writer: StagedWriter, snapshot_date: date) -> HarvestSummary:
        started = time.monotonic()
        params = {AS_OF_PARAM: self.as_of.isoformat()} if self.as_of else None
        with retrying_session(self.portal) as session:
            session.hooks["response"].append(self._as_of_check.on_response)
            try:
                duplicates = with_body_retries(lambda: self._stream(session, params, writer))
            except requests.exceptions.RequestException as error:
                problem, retryable = describe_http_failure(error)
                raise HarvestError(self.portal.name, problem, retryable=retryable) from None
            except InvalidBody as error:
                raise HarvestError(
                    self.portal.name, f"the feed is not valid JSON ({error})", retryable=True
                ) from None
            except FeedProblem as error:
                raise HarvestError(self.portal.name, str(error)) from None
        return HarvestSummary(
            portal=self.portal.name,
            kind="dcat",
            snapshot_date=snapshot_date,
            snapshot_time=self._as_of_check.snapshot_time(),
            source_url=self.portal.url,
            assets=writer.count,
            result_set_size=None,
            pages=1,
            paging="feed",
            duplicates_dropped=duplicates,
            seconds=round(time.monotonic() - started, 3),
        )

    def _stream(
        self, session: requests.Session, params: dict[str, str] | None, writer: StagedWriter
    ) -> int:
        writer.reset()
        timeout = (min(30.0, self.portal.timeout_seconds), self.portal.timeout_seconds)
        with session.get(self.portal.url, params=params, stream=True, timeout=timeout) as response:
            response.raise_for_status()
            self._as_of_check.raise_if_unconfirmed()
            content_type = response.headers.get("Content-Type", "").strip().lower()
            if not JSON_CONTENT_TYPE.match(content_type):
                raise FeedProblem(
                    f"{self.portal.url} answered with content type {content_type or 'none'!r}, "
                    "not JSON"
                )
            seen: set[str] = set()
            duplicates = 0
            body = _ChunkStream(response)
            try:
                for dataset in iter_feed_datasets(body):
                    asset_id = dcat_asset_id(dataset)
                    if asset_id in seen:
                        duplicates += 1
                        continue
                    seen.add(asset_id)
                    writer.write(asset_id, dataset)
            except ijson.JSONError as error:
                if body.bytes_read == 0:  # a portal that answered nothing, not a cut feed
                    raise InvalidBody("the answer was empty: 0 bytes") from None
                raise InvalidBody(_first_line(error)) from None
        return duplicates


def harvest_dcat(
    portal: Portal, writer: StagedWriter, snapshot_date: date, *, as_of: date | None
) -> HarvestSummary:
    """Harvest one DCAT-US feed into `writer`; raise HarvestError if it is not a whole catalog."""
    return DcatHarvester(portal, as_of).harvest(writer, snapshot_date)
