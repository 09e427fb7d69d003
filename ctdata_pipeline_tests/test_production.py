"""The README's *Production* section, run as written: a real PostgreSQL (Debian's) holds the Dagster
instance (dagster-postgres), `dagster-daemon` runs the workspace, and the nightly schedule's
tick launches the night's runs, which the report sensor follows with the report."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.scheduler.instigation import InstigatorType

from ctdata_pipeline.jobs import NIGHTLY_JOB, NIGHTLY_SCHEDULE, REPORT_SENSOR
from ctdata_pipeline.partitions import NEW_YORK
from ctdata_pipeline_tests.support import (
    CTDATA,
    REPO_ROOT,
    ctdata_environment,
    dcat_dataset,
    portal_entry,
    query,
    serve,
    socrata_catalog,
    write_portal_file,
)

# The daemon has to have looked at the schedule once before its tick, or the tick is not due
# (a schedule starts counting from the daemon's first look): time for it to start and load.
DAEMON_START_MARGIN = timedelta(seconds=30)
# From the tick: two small nights, then up to one interval of the report sensor (60 s), then
# the report. Each step is a process of its own (Dagster's multiprocess executor) and the
# `duckdb` pool makes the two runs take turns, so on a loaded 2-core machine this took up to
# 10 minutes; a healthy run ends as soon as the report is done.
AFTER_TICK_DEADLINE = timedelta(seconds=900)


def readme_production() -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]


def production_dagster_yaml() -> str:
    return re.search(r"```yaml\n(.*?)```", readme_production(), re.S).group(1)


def production_daemon_command() -> list[str]:
    """The daemon service's ExecStart, with this checkout's virtual environment."""
    exec_start = re.search(r"^ExecStart=(\S*dagster-daemon .*)$", readme_production(), re.M)
    program, *arguments = shlex.split(exec_start.group(1))
    return [str(CTDATA.with_name(Path(program).name)), *arguments]


def next_tick(now: datetime) -> datetime:
    """The first whole minute (New York) the daemon can be ready for. Not 23:59: a live
    portal's run must start on the night it was scheduled for."""
    tick = (now + DAEMON_START_MARGIN).replace(second=0, microsecond=0) + timedelta(minutes=1)
    if (tick.hour, tick.minute) == (23, 59):
        tick += timedelta(minutes=1)
    return tick


@contextmanager
def daemon_running(environment: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """The README's daemon command from the repository root; stopped afterwards with the code
    server and run processes it started (a session of its own, signalled by the daemon's
    pid)."""
    with log.open("wb") as output:
        daemon = subprocess.Popen(
            production_daemon_command(),
            cwd=REPO_ROOT,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield daemon
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        finally:
            # A code server waits for its runs to finish; nothing of this test may outlive it.
            with suppress(ProcessLookupError):
                os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def schedule_states(instance: dg.DagsterInstance) -> list[str]:
    return [
        state.instigator_name
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
    ]


def runs_of(instance: dg.DagsterInstance, job_name: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job_name)))


def report_runs(instance: dg.DagsterInstance, night: date) -> list[dg.DagsterRun]:
    """Runs that materialize the night's report."""
    return [
        run
        for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": str(night)}))
        if dg.AssetKey("board_report") in (run.asset_selection or ())
    ]


def test_the_daemon_runs_the_night_on_postgres_and_the_report_follows(
    postgres, tmp_path, monkeypatch
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(production_dagster_yaml(), encoding="utf-8")
    for name, value in postgres.environment.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    now = datetime.now(NEW_YORK)
    tick = next_tick(now)
    night = tick.date()
    log = tmp_path / "daemon.log"
    feed = {"dataset": [dcat_dataset(f"https://data.example/d/{n}") for n in range(10)]}
    with serve("socrata", socrata_catalog(30)) as socrata, serve("dcat", feed) as hub:
        portals = write_portal_file(
            tmp_path, [portal_entry("ct", socrata), portal_entry("hub", hub)]
        )
        environment = ctdata_environment(
            DAGSTER_HOME=str(home),
            CTDATA_PORTALS=str(portals),
            CTDATA_DB=str(tmp_path / "data" / "ctdata.duckdb"),
            CTDATA_REPORT_DIR=str(tmp_path / "reports"),
            CTDATA_NIGHTLY_AT=f"{tick:%H:%M}",
            CTDATA_HARVEST_RETRIES="0",
            **postgres.environment,
        )
        with (
            daemon_running(environment, log) as daemon,
            dg.DagsterInstance.from_config(str(home)) as instance,
        ):
            assert isinstance(instance.run_launcher, DefaultRunLauncher)
            assert instance.run_monitoring_enabled

            def wait_for(what: str, done: Callable[[], object], until: datetime) -> float:
                """Poll until `done()` holds; the seconds since the test started."""
                while not done():
                    assert daemon.poll() is None, f"the daemon exited:\n{log.read_text()[-3000:]}"
                    assert datetime.now(NEW_YORK) < until, (
                        f"{what} by {until:%H:%M:%S} (tick {tick:%H:%M}); runs: "
                        f"{[(r.job_name, r.status.value) for r in instance.get_runs()]}\n"
                        f"{log.read_text()[-3000:]}"
                    )
                    time.sleep(1)
                return time.monotonic() - started

            ready = wait_for(
                "the daemon had not looked at the schedule",
                lambda: NIGHTLY_SCHEDULE in schedule_states(instance),
                until=tick,
            )
            deadline = tick + AFTER_TICK_DEADLINE
            nightly_done = wait_for(
                "the tick did not launch two finished nightly runs",
                lambda: [r.is_finished for r in runs_of(instance, NIGHTLY_JOB)] == [True, True],
                until=deadline,
            )
            report_done = wait_for(
                "report_automation did not follow with a finished report run",
                lambda: [r.is_finished for r in report_runs(instance, night)] == [True],
                until=deadline,
            )
            nightly = runs_of(instance, NIGHTLY_JOB)
            [report] = report_runs(instance, night)
            everything = instance.get_runs()
    print(
        f"\ndaemon ready after {ready:.0f} s, the tick at {(tick - now).total_seconds():.0f} s, "
        f"nightly runs done at {nightly_done:.0f} s, the report at {report_done:.0f} s"
    )

    assert sorted(run.tags["dagster/partition"] for run in nightly) == [
        f"{night}|ct",
        f"{night}|hub",
    ]
    assert {run.tags["dagster/schedule_name"] for run in nightly} == {NIGHTLY_SCHEDULE}
    assert {run.status for run in nightly} == {dg.DagsterRunStatus.SUCCESS}
    assert report.status == dg.DagsterRunStatus.SUCCESS, report.status
    # The sensor's run materializes what follows a night; Dagster files it under its implicit
    # asset job, since an automation condition sensor requests assets, not a job.
    assert report.tags["dagster/sensor_name"] == REPORT_SENSOR
    assert {key.to_user_string() for key in report.asset_selection} == {
        "board_report",
        "board_readers_copy",
        "warehouse_backup",
    }
    assert {run.run_id for run in everything} == {run.run_id for run in [*nightly, report]}
    assert query(
        tmp_path / "data" / "ctdata.duckdb",
        "SELECT portal, assets_total FROM catalog.snapshots WHERE snapshot_date = ? ORDER BY 1",
        [night],
    ) == [("ct", 30), ("hub", 10)]
    assert (tmp_path / "reports" / night.isoformat() / "report.html").is_file()
    assert len(list((tmp_path / "data" / "backups").glob("ctdata-*.duckdb"))) == 1
