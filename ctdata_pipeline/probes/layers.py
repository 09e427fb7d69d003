"""FR-8 layer-date probes: `<layer>?f=json` of an ArcGIS REST layer (FeatureServer/MapServer),
read for `editingInfo.dataLastEditDate` (when the data last changed) and
`editingInfo.lastEditDate` (data or schema), both epoch milliseconds.

ArcGIS answers an error with HTTP 200 and `{"error": {"code": ..., "message": ...}}`: that is a
`bad_answer` carrying the message. A layer stating neither date is `ok` with nothing observed
(the dataset then falls back to its `modified`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from ctdata_pipeline.probes.links import (
    BackOff,
    Step,
    StepOutcome,
    follow_redirect,
    retry_after_seconds,
    send,
)

LAYER_READ_LIMIT = 8 * 1024 * 1024  # a layer's JSON is a few hundred KB at most
EDIT_DATES = ("dataLastEditDate", "lastEditDate")


def layer_request_url(layer_url: str) -> str:
    """The layer URL with `f=json` (replacing any `f` it had)."""
    parts = urlsplit(layer_url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "f"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("f", "json")])))


def layer_step(step: Step, session: requests.Session, timeout: float) -> StepOutcome:
    """One request of a layer_date probe (a redirect hop continues it)."""
    step.visited.append(step.url)
    step.sent(f"GET {step.url}")
    answer = send(session, "GET", step.url, timeout, read_limit=LAYER_READ_LIMIT)
    pause = retry_after_seconds(answer.response)
    if pause is not None and not step.retried:
        return BackOff(step, pause, answer.status_code)
    redirected = follow_redirect(step, answer)
    if redirected is not None:
        return redirected
    status, url = answer.status_code, answer.url
    if not 200 <= status < 300:
        return step.result("http_error", status_code=status, final_url=url, detail=f"HTTP {status}")
    if len(answer.body) >= LAYER_READ_LIMIT:
        return step.result(
            "bad_answer", status_code=status, final_url=url, detail="the layer JSON is over 8 MB"
        )
    try:
        document = json.loads(answer.body)
    except ValueError as error:
        return step.result(
            "bad_answer", status_code=status, final_url=url, detail=f"not JSON ({error})"
        )
    if not isinstance(document, dict):
        return step.result(
            "bad_answer", status_code=status, final_url=url, detail="not a JSON object"
        )
    if "error" in document:
        return step.result(
            "bad_answer", status_code=status, final_url=url, detail=arcgis_error(document["error"])
        )
    return step.result("ok", status_code=status, final_url=url, observed=edit_dates(document))


def edit_dates(document: dict[str, Any]) -> tuple[tuple[str, datetime | None], ...]:
    """("dataLastEditDate", when), ("lastEditDate", when): those the layer states."""
    editing = document.get("editingInfo")
    if not isinstance(editing, dict):
        return ()
    found = []
    for name in EDIT_DATES:
        moment = epoch_ms(editing.get(name))
        if moment is not None:
            found.append((name, moment))
    return tuple(found)


def epoch_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def arcgis_error(error: Any) -> str:
    if isinstance(error, dict):
        message = str(error.get("message") or "").strip()
        code = error.get("code")
        details = error.get("details")
        extra = (
            f" ({'; '.join(map(str, details))})" if isinstance(details, list) and details else ""
        )
        return f"ArcGIS error {code}: {message}{extra}"[:300]
    return f"ArcGIS error: {str(error)[:200]}"
