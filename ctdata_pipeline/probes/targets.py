"""What to probe from a night's snapshot (metrics.md, "Version 2 additions"), and which share of
it to probe tonight.

Targets, from the raw records of the night's in-scope datasets (catalog.raw_assets):
- content_date (FR-5): a Socrata dataset with at least one column of datatype `calendar_date`
  or `date` (the Discovery API writes them "Calendar date" / "Date": compared lowercased, spaces
  as underscores); asked about by the columns' field names, system columns (':...') left out.
- layer_date (FR-8): a DCAT distribution's accessURL or downloadURL matching
  `.../FeatureServer/<n>` or `.../MapServer/<n>`, cut to that layer URL (no query, nothing
  after the layer number).
- link (AC-1): every DCAT distribution's downloadURL and accessURL, the landingPage when it is
  not on the portal's own host, a Socrata `attribution_link`, and the target link of the
  portal's own `href` assets (the record's `resource.href`, `resource.link` or `link`, the
  first that points off the portal: Socrata's own pages are not the link the asset names).
  Only http(s) URLs: nothing else can be asked with HEAD.

Selection (README, "Probe results"): each target at most once per `probe_interval_days`
nights, longest-unprobed first (never-probed first of all), at most ceil(n / interval) of a
kind's n targets a night."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import duckdb

from ctdata_pipeline.portals import Portal
from ctdata_pipeline.probes.model import PROBE_KINDS, ProbeItem, ProbeKind

# An ArcGIS REST layer: the service URL and the layer's number, whatever follows (/query?...).
LAYER_URL = re.compile(r"^(https?://[^?#]*?/(?:FeatureServer|MapServer)/\d+)(?:[/?#]|$)", re.I)
DATE_DATATYPES = frozenset({"calendar_date", "date"})
HREF_LINK_FIELDS = (("resource", "href"), ("resource", "link"), ("link",))


@dataclass(frozen=True)
class Target:
    """One row of probes.targets: a thing to probe and the dataset it belongs to."""

    asset_id: str
    item: ProbeItem


def night_records(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> Iterator[tuple[str, str, bool, dict[str, Any]]]:
    """(asset_id, asset_type, in_scope, raw record) of every asset of the night's snapshot."""
    rows = conn.execute(
        """
        SELECT a.asset_id, a.asset_type, a.in_scope, r.record
        FROM catalog.assets AS a
        JOIN catalog.raw_assets AS r USING (snapshot_date, portal, asset_id)
        WHERE a.portal = ? AND a.snapshot_date = ?
        ORDER BY a.asset_id
        """,
        [portal, snapshot_date],
    ).fetchall()
    for asset_id, asset_type, in_scope, record in rows:
        yield asset_id, asset_type, bool(in_scope), json.loads(record)


def find_targets(
    portal: Portal,
    records: Iterable[tuple[str, str, bool, dict[str, Any]]],
    *,
    request_base: str | None = None,
    own_hosts: Iterable[str] = (),
) -> list[Target]:
    """Every probe target of a night. `request_base` is scheme://host[:port] to send SoQL
    queries to (default the portal's URL; the demo's loopback one); `own_hosts` are further
    hosts that count as the portal's own (its landing pages are not links to check)."""
    hosts = {urlsplit(portal.url).netloc.lower(), *(host.lower() for host in own_hosts)}
    if portal.kind == "socrata":
        hosts.add(portal.socrata_domain.lower())
    base = (request_base or portal.url).rstrip("/")
    found: dict[tuple[str, str, str], Target] = {}
    for asset_id, asset_type, in_scope, record in records:
        if portal.kind == "socrata":
            targets = _socrata_targets(asset_id, asset_type, in_scope, record, base, hosts)
        elif in_scope:
            targets = _dcat_targets(asset_id, record, hosts)
        else:
            continue
        for target in targets:
            found.setdefault((target.asset_id, target.item.kind, target.item.target), target)
    return list(found.values())


