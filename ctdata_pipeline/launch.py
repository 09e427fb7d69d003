"""How ctdata's commands run the pipeline: as runs of the code location's jobs, made in the
Dagster instance the way the schedule makes them, executed, and read back when done.

A run carries the origin of its job in the code location `workspace.yaml` names, so the UI lists
it on the job's page, in the Overview timeline and under each asset's partitions, exactly like a
scheduled run. ctdata executes its runs itself (in its own process, or, when the instance's
`concurrency: runs: max_concurrent_runs` is above 1, that many at once in worker processes
forked from it) rather than through the run launcher, which starts a new Python process per
run: that process spends about 4 s importing the code location before its first step, more
than a small portal's whole night (README, *Dagster*). With CTDATA_EXECUTOR=celery a run only
orchestrates: its steps go to the Celery workers, which load the job from the code location
module themselves (README, *Production*)."""

from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.execution.api import create_execution_plan, execute_run
from dagster._core.execution.execute_in_process import merge_run_tags
from dagster._core.instance.ref import InstanceRef
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from ctdata_pipeline.runs import failure_reason, runner_tags
from ctdata_pipeline.settings import CELERY_EXECUTOR
from ctdata_pipeline.warehouse import DUCKDB_POOL

# workspace.yaml's location: the name under which the UI shows the code location's jobs.
LOCATION_NAME = "ctdata_pipeline"
CODE_LOCATION_MODULE = "ctdata_pipeline.definitions"
# Without a limit in the instance, one run at a time: on one DuckDB file the runs' writing steps
# take turns in the `duckdb` pool, and a step waiting for the pool checks again only after a
# second or more, so side by side was slower for small portals (README, *Dagster*).
DEFAULT_CONCURRENT_RUNS = 1
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class LaunchRequest:
    """One run to make: a job for one partition (a (night, portal) or a night)."""

    job_name: str
    partition_key: str
    night: date
    label: str  # the portal, or "report": what the command's output line names
    run_config: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOutcome:
    request: LaunchRequest
    run_id: str
    success: bool
    reason: str


def job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin the webserver and the daemon give a run of `job_name` from workspace.yaml."""
    code_location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=CODE_LOCATION_MODULE,
            working_directory=str(Path.cwd()),
        ),
        location_name=LOCATION_NAME,
    )
    return RemoteRepositoryOrigin(code_location, SINGLETON_REPOSITORY_NAME).get_job_origin(job_name)


def concurrent_runs(instance: dg.DagsterInstance) -> int:
    """The instance's own limit on runs at once (`concurrency: runs: max_concurrent_runs`)."""
    limit = instance.get_settings("concurrency").get("runs", {}).get("max_concurrent_runs", -1)
    return limit if limit > 0 else DEFAULT_CONCURRENT_RUNS


# What the forked run workers execute: set before they are forked, inherited, never pickled.
_definitions: dg.Definitions | None = None


