"""Runs as ctdata reports them: why a run failed, in one line; and the runs a killed ctdata
process left behind, marked failed so the UI does not show them running forever."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

import dagster as dg

from ctdata_pipeline.processes import process_alive

# On every run ctdata executes in-process: "<host>:<pid>" of the process executing it.
RUNNER_TAG = "ctdata/runner"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


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


def progress_line(
    done: int, portals: int, failed: int, elapsed_seconds: float, portal: str, ok: bool
) -> str:
    """The line `ctdata nightly` prints as each portal's night finishes: how many of how many,
    how many failed, the time since the night began (`benchmarks --national` reads it)."""
    minutes, seconds = divmod(int(elapsed_seconds), 60)
    return (
        f"progress: {done}/{portals} portals done, {failed} failed, "
        f"{minutes}:{seconds:02d} elapsed ({portal}: {'ok' if ok else 'FAILED'})"
    )


def runner_tags() -> dict[str, str]:
    return {RUNNER_TAG: f"{socket.gethostname()}:{os.getpid()}"}


def fail_abandoned_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs whose ctdata process on this machine is gone (killed,
    out of memory, a restart). Their database writes were never committed; only the run
    record still says "started". Returns their run ids."""
    host = socket.gethostname()
    abandoned = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        runner_host, _, pid = run.tags.get(RUNNER_TAG, "").rpartition(":")
        if runner_host != host or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            message=(
                f"The ctdata process that executed this run (pid {pid}) ended before the run "
                "did (killed or stopped); nothing it was writing was committed, and its "
                "concurrency slots are freed."
            ),
        )
        # Its steps' claims on the `duckdb` pool would otherwise hold the pool's one slot for
        # ever, and every later run would wait on it.
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        abandoned.append(run.run_id)
    return abandoned
