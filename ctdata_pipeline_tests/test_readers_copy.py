"""Readers never stop the night: the board tables published read-only after every night (one
DuckDB file, a Parquet file per table, replaced whole), and a warehouse locked by another
program failing the run in one line that names the program and says what to do. The readers
are real processes holding real DuckDB connections and files while `ctdata nightly` (the
installed console script) runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from ctdata_pipeline.code_location import definitions_from_env
from ctdata_pipeline.partitions import night_key, today_in_new_york
from ctdata_pipeline.warehouse import lock_holder
from ctdata_pipeline_tests.support import (
    History,
    database_contents,
    files_under,
    good_feed,
    portal_entry,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)

BOARD_RELATIONS = (
    "agency_scorecard",
    "broken_links",  # written by the probe job, which `ctdata nightly` runs after the nights
    "catalog_changes",
    "metric_trends",
    "missing_metadata",
    "plan_metrics",
    "silently_stale",
    "stale_datasets",
)
# One value per relation that changes if any row or value does: its row count and a hash of
# its rows in a fixed order.
DIGEST = (
    "SELECT count(*), md5(coalesce(string_agg(t::VARCHAR, chr(10) ORDER BY t::VARCHAR), '')) "
    "FROM {relation} AS t"
)
# A reader as a notebook or BI tool is one: it opens the published DuckDB file and one Parquet
# file, and holds both while the night runs. It prints what it reads, waits for a line on
# stdin, then prints what it reads again through the same connection and file handle.
READER = r"""
import json, os, shutil, sys, tempfile
import duckdb
published, digest, tables = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
held = duckdb.connect(os.path.join(published, "ctdata_board.duckdb"), read_only=True)
parquet = open(os.path.join(published, "current", "plan_metrics.parquet"), "rb")

def read():
    parquet.seek(0)
    copy = os.path.join(tempfile.mkdtemp(), "held.parquet")
    with open(copy, "wb") as out:
        shutil.copyfileobj(parquet, out)
    return {
        "tables": {
            t: held.execute(digest.format(relation=f"board.{t}")).fetchone() for t in tables
        },
        "parquet": duckdb.execute(digest.format(relation=f"read_parquet('{copy}')")).fetchone(),
    }

print(json.dumps(read()), flush=True)
sys.stdin.readline()
print(json.dumps(read()), flush=True)
"""
# Another program holding the warehouse itself (the DuckDB CLI, DBeaver, a notebook).
HOLDER = r"""
import sys
import duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read-only")
print("holding", flush=True)
sys.stdin.readline()
"""


@dataclass
class Tonight:
    history: History

    @property
    def night(self) -> date:
        return self.history.last_night + timedelta(days=1)

    @property
    def published(self) -> Path:
        return self.history.folder / "data" / "published"

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return run_ctdata(
            self.history.folder,
            *args,
            CTDATA_PORTALS=str(self.history.folder / "portals.yaml"),
            DAGSTER_HOME=str(self.history.folder / "dagster_home"),
            CTDATA_HARVEST_RETRIES="0",
            **env,
        )


@pytest.fixture
def tonight(history: History) -> Iterator[Tonight]:
    """Last night stored and published; tonight's portals serve a larger Socrata catalog."""
    with (
        serve("socrata", socrata_catalog(75)) as socrata,
        serve("dcat", good_feed()) as hub,
    ):
        write_portal_file(history.folder, [portal_entry("ct", socrata), portal_entry("hub", hub)])
        yield Tonight(history)


@contextmanager
def process(script: str, *args: str) -> Iterator[subprocess.Popen]:
    """A small Python process running `script`, stopped (by a line on stdin) on leaving."""
    started = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield started
    finally:
        if started.poll() is None:
            started.communicate("\n", timeout=60)


def first_line(started: subprocess.Popen) -> str:
    line = started.stdout.readline()
    assert line, started.stderr.read()
    return line


def digests(db_path: Path) -> dict[str, list[Any]]:
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return {
            name: list(conn.execute(DIGEST.format(relation=f"board.{name}")).fetchone())
            for name in BOARD_RELATIONS
        }
    finally:
        conn.close()


def parquet_digest(path: Path) -> list[Any]:
    relation = "read_parquet('" + str(path).replace("'", "''") + "')"
    return list(duckdb.execute(DIGEST.format(relation=relation)).fetchone())


def relations(conn: duckdb.DuckDBPyConnection) -> set[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'board'"
    ).fetchall()
    return {name for (name,) in rows}


