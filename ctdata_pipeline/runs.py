"""What a failed run says, in one line: the first failed step's own words."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg


def failure_reason(events: Iterable[dg.DagsterEvent | None]) -> str | None:
    """The first step failure's message: a dg.Failure's description (our refusals and checks
    say why in one line), else the root cause of the exception, with the step's name."""
    for event in events:
        if event is None or event.event_type != dg.DagsterEventType.STEP_FAILURE:
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return one_line(data.user_failure_data.description)
        if data.error is not None:
            error = data.error
            while error.cause is not None:  # Dagster wraps the step's own exception
                error = error.cause
            return one_line(f"{event.step_key} failed: {error.message}")
    return None


def one_line(text: str) -> str:
    return " ".join(text.split())
