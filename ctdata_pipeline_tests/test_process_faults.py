"""The fault matrix, process faults: `ctdata nightly` as the cron runs it (the installed console
script, its own DAGSTER_HOME, no retries) killed part-way, run twice at once, pointed at a
read-only database, a full disk, a bad portal file and a DAGSTER_HOME that is missing or cannot
be made. Each ends with last night as it was, `ctdata check` passing, and the next run whole."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ctdata_pipeline.demo.server import PortalServer
from ctdata_pipeline_tests.support import (
    CTDATA,
    History,
    ctdata_environment,
    database_contents,
    good_feed,
    portal_entry,
    query,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)

TONIGHTS_ASSETS = 600  # six pages, and rows enough that each kill point is met while ctdata runs
PAGE_SIZE = 100


@dataclass
class Tonight:
    """Tonight's live portals for a History folder, and how to run ctdata there."""

    history: History
    socrata: PortalServer
    hub: PortalServer
    assets: int  # in tonight's Socrata catalog

    @property
    def environment(self) -> dict[str, str]:
        return {
            "CTDATA_PORTALS": str(self.history.folder / "portals.yaml"),
            "DAGSTER_HOME": str(self.history.folder / "dagster_home"),
            "CTDATA_HARVEST_RETRIES": "0",
        }

    def run(self, *args: str, **env: Any) -> subprocess.CompletedProcess:
        return run_ctdata(self.history.folder, *args, **{**self.environment, **env})

    def start(self, preexec: Callable[[], None] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [str(CTDATA), "nightly"],
            cwd=self.history.folder,
            env=ctdata_environment(**self.environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=preexec,
        )

    def assert_whole_again(self, rerun: subprocess.CompletedProcess | None = None) -> None:
        """Last night as it was; the next nightly completes (`rerun`, or one run now)."""
        self.history.assert_last_night_untouched()
        rerun = rerun or self.run("nightly")
        assert rerun.returncode == 0, rerun.stderr
        self.assert_tonight_whole()

    def assert_tonight_whole(self) -> None:
        """Tonight stored once for both portals; the database checks out; no scratch file is
        left behind."""
        checked = self.run("check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        counts = query(
            self.history.db_path,
            "SELECT portal, assets_total FROM catalog.snapshots WHERE snapshot_date = ? "
            "ORDER BY portal",
            [self.night],
        )
        assert dict(counts) == {"ct": self.assets, "hub": len(good_feed()["dataset"])}
        assert not list(self.history.folder.rglob("*.partial*"))

    @property
    def night(self) -> date:
        return self.history.last_night + timedelta(days=1)


@pytest.fixture
def tonight(history: History) -> Iterator[Tonight]:
    """Tonight's portals: "ct" (Socrata, TONIGHTS_ASSETS assets) and "hub" (DCAT)."""
    assets = TONIGHTS_ASSETS
    with (
        serve("socrata", socrata_catalog(assets)) as socrata,
        serve("dcat", good_feed()) as hub,
    ):
        write_portal_file(
            history.folder,
            [
                portal_entry("ct", socrata, page_size=PAGE_SIZE),
                portal_entry("hub", hub),
            ],
        )
        yield Tonight(history, socrata, hub, assets)


# --- killed part-way --------------------------------------------------------------------------


def _database_being_written(tonight: Tonight) -> bool:
    db = tonight.history.db_path
    return db.with_name(db.name + ".wal").exists()


def _report_being_written(tonight: Tonight) -> bool:
    return any((tonight.history.folder / "reports").glob(".*.partial-*"))


KILL_POINTS: dict[str, Callable[[Tonight], bool]] = {
    "while downloading the catalog": lambda tonight: len(tonight.socrata.requests) >= 2,
    "as the database is first written": _database_being_written,
    "while the report is written": _report_being_written,
}


def wait_for(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"ctdata finished before {what}: {process.stderr.read()}"
        assert time.monotonic() < deadline, f"never reached {what}"
        time.sleep(0.002)


@pytest.mark.parametrize("kill_point", KILL_POINTS)
def test_a_nightly_killed_part_way_loses_nothing_and_the_next_run_completes(tonight, kill_point):
    process = tonight.start()
    wait_for(lambda: KILL_POINTS[kill_point](tonight), process, kill_point)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL

    tonight.history.assert_last_night_untouched()
    assert_check_tells_the_truth(tonight)

    rerun = tonight.run("nightly")
    # The killed run is not left "started" for ever in the Dagster UI.
    assert "left unfinished by a ctdata process that was stopped are now marked failed" in (
        rerun.stderr
    )
    tonight.assert_whole_again(rerun)


# --- two at once ------------------------------------------------------------------------------


def test_two_nightlies_at_once_take_turns_and_store_tonight_once(tonight):
    first, second = tonight.start(), tonight.start()
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    for process, (stdout, stderr) in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, stderr
        assert f"{tonight.night} ct: ok" in stdout
    tonight.history.assert_last_night_untouched()
    tonight.assert_tonight_whole()
    # Every run is recorded (each nightly's ct, hub and report), and none is left unfinished.
    # Each nightly: two portals, their two probe runs, the report.
    assert recorded_runs(tonight.history.folder / "dagster_home") == {"SUCCESS": 2 * 5}


# --- storage that refuses writes --------------------------------------------------------------

# Root writes to a read-only file anyway; without these capabilities it is refused like anyone.
AS_AN_ORDINARY_USER = (
    ("setpriv", "--bounding-set=-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
)


def test_a_read_only_database_is_a_clear_error_and_loses_nothing(tonight):
    db = tonight.history.db_path
    db.chmod(0o444)
    try:
        refused = run_ctdata(
            tonight.history.folder, "nightly", prefix=AS_AN_ORDINARY_USER, **tonight.environment
        )
    finally:
        db.chmod(0o644)
    assert refused.returncode == 1
    for portal in ("ct", "hub"):  # one line each
        reason = failure_line(refused.stderr, portal)
        assert reason.startswith(f"ctdata nightly: {portal}: could not write the database ")
        assert "Permission denied; what was there before is unchanged" in reason
    assert "Traceback" not in refused.stderr
    assert_database_unchanged(tonight.history)
    tonight.assert_whole_again()


def file_size_limit(limit: int) -> Callable[[], None]:
    """A process whose files cannot grow past `limit` bytes: the kernel's answer is the one a
    full disk gives a writer (the write fails; what was written stays)."""

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


# The staged harvest (3.4 MB tonight) is written before the database: a limit below it fills
# the disk while staging; one just above it, the database (its log reaches 4.0 MB with tonight's
# rows, and the file is 3.9 MB already).
@pytest.mark.parametrize(
    ("where", "limit"), [("stage the harvest in", 1_000_000), ("write the database", 3_600_000)]
)
def test_a_full_disk_is_a_clear_error_and_loses_nothing(tonight, where, limit):
    process = tonight.start(preexec=file_size_limit(limit))
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 1
    reason = failure_line(stderr, "ct")
    assert reason.startswith(f"ctdata nightly: ct: could not {where} ")
    assert "File too large; what was there before is unchanged" in reason
    tonight.history.assert_last_night_untouched()
    if where == "stage the harvest in":
        assert_not_stored(tonight, "ct")
    assert_check_tells_the_truth(tonight)
    tonight.assert_whole_again()


def failure_line(stderr: str, portal: str) -> str:
    """The portal's line among a failed night's lines on stderr (one per failed run)."""
    [line] = [
        line for line in stderr.splitlines() if line.startswith(f"ctdata nightly: {portal}: ")
    ]
    return line


def assert_database_unchanged(history: History) -> None:
    assert database_contents(history.db_path) == history.tables


def assert_not_stored(tonight: Tonight, portal: str) -> None:
    """No row of tonight for this portal in any table."""
    contents = database_contents(tonight.history.db_path)
    for table, rows in contents.items():
        if rows and isinstance(rows[0][0], date):
            assert not [r for r in rows if r[0] == tonight.night and r[1] == portal], table


def assert_check_tells_the_truth(tonight: Tonight) -> None:
    """Each step commits on its own, so a run stopped between steps can leave tonight's snapshot
    stored (whole) without its metrics. `ctdata check` must say so, and say nothing else."""
    unfinished = query(
        tonight.history.db_path,
        "SELECT snapshot_date, portal FROM catalog.snapshots "
        "ANTI JOIN board.plan_metrics USING (snapshot_date, portal) ORDER BY ALL",
    )
    checked = tonight.run("check")
    failed_checks = [line for line in checked.stdout.splitlines() if line.startswith("  FAIL")]
    if unfinished:
        assert checked.returncode == 1
        assert failed_checks == [
            "  FAIL  every snapshot has every metric, over all its in-scope datasets"
        ], checked.stdout
        for night, portal in unfinished:
            assert f"{night} {portal}: metrics missing: " in checked.stdout
    else:
        assert checked.returncode == 0, checked.stdout + checked.stderr


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("portals: [", "not valid YAML"),
        ("portals:\n  - {name: ct, kind: ckan, url: 'https://data.ct.gov'}\n", "kind: Input"),
    ],
)
def test_a_bad_portal_file_stops_the_night_before_anything_is_touched(history, text, problem):
    portals = history.folder / "portals.yaml"
    portals.write_text(text, encoding="utf-8")
    refused = run_ctdata(
        history.folder, "nightly", CTDATA_PORTALS=str(portals), DAGSTER_HOME=str(history.folder)
    )
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"ctdata nightly: portal file {portals}: ")
    assert problem in refused.stderr and refused.stderr.count("\n") == 1
    history.assert_nothing_lost()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CTDATA_LOCK_WAIT_SECONDS", "two minutes", "must be a number of seconds, 0 or more"),
        ("CTDATA_HARVEST_RETRIES", "1.5", "must be a whole number, 0 or more"),
        ("CTDATA_HARVEST_RETRY_DELAY", "-5", "must be a number of seconds, 0 or more"),
        ("CTDATA_DB", "metrics.duckdb", "the same as one of the pipeline's schemas"),
        ("CTDATA_NIGHTLY_AT", "2am", "must be a time of day HH:MM, 24-hour, New York time"),
    ],
)
def test_a_bad_setting_stops_every_command_in_one_line(history, variable, value, expected):
    for command in ("nightly", "check", "backup"):
        refused = run_ctdata(history.folder, command, **{variable: value})
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.startswith(f"ctdata {command}: ")
        assert expected in refused.stderr and refused.stderr.count("\n") == 1
    history.assert_nothing_lost()


def test_a_missing_dagster_home_folder_is_made_and_records_the_runs(tonight):
    home = tonight.history.folder / "not" / "made" / "yet"
    completed = tonight.run("nightly", DAGSTER_HOME=str(home))
    assert completed.returncode == 0, completed.stderr
    assert recorded_runs(home) == {"SUCCESS": 5}  # two nightly, two probe, one report run


def test_a_dagster_home_that_cannot_be_made_is_one_clear_error(tonight):
    blocker = tonight.history.folder / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    refused = tonight.run("nightly", DAGSTER_HOME=str(blocker / "dagster_home"))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"ctdata: DAGSTER_HOME {blocker / 'dagster_home'} cannot be created: Not a directory\n"
    )
    tonight.history.assert_nothing_lost()


def recorded_runs(dagster_home: Path) -> dict[str, int]:
    """Runs recorded in a DAGSTER_HOME, by status."""
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return dict(Counter(run.status.value for run in instance.get_runs()))