def assert_copy_equals_warehouse(db_path: Path, published: Path) -> None:
    """Every board table and view of the warehouse, row for row and type for type, in the
    published DuckDB file and in its Parquet file."""
    warehouse = duckdb.connect(str(db_path), read_only=True)
    copy = duckdb.connect(str(published / "ctdata_board.duckdb"), read_only=True)
    try:
        assert relations(warehouse) == relations(copy) == set(BOARD_RELATIONS)
        for name in BOARD_RELATIONS:
            query = f"SELECT * FROM board.{name} ORDER BY ALL"
            rows = warehouse.execute(query).fetchall()
            types = [column[1] for column in warehouse.execute(query).description]
            # The probe work lists are empty where nothing was probed (the tests' portals).
            assert rows or name in ("broken_links", "silently_stale"), name
            assert copy.execute(query).fetchall() == rows, name
            assert [column[1] for column in copy.execute(query).description] == types, name
            parquet = published / "current" / f"{name}.parquet"
            from_parquet = copy.execute(
                "SELECT * FROM read_parquet(?) ORDER BY ALL", [str(parquet)]
            ).fetchall()
            assert from_parquet == rows, name
    finally:
        warehouse.close()
        copy.close()


def versions(published: Path) -> list[str]:
    return sorted(p.name for p in published.iterdir() if p.is_dir() and not p.is_symlink())


def test_a_reader_holding_the_published_copy_never_stops_the_night(tonight):
    db_path = tonight.history.db_path
    last_night = digests(db_path)
    assert digests(tonight.published / "ctdata_board.duckdb") == last_night

    with process(READER, str(tonight.published), DIGEST, ",".join(BOARD_RELATIONS)) as reader:
        before = json.loads(first_line(reader))
        assert before == {"tables": last_night, "parquet": last_night["plan_metrics"]}

        completed = tonight.run("nightly", CTDATA_LOCK_WAIT_SECONDS="5")
        assert completed.returncode == 0, completed.stderr[-3000:]

        # The held connection and file still read last night, whole.
        after, _ = reader.communicate("\n", timeout=60)
        assert json.loads(after) == before

    # A new connection, and the Parquet files, see tonight.
    new_night = digests(db_path)
    assert new_night != last_night
    assert digests(tonight.published / "ctdata_board.duckdb") == new_night
    assert (
        parquet_digest(tonight.published / "current" / "plan_metrics.parquet")
        == new_night["plan_metrics"]
    )
    assert_copy_equals_warehouse(db_path, tonight.published)
    newest = duckdb.connect(str(tonight.published / "ctdata_board.duckdb"), read_only=True)
    try:
        assert newest.execute("SELECT max(snapshot_date) FROM board.plan_metrics").fetchall() == [
            (tonight.night,)
        ]
    finally:
        newest.close()
    manifest = json.loads((tonight.published / "current" / "manifest.json").read_text())
    assert manifest["night"] == tonight.night.isoformat()
    assert manifest["tables"]["board.plan_metrics"]["rows"] == new_night["plan_metrics"][0]
    # Last night's version stays for readers who resolved `current` before the swap.
    [previous, newer] = versions(tonight.published)
    assert os.readlink(tonight.published / "current") == newer
    assert (
        parquet_digest(tonight.published / previous / "plan_metrics.parquet")
        == last_night["plan_metrics"]
    )

    # The run recorded where the copy is and what it holds.
    with dg.DagsterInstance.from_config(str(tonight.history.folder / "dagster_home")) as instance:
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey("board_readers_copy"),
                asset_partitions=[tonight.night.isoformat()],
            ),
            limit=1,
        ).records
    metadata = record.asset_materialization.metadata
    assert metadata["path"].value == str(tonight.published / "ctdata_board.duckdb")
    assert metadata["rows: board.plan_metrics"].value == new_night["plan_metrics"][0]
    assert metadata["database_bytes"].value == (
        (tonight.published / "ctdata_board.duckdb").stat().st_size
    )

    # Another night: the oldest version goes, the one before the newest stays.
    again = tonight.run("nightly")
    assert again.returncode == 0, again.stderr[-3000:]
    assert versions(tonight.published)[0] == newer and len(versions(tonight.published)) == 2