def _socrata_targets(
    asset_id: str,
    asset_type: str,
    in_scope: bool,
    record: dict[str, Any],
    base: str,
    own_hosts: set[str],
) -> Iterator[Target]:
    resource = _mapping(record.get("resource"))
    if in_scope:
        columns = _date_columns(resource)
        if columns:
            url = f"{base}/resource/{asset_id}.json"
            yield Target(asset_id, ProbeItem("content_date", asset_id, url, columns))
        attribution_link = _http_url(resource.get("attribution_link"))
        if attribution_link:
            yield _link(asset_id, attribution_link)
    if asset_type == "href":
        for path in HREF_LINK_FIELDS:
            url = _http_url(_at(record, path))
            if url and _host(url) not in own_hosts:
                yield _link(asset_id, url)
                break


def _date_columns(resource: dict[str, Any]) -> tuple[str, ...]:
    fields = resource.get("columns_field_name")
    datatypes = resource.get("columns_datatype")
    if not isinstance(fields, list) or not isinstance(datatypes, list):
        return ()
    columns = []
    for field, datatype in zip(fields, datatypes, strict=False):
        if not isinstance(field, str) or not isinstance(datatype, str) or field.startswith(":"):
            continue
        if datatype.strip().lower().replace(" ", "_") in DATE_DATATYPES and field not in columns:
            columns.append(field)
    return tuple(columns)


def _dcat_targets(asset_id: str, dataset: dict[str, Any], own_hosts: set[str]) -> Iterator[Target]:
    distributions = dataset.get("distribution")
    for distribution in distributions if isinstance(distributions, list) else []:
        distribution = _mapping(distribution)
        for key in ("accessURL", "downloadURL"):
            url = _http_url(distribution.get(key))
            if not url:
                continue
            layer = LAYER_URL.match(url)
            if layer:
                yield Target(asset_id, ProbeItem("layer_date", layer[1], layer[1]))
            yield _link(asset_id, url)
    landing_page = _http_url(dataset.get("landingPage"))
    if landing_page and _host(landing_page) not in own_hosts:
        yield _link(asset_id, landing_page)


def _link(asset_id: str, url: str) -> Target:
    return Target(asset_id, ProbeItem("link", url, url))


def select_tonight(
    items: Iterable[ProbeItem],
    last_probed: dict[tuple[str, str], date],
    snapshot_date: date,
    interval_days: int,
) -> list[ProbeItem]:
    """Tonight's share of each kind's distinct items: those not probed in the last
    `interval_days` nights (`last_probed`: (kind, target) -> the last night that probed it,
    before tonight), never-probed first, then the longest unprobed, at most ceil(n / interval)
    of a kind's n items; ties in target order, so a re-run picks the same ones."""
    chosen: list[ProbeItem] = []
    for kind in PROBE_KINDS:
        distinct = {item.target: item for item in items if item.kind == kind}
        share = math.ceil(len(distinct) / interval_days)
        due = [
            item
            for item in distinct.values()
            if (last := last_probed.get((kind, item.target))) is None
            or (snapshot_date - last).days >= interval_days
        ]
        due.sort(key=lambda item: (_order(last_probed.get((kind, item.target))), item.target))
        chosen.extend(due[:share])
    return chosen


def _order(last: date | None) -> int:
    return -1 if last is None else last.toordinal()


def kinds_of(items: Iterable[ProbeItem]) -> dict[ProbeKind, int]:
    counts: dict[ProbeKind, int] = dict.fromkeys(PROBE_KINDS, 0)
    for item in items:
        counts[item.kind] += 1
    return counts


def _http_url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text.lower().startswith(("http://", "https://")) or any(c.isspace() for c in text):
        return None
    return text if _host(text) else None


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _at(record: dict[str, Any], path: tuple[str, ...]) -> object:
    value: object = record
    for key in path:
        value = _mapping(value).get(key)
    return value


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
