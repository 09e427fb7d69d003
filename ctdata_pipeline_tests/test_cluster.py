"""The night on a cluster (README, *Production*: On Celery): `ctdata nightly` with
CTDATA_EXECUTOR=celery sends every step to two real Celery workers through a real Redis
(Debian's redis-server), the instance on a real PostgreSQL. The board tables come out as the
single-process night's; a worker killed with SIGKILL in the middle of a harvest leaves the step
to the other worker, and the night succeeds with nothing half-written."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import create_execution_plan
from dagster._serdes import serialize_value

from ctdata_pipeline.cluster import celery_config, night_executor
from ctdata_pipeline.code_location import definitions_from_env
from ctdata_pipeline.demo.server import ServedRequest
from ctdata_pipeline.jobs import NIGHTLY_JOB
from ctdata_pipeline.launch import initialize_pool
from ctdata_pipeline.settings import Settings
from ctdata_pipeline.warehouse import DUCKDB_POOL
from ctdata_pipeline_tests.services import Postgres, Redis
from ctdata_pipeline_tests.support import (
    CTDATA,
    ctdata_environment,
    database_contents,
    files_under,
    good_feed,
    portal_entry,
    query,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)
from ctdata_pipeline_tests.test_production import production_dagster_yaml

CELERY = CTDATA.with_name("celery")
WORKERS = ("a", "b")
WORKER_START_SECONDS = 120
HARVEST_STEP = "harvested_catalog"
# dagster-celery's engine event as a worker starts a step, naming the worker.
WORKER_EVENT = "in celery worker"
WORKER_METADATA = "Celery worker"
# Short enough that a task of the killed worker is handed out again soon, long enough that no
# healthy step of this test outlasts it (a task past it would be delivered twice).
KILL_TEST_VISIBILITY_SECONDS = 40
PASSWORD = "s3cret-broker-password"


@pytest.fixture(autouse=True)
def no_leftover_cluster_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CTDATA_EXECUTOR", "CTDATA_CELERY_BROKER", "CTDATA_CELERY_BACKEND"):
        monkeypatch.delenv(name, raising=False)


def cluster_environment(
    folder: Path, portals: Path, postgres: Postgres, redis: Redis, **extra: str
) -> dict[str, str]:
    """What the runs and the workers alike are started with: the same portals, warehouse and
    instance, and the broker."""
    home = folder / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(production_dagster_yaml(), encoding="utf-8")
    return ctdata_environment(
        DAGSTER_HOME=str(home),
        CTDATA_PORTALS=str(portals),
        CTDATA_DB=str(folder / "data" / "ctdata.duckdb"),
        CTDATA_REPORT_DIR=str(folder / "reports"),
        CTDATA_HARVEST_RETRIES="0",
        CTDATA_EXECUTOR="celery",
        CTDATA_CELERY_BROKER=redis.url,
        CTDATA_CELERY_BACKEND=redis.url,
        **postgres.environment,
        **extra,
    )


@contextmanager
def celery_workers(
    environment: Mapping[str, str], folder: Path
) -> Iterator[dict[str, subprocess.Popen]]:
    """Two Celery workers (`celery -A ctdata_pipeline.celery_app worker`, one pool process
    each), each in a session of its own, by hostname; stopped (or found killed) afterwards."""
    workers: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    try:
        for name in WORKERS:
            logs[name] = folder / f"worker-{name}.log"
            with logs[name].open("wb") as log:
                workers[f"{name}@ctdata"] = subprocess.Popen(
                    [
                        str(CELERY),
                        "-A",
                        "ctdata_pipeline.celery_app",
                        "worker",
                        "-Q",
                        "dagster",
                        "-c",
                        "1",
                        "-n",
                        f"{name}@ctdata",
                        "--loglevel",
                        "INFO",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    cwd=folder,
                    env=dict(environment),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        deadline = time.monotonic() + WORKER_START_SECONDS
        for (hostname, worker), log in zip(workers.items(), logs.values(), strict=True):
            while f"{hostname} ready." not in log.read_text(errors="replace"):
                assert worker.poll() is None, f"{hostname} exited:\n{log.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"{hostname} not ready:\n{log.read_text()}"
                time.sleep(0.2)
        yield workers
    finally:
        for worker in workers.values():
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers.values():
            with suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=30)
            # The pool processes too: nothing of this test outlives it.
            with suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()


def what_failed(environment: Mapping[str, str]) -> str:
    """The failed runs' errors, as their events record them (for an assertion's message)."""
    lines = []
    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                error = getattr(event.event_specific_data, "error", None) if event else None
                if error is not None or record.level >= 40:
                    lines.append(f"{run.job_name} {record.step_key}: {record.message}")
                    lines.append(error.to_string() if error else "")
    return "\n".join(lines)


def step_workers(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str]]:
    """(step, worker hostname) for each time a worker started a step of the run, in order."""
    return [
        (record.step_key, record.dagster_event.engine_event_data.metadata[WORKER_METADATA].text)
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if WORKER_EVENT in record.message
    ]


def duckdb_steps() -> set[str]:
    """The nightly job's steps in the `duckdb` pool: the ones that write the DuckDB file (all
    but the harvest, which only fetches and stages)."""
    job = definitions_from_env().resolve_job_def(NIGHTLY_JOB)
    plan = create_execution_plan(InMemoryJob(job))
    return {step.key for step in plan.get_all_steps_in_topo_order() if step.pool == DUCKDB_POOL}


def pool_intervals(
    instance: dg.DagsterInstance, run_id: str, pooled: set[str]
) -> list[tuple[float, float, str]]:
    """(start, end, step) of each step of the run that writes the DuckDB file."""
    started: dict[str, float] = {}
    intervals = []
    for record in instance.all_logs(
        run_id,
        of_type={
            dg.DagsterEventType.STEP_START,
            dg.DagsterEventType.STEP_SUCCESS,
            dg.DagsterEventType.STEP_FAILURE,
        },
    ):
        if record.step_key not in pooled:
            continue
        if record.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[record.step_key] = record.timestamp
        else:
            intervals.append((started.pop(record.step_key), record.timestamp, record.step_key))
    return intervals


def test_a_night_on_two_celery_workers_equals_the_single_process_night(
    postgres, redis_server, tmp_path, monkeypatch
):
    for name, value in postgres.environment.items():  # this process reads the instance too
        monkeypatch.setenv(name, value)
    catalogs = {
        "ct": ("socrata", socrata_catalog(40)),
        "towns": ("socrata", socrata_catalog(25)),
        "hub": ("dcat", good_feed()),
        "state": ("dcat", good_feed()),
    }
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(serve(kind, payload))
            for name, (kind, payload) in catalogs.items()
        }
        portals = write_portal_file(
            # As of the night (02:00 New York), so that ages are the same in both nights
            tmp_path,
            [portal_entry(name, server, as_of=True) for name, server in servers.items()],
        )
        alone = tmp_path / "single"
        alone.mkdir()
        single_started = time.monotonic()
        single = run_ctdata(
            alone,
            "nightly",
            CTDATA_PORTALS=str(portals),
            CTDATA_DB=str(alone / "data" / "ctdata.duckdb"),
            CTDATA_REPORT_DIR=str(alone / "reports"),
            CTDATA_HARVEST_RETRIES="0",
        )
        assert single.returncode == 0, single.stderr
        single_seconds = time.monotonic() - single_started
        cluster = tmp_path / "cluster"
        cluster.mkdir()
        environment = cluster_environment(cluster, portals, postgres, redis_server)
        with celery_workers(environment, cluster) as workers:
            started = time.monotonic()
            night = subprocess.run(
                [str(CTDATA), "nightly"],
                cwd=cluster,
                env=environment,
                capture_output=True,
                text=True,
                timeout=900,
                stdin=subprocess.DEVNULL,
            )
            seconds = time.monotonic() - started
    assert night.returncode == 0, night.stdout + night.stderr + what_failed(environment)
    # Nothing more on stderr than alone (an unattended night's stderr is its failures).
    assert night.stderr == single.stderr
    print(
        f"\nthe night of 4 portals took {seconds:.1f} s on 2 Celery workers, "
        f"{single_seconds:.1f} s in one process"
    )

    single_tables = database_contents(alone / "data" / "ctdata.duckdb")
    cluster_tables = database_contents(cluster / "data" / "ctdata.duckdb")
    assert single_tables.keys() == cluster_tables.keys()
    # What the Board reads: the metrics and the board tables. (The catalog's surrogate keys,
    # numbered in the order the portals' writes took turns, and the harvests' timings differ
    # and mean nothing.)
    compared = [table for table in single_tables if table.startswith(("board.", "metrics."))]
    assert len(compared) > 5
    for table in compared:
        assert cluster_tables[table] == single_tables[table], table
    snapshots = "SELECT portal, kind, assets_total FROM catalog.snapshots ORDER BY ALL"
    assert query(cluster / "data" / "ctdata.duckdb", snapshots) == [
        ("ct", "socrata", 40),
        ("hub", "dcat", 40),
        ("state", "dcat", 40),
        ("towns", "socrata", 25),
    ]
    assert query(alone / "data" / "ctdata.duckdb", snapshots) == query(
        cluster / "data" / "ctdata.duckdb", snapshots
    )

    with dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance:
        # The broker's password (in its URL) reached the workers and the runs' processes only.
        for run in instance.get_runs():
            recorded = serialize_value(run) + "".join(
                serialize_value(record) for record in instance.all_logs(run.run_id)
            )
            assert redis_server.password not in recorded
        assert redis_server.password not in night.stdout + night.stderr
        for name, content in files_under(cluster).items():
            assert redis_server.password.encode() not in content, name
        nightly = list(instance.get_runs(filters=dg.RunsFilter(job_name=NIGHTLY_JOB)))
        assert len(nightly) == 4
        assert {run.status for run in nightly} == {dg.DagsterRunStatus.SUCCESS}
        placed = [placement for run in nightly for placement in step_workers(instance, run.run_id)]
        pooled = duckdb_steps()
        intervals = sorted(
            interval for run in nightly for interval in pool_intervals(instance, run.run_id, pooled)
        )
    # Every step went to a worker, and both workers had some.
    assert {hostname for _, hostname in placed} == set(workers)
    assert sorted(step for step, _ in placed).count(HARVEST_STEP) == 4
    # The DuckDB writers of the four runs, on two workers, one at a time.
    assert HARVEST_STEP not in pooled
    assert len(pooled) >= 3
    assert len(intervals) == 4 * len(pooled)
    for (_, end, step), (start, _, after) in itertools.pairwise(intervals):
        assert start >= end, f"{after} started before {step} had finished"


class StallFirstHarvest:
    """A portal whose first catalog request hangs (until released) and whose later ones are
    answered: the harvest a worker is killed in the middle of, then its retry."""

    def __init__(self) -> None:
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.requests = 0
        self._lock = threading.Lock()

    def __call__(self, request: ServedRequest) -> None:
        with self._lock:
            self.requests += 1
            first = self.requests == 1
        if first:
            self.stalled.set()
            self.release.wait(timeout=600)
        return None


def test_a_worker_killed_mid_harvest_leaves_the_step_to_the_other_worker(
    postgres, redis_server, tmp_path, monkeypatch
):
    for name, value in postgres.environment.items():
        monkeypatch.setenv(name, value)
    slow = StallFirstHarvest()
    with serve("socrata", socrata_catalog(30), hook=slow) as server:
        portals = write_portal_file(tmp_path, [portal_entry("ct", server, timeout_seconds=600)])
        environment = cluster_environment(
            tmp_path,
            portals,
            postgres,
            redis_server,
            CTDATA_CELERY_VISIBILITY_TIMEOUT=str(KILL_TEST_VISIBILITY_SECONDS),
        )
        with (
            celery_workers(environment, tmp_path) as workers,
            dg.DagsterInstance.from_config(environment["DAGSTER_HOME"]) as instance,
        ):
            night = subprocess.Popen(
                [str(CTDATA), "nightly"],
                cwd=tmp_path,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            try:
                assert slow.stalled.wait(timeout=300), "the harvest never reached the portal"
                [run] = instance.get_runs(filters=dg.RunsFilter(job_name=NIGHTLY_JOB))
                [(step, harvester)] = step_workers(instance, run.run_id)
                assert step == HARVEST_STEP
                killed = workers[harvester]
                os.killpg(killed.pid, signal.SIGKILL)  # the worker and its pool process
                killed.wait(timeout=30)
                killed_at = time.monotonic()
                slow.release.set()
                output, errors = night.communicate(timeout=600)
                recovered = time.monotonic() - killed_at
            finally:
                slow.release.set()
                if night.poll() is None:
                    night.kill()
                    night.wait()
            run = instance.get_run_by_id(run.run_id)
            placed = step_workers(instance, run.run_id)
            harvest_attempts = instance.all_logs(
                run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
            )
    print(f"\nthe night finished {recovered:.1f} s after the harvesting worker was killed")

    assert night.returncode == 0, output + errors
    assert run.status == dg.DagsterRunStatus.SUCCESS
    [other] = set(workers) - {harvester}
    harvests = [hostname for step, hostname in placed if step == HARVEST_STEP]
    assert harvests == [harvester, other]
    # Every other step ran once: none outlasted the visibility timeout and ran twice.
    others = [step for step, _ in placed if step != HARVEST_STEP]
    assert others and len(others) == len(set(others))
    assert slow.requests >= 2
    assert [r.step_key for r in harvest_attempts].count(HARVEST_STEP) == 1
    # Nothing half-written: one whole snapshot, no partial file of the killed harvest, and the
    # file passes its own check.
    db = tmp_path / "data" / "ctdata.duckdb"
    assert query(db, "SELECT portal, assets_total FROM catalog.snapshots") == [("ct", 30)]
    assert not list((tmp_path / "data" / "staging").rglob("*.partial-*"))
    check = run_ctdata(tmp_path, "check", CTDATA_DB=str(db))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no problems found" in check.stdout


def test_without_ctdata_executor_the_steps_stay_in_the_runs_process(monkeypatch):
    settings = Settings.from_env()
    assert settings.celery is None
    assert night_executor(settings.celery) is dg.in_process_executor
    monkeypatch.setenv("CTDATA_EXECUTOR", "celery")
    monkeypatch.setenv("CTDATA_CELERY_BROKER", f"redis://:{PASSWORD}@127.0.0.1:6379/0")
    celery = Settings.from_env().celery
    # One Redis for both unless told; the executor's config names the variable, never the URL.
    assert (celery.broker_variable, celery.backend_variable) == ("CTDATA_CELERY_BROKER",) * 2
    assert celery.visibility_timeout_seconds == 3600
    executor = night_executor(celery)
    assert executor.name == "celery"
    assert PASSWORD not in repr(celery) + repr(celery_config(celery))


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"CTDATA_EXECUTOR": "kubernetes"},
            "CTDATA_EXECUTOR='kubernetes' must be in_process (the default) or celery",
        ),
        (
            {"CTDATA_EXECUTOR": "celery"},
            "CTDATA_CELERY_BROKER must be set when CTDATA_EXECUTOR=celery: the broker's URL, "
            "e.g. redis://127.0.0.1:6379/0",
        ),
        (
            {"CTDATA_EXECUTOR": "celery", "CTDATA_CELERY_BROKER": f"http://:{PASSWORD}@host"},
            "CTDATA_CELERY_BROKER must be a broker URL such as redis://127.0.0.1:6379/0 (it has "
            "scheme 'http'; one of redis, rediss, sentinel, amqp, amqps, pyamqp is needed)",
        ),
        (
            {
                "CTDATA_EXECUTOR": "celery",
                "CTDATA_CELERY_BROKER": "redis://127.0.0.1:6379/0",
                "CTDATA_CELERY_BACKEND": f"{PASSWORD}@host:6379",
            },
            "CTDATA_CELERY_BACKEND must be a broker URL such as redis://127.0.0.1:6379/0 (it has "
            "no scheme; one of redis, rediss, sentinel, amqp, amqps, pyamqp is needed)",
        ),
        (
            {
                "CTDATA_EXECUTOR": "celery",
                "CTDATA_CELERY_BROKER": "redis://127.0.0.1:6379/0",
                "CTDATA_CELERY_VISIBILITY_TIMEOUT": "0",
            },
            "CTDATA_CELERY_VISIBILITY_TIMEOUT must be at least 1 second (longer than any step)",
        ),
    ],
)
def test_a_bad_cluster_variable_is_one_line_naming_it_and_never_its_password(
    tmp_path, variables, message
):
    result = run_ctdata(tmp_path, "nightly", **variables)
    assert result.returncode == 2
    assert result.stderr == f"ctdata nightly: {message}\n"
    assert PASSWORD not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


def test_the_duckdb_pool_gets_its_limit_before_runs_start_side_by_side(
    postgres, tmp_path, monkeypatch
):
    """On a fresh PostgreSQL instance, runs each giving the pool its default limit at once made
    one of them fail (dagster-io/dagster#33552); launch_waves does it first, alone, once."""
    for name, value in postgres.environment.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text(production_dagster_yaml(), encoding="utf-8")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        assert DUCKDB_POOL not in storage.get_concurrency_keys()
        initialize_pool(instance)
        # Again, as the next night's ctdata does: nothing to do (Dagster's INSERT of a pool
        # that has its limit fails on PostgreSQL, and would fail the command).
        initialize_pool(instance)
        assert storage.get_concurrency_info(DUCKDB_POOL).slot_count == 1