def launch_waves(
    defs: dg.Definitions,
    waves: Iterable[Sequence[LaunchRequest]],
    instance: dg.DagsterInstance,
    on_done: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run each wave's requests side by side, waiting for a wave before the next (a night's
    portals are one wave; the night after counts its changes against it).

    Above one run at a time, each run executes in a worker process forked from this one, which
    has already imported the code location (a fork costs milliseconds; a fresh interpreter
    seconds). Processes, not
    threads: Dagster configures Python's logging at the start of every run, which deadlocks
    against a run logging in another thread, and each worker has a core of its own.

    `on_done` hears of each run as it finishes (a command's progress line); the outcomes are
    returned in the order of the requests."""
    tell = on_done or (lambda _outcome: None)
    global _definitions
    limit = concurrent_runs(instance)
    if limit == 1:  # one run at a time: in this process, nothing to fork
        outcomes: list[RunOutcome] = []
        for wave in waves:
            for request in wave:
                outcomes.append(launch_one(defs, request, instance, runner_tags()))
                tell(outcomes[-1])
        return outcomes
    _definitions = defs
    initialize_pool(instance)
    outcomes = []
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(limit, mp_context=context, initializer=_end_with_parent) as workers:
        for wave in waves:
            # future -> its request's place in the wave (a request, holding its run config,
            # is not hashable)
            futures = {
                workers.submit(_run_in_worker, request, instance.get_ref()): place
                for place, request in enumerate(wave)
            }
            finished: dict[int, RunOutcome] = {}
            for future in as_completed(futures):
                place = futures[future]
                finished[place] = _outcome(wave[place], future)
                tell(finished[place])
            outcomes.extend(finished[place] for place in range(len(wave)))
    return outcomes


def initialize_pool(instance: dg.DagsterInstance) -> None:
    """Give the `duckdb` pool its limit from the instance's `default_limit` here, alone, before
    runs start side by side. Each run's first claim on a pool the instance has never seen would
    do it, and on PostgreSQL two runs doing it at once make one fail (the loser's INSERT aborts
    its transaction, then its UPDATE fails: dagster-io/dagster#33552), with no step failed."""
    storage = instance.event_log_storage
    if (
        storage.supports_global_concurrency_limits
        and instance.global_op_concurrency_default_limit is not None
        and DUCKDB_POOL not in storage.get_concurrency_keys()
    ):
        storage.initialize_concurrency_limit_to_default(DUCKDB_POOL)


def _end_with_parent() -> None:
    """A worker whose ctdata is killed gets SIGTERM too (Linux), instead of waiting forever."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _outcome(request: LaunchRequest, future: Future[RunOutcome]) -> RunOutcome:
    try:
        return future.result()
    except BrokenProcessPool:  # the worker was killed (out of memory, a signal)
        return RunOutcome(request, "", False, f"the process running {request.label} was killed")


def _run_in_worker(request: LaunchRequest, instance_ref: InstanceRef) -> RunOutcome:
    assert _definitions is not None, "launch_waves sets the definitions before forking"
    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return launch_one(_definitions, request, instance, runner_tags())


def executable_job(job_def: dg.JobDefinition) -> InMemoryJob | ReconstructableJob:
    """The job as this process executes it: the definition it already has, unless its steps run
    in other processes (the Celery executor), which must load the job themselves: then a
    pointer to it in the code location module, which each worker imports from its own
    environment (the same variables as this process's)."""
    if job_def.executor_def.name != CELERY_EXECUTOR:
        return InMemoryJob(job_def)
    repository = ReconstructableRepository.for_module(
        CODE_LOCATION_MODULE, "defs", working_directory=str(Path.cwd())
    )
    return repository.get_reconstructable_job(job_def.name)


def launch_one(
    defs: dg.Definitions,
    request: LaunchRequest,
    instance: dg.DagsterInstance,
    tags: Mapping[str, str],
) -> RunOutcome:
    """Make the run in the instance under its job's origin, execute it here, read back why it
    failed from the run's own events."""
    job_def = defs.resolve_job_def(request.job_name)
    run_tags = merge_run_tags(
        job_def=job_def,
        partition_key=request.partition_key,
        tags=tags,
        asset_selection=None,
        instance=instance,
        run_config=request.run_config,
    )
    job = executable_job(job_def)
    plan = create_execution_plan(job, run_config=request.run_config, tags=run_tags)
    run = instance.create_run_for_job(
        job_def=job_def,
        execution_plan=plan,
        run_config=request.run_config,
        tags=run_tags,
        status=dg.DagsterRunStatus.NOT_STARTED,
        remote_job_origin=job_origin(request.job_name),
        job_code_origin=job.get_python_origin() if isinstance(job, ReconstructableJob) else None,
    )
    result = execute_run(job, run, instance)
    reason = ""
    if not result.success:
        failures = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        reason = failure_reason(record.dagster_event for record in failures) or (
            f"run {run.run_id} failed; see it in the Dagster UI"
        )
    return RunOutcome(request, run.run_id, result.success, reason)
