"""A night's steps on a cluster: the Celery executor (dagster-celery, the `cluster` extra) when
CTDATA_EXECUTOR=celery, and the one Celery configuration its workers share with the runs.

The runs (`ctdata nightly`, or the daemon's) only orchestrate: each step becomes a Celery task
that a worker (`celery -A ctdata_pipeline.celery_app worker`) takes from the broker, loading the
code location itself. A worker can die at any time, so a task is acknowledged only once its
step has finished: a killed pool process puts it back on the queue at once, a worker killed
whole lets Redis hand it out again after the visibility timeout, to whichever worker asks."""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg

from ctdata_pipeline.settings import CelerySettings, SettingsError

# dagster-celery's queue (its make_app routes every step there).
CELERY_QUEUE = "dagster"
# How often a worker looks for tasks whose worker was lost, at most.
MAX_RESTORE_INTERVAL_SECONDS = 10


def night_executor(celery: CelerySettings | None) -> dg.ExecutorDefinition:
    """Where the steps of a run execute: one after another in the run's process (the default,
    and what the tests and the demo rely on), or as Celery tasks."""
    if celery is None:
        return dg.in_process_executor
    try:
        from celery.exceptions import DuplicateTaskNameWarning
        from dagster_celery import celery_executor
    except ImportError:
        raise SettingsError(
            "CTDATA_EXECUTOR=celery needs dagster-celery and redis: pip install -e '.[cluster]'"
        ) from None
    # dagster-celery declares its step task again for every step it submits, the same task
    # each time; Celery's warning about it would reach an unattended ctdata's stderr, which
    # holds only the failed portals' lines (README, Guarantees).
    warnings.filterwarnings(
        "ignore", message="Task name 'execute_plan'", category=DuplicateTaskNameWarning
    )
    return celery_executor.configured(
        {
            # The variables, not their values: a broker URL's password stays out of the run's
            # config, its snapshot and the UI.
            "broker": {"env": celery.broker_variable},
            "backend": {"env": celery.backend_variable},
            "config_source": celery_config(celery),
        },
        name="celery",
    )


def celery_config(celery: CelerySettings) -> dict[str, Any]:
    """The Celery settings both sides need alike (the executor publishing the tasks, the workers
    running them), on top of dagster-celery's defaults."""
    timeout = celery.visibility_timeout_seconds
    return {
        # Acknowledged when the step is done, not when it starts: a task whose worker dies is
        # delivered again instead of being lost (and the run waiting on it forever).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One task at a time per worker process: a worker does not hold steps another could run.
        "worker_prefetch_multiplier": 1,
        "broker_transport_options": {
            "visibility_timeout": timeout,
            "unacked_restore_interval": max(1, min(MAX_RESTORE_INTERVAL_SECONDS, int(timeout / 3))),
            "unacked_restore_throttle": 1,
            # dagster-celery's own (reconnecting to the broker)
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        "result_backend_transport_options": {"visibility_timeout": timeout},
    }
