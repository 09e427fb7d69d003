"""FR-5 content-date probes: the latest value of each date column of a Socrata dataset, asked
through sodapy's `get` as one SoQL query per dataset: `$select=max(`col`) AS max_0, ...`.

Socrata answers a floating timestamp ("2024-05-01T00:00:00.000", no zone) for calendar_date
columns; it is read as UTC (the portal states no zone, and a day's difference is far below the
periods FR-5 compares with). Timestamps with Z or an offset keep their zone. A column whose
maximum is null (all rows empty, or no rows: Socrata leaves null fields out of the row) is
(column, None). Dates in the future are kept as observed: the metric decides what they mean."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from sodapy import Socrata

from ctdata_pipeline.probes.links import BackOff, Step, StepOutcome, retry_after_seconds


def select_clause(columns: tuple[str, ...]) -> str:
    """`max(`a`) AS max_0, max(`b`) AS max_1`: aliases, so any field name reads back."""
    return ", ".join(f"max(`{column}`) AS max_{index}" for index, column in enumerate(columns))


def content_step(step: Step, client: Socrata) -> StepOutcome:
    """The one request of a content_date probe."""
    item = step.item
    unquotable = [column for column in item.columns if "`" in column]
    if unquotable:
        return step.result(
            "error", detail=f"column name {unquotable[0]!r} cannot be quoted in SoQL"
        )
    select = select_clause(item.columns)
    step.sent(f"GET {item.url}?$select={select}")
    try:
        rows = client.get(item.target, select=select)
    except requests.exceptions.HTTPError as error:
        response = error.response
        if response is None:
            raise
        pause = retry_after_seconds(response)
        if pause is not None and not step.retried:
            return BackOff(step, pause, response.status_code)
        return step.result(
            "http_error",
            status_code=response.status_code,
            final_url=response.url,
            detail=f"HTTP {response.status_code}: {socrata_message(response)}",
        )
    except requests.exceptions.JSONDecodeError as error:
        return step.result("bad_answer", status_code=200, detail=f"not valid JSON ({error})")
    except requests.exceptions.RequestException:
        raise  # no answer: the engine names the error class
    except Exception as error:  # sodapy raises bare Exception for a content type it does not read
        return step.result("bad_answer", status_code=200, detail=str(error)[:200])
    return read_maxima(step, rows)


def read_maxima(step: Step, rows: Any) -> StepOutcome:
    """The (column, max) pairs of a SoQL answer, in the order the columns were asked."""
    columns = step.item.columns
    if isinstance(rows, requests.Response):
        return step.result("bad_answer", status_code=rows.status_code, detail="the body was empty")
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        return step.result("bad_answer", status_code=200, detail="the answer is not a list of rows")
    row: dict[str, Any] = rows[0] if rows else {}
    observed: list[tuple[str, datetime | None]] = []
    problems: list[str] = []
    for index, column in enumerate(columns):
        value = row.get(f"max_{index}")
        try:
            observed.append((column, parse_socrata_time(value)))
        except ValueError:
            observed.append((column, None))
            problems.append(f"max of {column!r} is not a date: {str(value)[:40]!r}")
    return step.result(
        "ok",
        status_code=200,
        final_url=step.item.url,
        observed=tuple(observed),
        detail="; ".join(problems),
    )


def parse_socrata_time(value: Any) -> datetime | None:
    """A SoQL timestamp as an aware UTC datetime; a floating (zone-less) one is read as UTC."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def socrata_message(response: requests.Response) -> str:
    """What Socrata said went wrong: the `message` of its error JSON, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"][:300]
    return (response.text or response.reason or "").strip().replace("\n", " ")[:300]
