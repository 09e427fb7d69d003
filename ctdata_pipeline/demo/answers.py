"""What the demo's hosts answer to the metrics v2 probes, as of the night a probe asks about
(its X-Ctdata-As-Of header; now without one): SoQL `max()` queries on the Socrata portal, the
Hub site's dataset pages, ArcGIS REST layers' `?f=json`, and the sites the catalogs link to.

Each answer has the shape of the real service's: SoQL rows keyed by the query's aliases with
floating timestamps and null maxima left out, Socrata's error JSON on a 400, a FeatureServer
layer's JSON with `editingInfo` in epoch milliseconds, ArcGIS's `{"error": ...}` with HTTP 200."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ctdata_pipeline.demo.server import Hook, Reply, ServedRequest, json_reply

if TYPE_CHECKING:
    from ctdata_pipeline.demo.generator import HubDemoFeed, LinkPlan, SocrataDemoCatalog

RESOURCE_PATH = re.compile(r"/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json")
MAX_TERM = re.compile(r"\s*max\(`([^`]+)`\)\s+AS\s+([A-Za-z_][A-Za-z0-9_]*)\s*", re.IGNORECASE)
ROBOTS_TXT = "User-agent: *\nDisallow: /internal/\n"
SLOW_SECONDS = 3.0  # longer than the demo's probe timeout (1.5 s)


def _instant(request: ServedRequest) -> datetime:
    return request.instant() or datetime.now(UTC)


def _floating(moment: datetime) -> str:
    """A SoQL calendar_date value: the day, no zone ("2024-05-01T00:00:00.000")."""
    return f"{moment.astimezone(UTC):%Y-%m-%d}T00:00:00.000"


def _soql_error(code: str, message: str, status: int = 400) -> Reply:
    return json_reply({"code": code, "error": True, "message": message, "data": {}}, status=status)


def soql_routes(catalog: SocrataDemoCatalog) -> Hook:
    """The Socrata portal's `/resource/<id>.json?$select=max(`col`) AS max_0, ...`."""

    def answer(request: ServedRequest) -> Reply | None:
        found = RESOURCE_PATH.fullmatch(request.path)
        if found is None:
            return None
        instant = _instant(request)
        asset = catalog.by_id.get(found.group(1))
        if asset is None or not asset.alive(instant) or not asset.columns:
            return _soql_error("not_found", "Not found", status=404)
        select = request.param("$select") or ""
        terms = select.split(",") if select else []
        asked = [MAX_TERM.fullmatch(term) for term in terms]
        if not terms or not all(asked):
            return _soql_error(
                "query.soql.type-mismatch",
                "The demo portal answers only $select=max(`column`) AS alias, ... queries",
            )
        known = catalog.api_fields(asset)
        maxima = catalog.content_maxima(asset, instant)
        row: dict[str, str] = {}
        for term in asked:
            assert term is not None
            column, alias = term.group(1), term.group(2)
            if column not in known:
                return _soql_error(
                    "query.soql.no-such-column",
                    f"No such column: {column}; position: Map(row -> 1, column -> 12, "
                    f'line -> "SELECT max(`{column}`) AS {alias}")',
                )
            if column in maxima:
                value = maxima[column]
                if value is not None:  # Socrata leaves a null out of the row
                    row[alias] = _floating(value)
            else:  # a text or number column: its max is some value, not a date
                row[alias] = "Woodstock"
        return json_reply([row])

    return answer


def hub_routes(feed: HubDemoFeed) -> Hook:
    """The Hub site's dataset pages (`/datasets/<itemId>_<layer>`, `/datasets/<owner>::<slug>`)."""
    pages: set[str] = set()
    for layer in feed.layers:
        pages.add(f"/datasets/{layer.item_id}_{layer.layer}")
        pages.add(f"/datasets/{layer.slug}")

    def answer(request: ServedRequest) -> Reply | None:
        if not request.path.startswith("/datasets/"):
            return None
        if request.path not in pages:
            return _html(404, "<h1>Page not found</h1>")
        return _html(200, "<!doctype html><title>ArcGIS Hub</title><div id='root'></div>")

    return answer


def layer_routes(feed: HubDemoFeed) -> Hook:
    """ArcGIS REST layers: `?f=json` the layer's JSON, otherwise the services directory page."""
    layers = {feed.layer_path(layer): layer for layer in feed.layers}

    def answer(request: ServedRequest) -> Reply | None:
        layer = layers.get(request.path)
        instant = _instant(request)
        if layer is None or not layer.alive(instant):
            body = {"error": {"code": 400, "message": "Invalid URL", "details": ["Invalid URL"]}}
            return json_reply(body) if request.param("f") == "json" else _html(404, "Not found")
        if request.param("f") != "json":
            return _html(200, f"<html><title>Layer: {layer.service} ({layer.layer})</title></html>")
        if layer.edits == "error":
            return json_reply(
                {
                    "error": {
                        "code": 499,
                        "message": "Token Required",
                        "messageCode": "GWM_0003",
                        "details": ["Token Required"],
                    }
                }
            )
        data = layer.data_edit(instant)
        schema = max([data, *(when for when in layer.metadata_edits if when <= instant)])
        body: dict[str, object] = {
            "currentVersion": 11.3,
            "id": layer.layer,
            "name": layer.service,
            "type": "Feature Layer",
            "geometryType": "esriGeometryPolygon",
            "capabilities": "Query",
        }
        if layer.edits == "both":
            body["editingInfo"] = {
                "lastEditDate": _epoch_ms(schema),
                "schemaLastEditDate": _epoch_ms(schema),
                "dataLastEditDate": _epoch_ms(data),
            }
        elif layer.edits == "last_only":
            body["editingInfo"] = {"lastEditDate": _epoch_ms(data)}
        return json_reply(body)

    return answer


def link_routes(plans: dict[str, LinkPlan], *, robots: bool = False) -> Hook:
    """A linked site: each path (with its query) answers by its plan; others 404. `robots`:
    the site's robots.txt disallows /internal/ (the others have none: 404, everything allowed)."""

    def answer(request: ServedRequest) -> Reply:
        if request.path == "/robots.txt":
            if robots:
                return Reply(200, ROBOTS_TXT.encode(), {"Content-Type": "text/plain"})
            return _html(404, "Not found")
        query = "&".join(f"{key}={value}" for key, value in request.params)
        plan = plans.get(request.path + (f"?{query}" if query else ""))
        if plan is None:
            return _html(404, "Not found")
        return _link_answer(plan, request)

    return answer


def _link_answer(plan: LinkPlan, request: ServedRequest) -> Reply:
    instant = _instant(request)
    ok = Reply(200, b"id,value\n1,2\n", {"Content-Type": "text/csv"})
    if plan.kind == "gone":
        return _html(404, "Not found")
    if plan.kind in ("moved", "loop"):
        status = 301 if plan.kind == "moved" else 302
        return Reply(status, b"", {"Location": plan.to, "Content-Type": "text/html"})
    if plan.kind == "no_head" and request.method == "HEAD":
        return _html(405, "Method Not Allowed")
    if plan.kind == "slow":
        return Reply(200, b"late", {"Content-Type": "text/plain"}, delay_seconds=SLOW_SECONDS)
    if plan.kind == "gone_from" and plan.since is not None and instant >= plan.since:
        return _html(410, "Gone")
    if plan.kind == "failing_from" and plan.since is not None and instant >= plan.since:
        return _html(500, "Internal Server Error")
    return ok


def _html(status: int, text: str) -> Reply:
    return Reply(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