def test_a_program_holding_the_warehouse_fails_the_night_in_one_line_and_loses_nothing(tonight):
    db_path = tonight.history.db_path
    before = database_contents(db_path)
    reports = tonight.history.folder / "reports" / tonight.history.last_night.isoformat()
    last_report = files_under(reports)
    published = tonight.published / "ctdata_board.duckdb"

    with process(HOLDER, str(db_path), "read-only") as holder:
        assert first_line(holder) == "holding\n"
        completed = tonight.run("nightly", CTDATA_LOCK_WAIT_SECONDS="1")
        assert database_contents(db_path) == before

    assert completed.returncode == 1, completed.stdout
    # One line per portal's failed run, and nothing else.
    lines = completed.stderr.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["ct", "hub"], completed.stderr
    for portal, line in zip(("ct", "hub"), lines, strict=True):
        assert line.startswith(
            f"ctdata nightly: {portal}: could not write the database {db_path}: another "
            "program held"
        )
        assert f"{os.path.realpath(sys.executable)} (PID {holder.pid})" in line
        assert 'running "' in line and "-c" in line  # its command line, from /proc
        assert "1 s waited (CTDATA_LOCK_WAIT_SECONDS)" in line
        assert "Close that program's connection to the file and run again" in line
        assert f"readers should open the published copy {published} instead" in line
    assert files_under(reports) == last_report

    # Once it is closed, the next night runs whole.
    rerun = tonight.run("nightly")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_copy_equals_warehouse(db_path, tonight.published)


def test_a_writer_holding_the_warehouse_is_named_to_readers_too(tonight):
    db_path = tonight.history.db_path
    with process(HOLDER, str(db_path), "read-write") as holder:
        assert first_line(holder) == "holding\n"
        checked = tonight.run("check", CTDATA_LOCK_WAIT_SECONDS="0")
        # The published copy is a file of its own: readable while the warehouse is not.
        assert digests(tonight.published / "ctdata_board.duckdb")["plan_metrics"][0] > 0
    assert checked.returncode == 1
    [line] = checked.stderr.splitlines()
    assert line.startswith(
        f"ctdata check: could not read the database {db_path}: another program held its lock "
        f"throughout the 0 s waited (CTDATA_LOCK_WAIT_SECONDS): "
        f'{os.path.realpath(sys.executable)} (PID {holder.pid}) running "{sys.executable} -c '
        "import sys import duckdb conn = "
    )
    assert line.endswith(
        "\". Close that program's connection to the file and run again; readers should open "
        f"the published copy {tonight.published / 'ctdata_board.duckdb'} instead, which never "
        "blocks the night"
    )


def test_the_readers_copy_of_the_demo_equals_its_board_tables(demo_run):
    assert_copy_equals_warehouse(
        demo_run.folder / "data" / "ctdata.duckdb", demo_run.folder / "data" / "published"
    )
    stable = demo_run.folder / "data" / "published" / "ctdata_board.duckdb"
    assert f"Readers' copy: {stable}" in demo_run.completed.stdout


def test_the_readers_copy_follows_every_night_beside_the_report():
    """Wherever a night ends (ctdata nightly and demo run report_job; the daemon evaluates the
    report_automation sensor), the copy is published after it, like the report."""
    defs = definitions_from_env()
    copy = defs.resolve_assets_def("board_readers_copy")
    report = defs.resolve_assets_def("board_report")
    assert copy.partitions_def == report.partitions_def
    assert copy.dependency_keys == report.dependency_keys
    assert copy.op.pool == "duckdb"
    after_night = {copy.key, report.key, dg.AssetKey("warehouse_backup")}
    assert defs.resolve_job_def("report_job").asset_layer.executable_asset_keys == after_night
    sensor = defs.resolve_sensor_def("report_automation")
    assert sensor.asset_selection.resolve(defs.resolve_asset_graph()) == after_night

    tonight = today_in_new_york()
    with dg.instance_for_test() as instance:
        started = dg.evaluate_automation_conditions(defs, instance)
        assert started.total_requested == 0
        for portal in ("data.ct.gov", "geodata.ct.gov"):
            for key in copy.dependency_keys:
                instance.report_runless_asset_event(
                    dg.AssetMaterialization(key, partition=night_key(tonight, portal))
                )
        after_the_portals = dg.evaluate_automation_conditions(defs, instance, cursor=started.cursor)
    assert after_the_portals.get_requested_partitions(copy.key) == {tonight.isoformat()}
    assert after_the_portals.get_requested_partitions(report.key) == {tonight.isoformat()}


def test_the_lock_holder_is_read_from_duckdbs_message_with_or_without_its_user():
    # DuckDB names the user in some messages only (not in those the tests above meet); the
    # PID is past Linux's largest, so there is no command line to add.
    message = (
        'IO Error: Could not set lock on file "/srv/data/ctdata.duckdb": Conflicting lock is '
        "held in /usr/local/bin/duckdb (PID 999999999) by user ana. See also "
        "https://duckdb.org/docs/stable/connect/concurrency"
    )
    assert lock_holder(message) == "/usr/local/bin/duckdb (PID 999999999, user ana)"
    assert lock_holder(message.replace(" by user ana", "")) == (
        "/usr/local/bin/duckdb (PID 999999999)"
    )
    assert lock_holder('IO Error: Could not set lock on file "/srv/data/ctdata.duckdb"') is None
