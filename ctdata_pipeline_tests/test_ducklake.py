"""The warehouse as a DuckLake (CTDATA_WAREHOUSE=ducklake:...): its catalog in a real PostgreSQL,
its data files in a folder. The same nights give the same tables as on the DuckDB file, a
reader in another process reads the lake while a night is written, and a bad setting is one
line."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ctdata_pipeline.metrics.definitions import PROBED_METRIC_NAMES
from ctdata_pipeline.warehouse import DuckDBWarehouse, Lake, connect_lake, transaction
from ctdata_pipeline_tests.services import PG_PASSWORD, Postgres
from ctdata_pipeline_tests.support import (
    Pipeline,
    database_contents,
    dcat_dataset,
    lake_contents,
    nightly_source,
    portal_entry,
    run_ctdata,
    serve,
    socrata_catalog,
)

NIGHTS = 3
# What differs between two runs of the same night whatever the backend: when it was harvested,
# from which loopback port, and how long that took (catalog.snapshots' loaded_at is left out by
# warehouse_contents).
TIMING_COLUMNS = {"catalog.snapshots": (3, 4, 11)}  # snapshot_time, source_url, harvest_seconds


def socrata_night(night: date, first: date) -> list[dict[str, Any]]:
    """80 datasets, changing night by night: some lose their tags, some go, some arrive."""
    n = (night - first).days
    records = socrata_catalog(80 - 5 * n, datasets_only=True, start=3 * n)
    for record in records[: 10 * n]:
        record["classification"]["domain_tags"] = []
    return records


def dcat_night(night: date, first: date) -> dict[str, Any]:
    n = (night - first).days
    return {
        "dataset": [
            dcat_dataset(f"https://hub.example/d/{i}", title=f"Layer {i}")
            for i in range(n, 30 + 2 * n)
        ]
    }


def run_nights(
    folder: Path,
    nights: list[date],
    lake: Lake | None,
    first: date | None = None,
    one_run: bool = False,
    probes: bool = False,
) -> Pipeline:
    """The nights of both portals, then the last night's report (`first`: the night the
    portals' catalogs count from); `one_run`: each night in one run (whole_night_job), with
    its report; `probes`: each portal's probe run after its own (as `ctdata nightly`)."""
    first = first or nights[0]
    folder.mkdir(exist_ok=True)
    with (
        serve("socrata", nightly_source(lambda night: socrata_night(night, first))) as socrata,
        serve("dcat", nightly_source(lambda night: dcat_night(night, first))) as hub,
        dg.instance_for_test() as instance,
    ):
        pipeline = Pipeline(
            folder,
            [portal_entry("ct", socrata, as_of=True), portal_entry("hub", hub, as_of=True)],
            lake=lake,
        )
        for night in nights:
            if one_run:
                pipeline.run_whole_night_ok(instance, night, "ct", "hub")
            else:
                pipeline.run_ok(instance, night, "ct", "hub", probes=probes)
        pipeline.report_ok(instance, nights[-1])
    return pipeline


def without_timing(contents: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    kept = {}
    for table, rows in contents.items():
        drop = TIMING_COLUMNS.get(table, ())
        kept[table] = sorted(
            (tuple(value for i, value in enumerate(row) if i not in drop) for row in rows),
            key=repr,
        )
    return kept


@pytest.fixture
def lake(postgres: Postgres, tmp_path: Path) -> Lake:
    """A new DuckLake: its catalog in a database of the test's PostgreSQL."""
    return Lake("postgres:" + postgres.create_database("lake"), str(tmp_path / "lake-data"))


def test_the_same_nights_on_the_lake_and_on_the_file_store_the_same_rows(
    tmp_path: Path, lake: Lake, today: date
) -> None:
    nights = [today - timedelta(days=NIGHTS - i) for i in range(NIGHTS)]
    on_file = run_nights(tmp_path / "file", nights, None)
    on_lake = run_nights(tmp_path / "lake", nights, lake)

    assert not on_lake.db_path.exists(), "the lake run wrote the DuckDB file"
    assert list(Path(lake.data_path).rglob("*.parquet")), "the lake wrote no data files"
    from_file = without_timing(database_contents(on_file.db_path))
    from_lake = without_timing(lake_contents(lake))
    assert sorted(from_lake) == sorted(from_file)
    assert [table for table in from_file if from_lake[table] != from_file[table]] == []
    # The nights did change things, so the tables compared are not trivially empty.
    assert {row[3] for row in from_file["board.catalog_changes"]} >= {"added", "removed"}
    assert len({row[0] for row in from_file["board.plan_metrics"]}) == NIGHTS
    # The last night's report was written from the lake, and says the same: every CSV.
    night = nights[-1].isoformat()
    lake_night = on_lake.settings.report_dir / night
    file_night = on_file.settings.report_dir / night
    csvs = sorted(path.name for path in file_night.glob("*.csv"))
    assert len(csvs) >= 5 and sorted(path.name for path in lake_night.glob("*.csv")) == csvs
    assert [
        name
        for name in csvs
        if (lake_night / name).read_bytes() != (file_night / name).read_bytes()
    ] == []
    assert (lake_night / "report.html").exists()


def test_whole_nights_in_one_run_on_the_lake_store_the_rows_of_per_portal_runs_on_the_file(
    tmp_path: Path, lake: Lake, today: date
) -> None:
    """The national design (every portal of a night in one run, through one connection) on
    the lake, against the schedule's design (a run per portal) on the file."""
    nights = [today - timedelta(days=NIGHTS - i) for i in range(NIGHTS)]
    # Their probes are off: the one run records what their probe runs would (probes.targets,
    # the probe metrics not measured), so the file's nights run their probe runs too.
    on_file = run_nights(tmp_path / "file", nights, None, probes=True)
    run_nights(tmp_path / "lake", nights, lake, one_run=True)

    def comparable(contents: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
        return {
            table: sorted((tuple(unported(v) for v in row) for row in rows), key=repr)
            for table, rows in without_timing(contents).items()
        }

    from_file = comparable(database_contents(on_file.db_path))
    from_lake = comparable(lake_contents(lake))
    assert sorted(from_lake) == sorted(from_file)
    assert [table for table in from_file if from_lake[table] != from_file[table]] == []
    assert len({row[0] for row in from_file["board.plan_metrics"]}) == NIGHTS


READER = """
import sys, time
from pathlib import Path
from ctdata_pipeline.metrics.definitions import PROBED_METRIC_NAMES
from ctdata_pipeline.warehouse import DuckDBWarehouse, Lake, connect_lake, transaction
lake, stop = Lake(sys.argv[1], sys.argv[2]), Path(sys.argv[3])
conn = connect_lake(lake, read_only=True)
print("ready", flush=True)
while not stop.exists():
    # A new transaction each time: it sees the last night committed.
    (nights,) = conn.execute(
        "SELECT count(DISTINCT snapshot_date) FROM board.plan_metrics"
    ).fetchone()
    print(nights, flush=True)
    time.sleep(0.05)
"""


def test_a_reader_reads_the_lake_while_a_night_is_written(
    tmp_path: Path, lake: Lake, today: date
) -> None:
    yesterday = today - timedelta(days=1)
    run_nights(tmp_path / "night", [yesterday], lake)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, lake.catalog, lake.data_path, str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout.readline().strip() == "ready"
        started = time.monotonic()
        run_nights(tmp_path / "night", [today], lake, first=yesterday)
        night_seconds = time.monotonic() - started
        stop.touch()
        output, errors = reader.communicate(timeout=60)
    finally:
        reader.kill()
    assert reader.returncode == 0, errors[-2000:]
    seen = [int(line) for line in output.split()]
    # Reads went on all night (one every 50 ms or so, none waiting for the writer) and saw
    # one night, then two: never a half-written state, and never an error.
    assert len(seen) >= night_seconds / 0.5, (len(seen), night_seconds)
    assert seen == sorted(seen) and set(seen) == {1, 2}


@pytest.mark.parametrize(
    ("value", "data", "says"),
    [
        (
            "sqlite:/srv/lake.db",
            "lake-data",
            "CTDATA_WAREHOUSE=sqlite:... must be ducklake:<catalog>",
        ),
        ("ducklake:", "lake-data", "CTDATA_WAREHOUSE=ducklake:... must be ducklake:<catalog>"),
        (
            f"ducklake:postgres:dbname=lake password={PG_PASSWORD}",
            "",
            "CTDATA_WAREHOUSE_DATA is not set",
        ),
    ],
)
def test_a_bad_ctdata_warehouse_is_one_line_and_exit_2(
    tmp_path: Path, value: str, data: str, says: str
) -> None:
    completed = run_ctdata(tmp_path, "nightly", CTDATA_WAREHOUSE=value, CTDATA_WAREHOUSE_DATA=data)
    assert completed.returncode == 2, completed.stderr[-2000:]
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith("ctdata nightly: ") and says in line, line
    assert PG_PASSWORD not in completed.stderr + completed.stdout
    assert not (tmp_path / "data").exists() and not (tmp_path / "lake-data").exists()


def test_a_lake_it_cannot_reach_fails_the_night_in_one_line_without_its_password(
    tmp_path: Path, lake: Lake, postgres: Postgres, today: date
) -> None:
    wrong = Lake(lake.catalog.replace(PG_PASSWORD, "not-the-password"), lake.data_path)
    with serve("socrata", socrata_catalog(20)) as socrata, dg.instance_for_test() as instance:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)], lake=wrong)
        [night] = pipeline.run(instance, today, "ct")
    assert not night.success
    assert "password authentication failed" in night.reason, night.reason
    assert "not-the-password" not in night.reason and "password=[redacted]" in night.reason
    # Nothing was created in the right lake either.
    with pytest.raises(Exception, match="does not exist"):
        connect_lake(lake, read_only=True)


def test_a_writer_that_meets_another_at_commit_runs_again_and_writes_nothing(
    tmp_path: Path, lake: Lake
) -> None:
    warehouse = DuckDBWarehouse(
        database=str(tmp_path / "unused.duckdb"),
        lake_catalog=lake.catalog,
        lake_data=lake.data_path,
    )
    with warehouse.get_connection() as conn:
        conn.execute("CREATE SCHEMA board; CREATE TABLE board.nights (portal VARCHAR)")
        conn.execute("INSERT INTO board.nights VALUES ('ct'), ('hub')")
    with pytest.raises(dg.RetryRequested) as retried:
        with warehouse.get_connection() as late, transaction(late):
            late.execute("DELETE FROM board.nights WHERE portal = 'ct'")
            with warehouse.get_connection() as early, transaction(early):
                early.execute("DELETE FROM board.nights WHERE portal = 'hub'")
    assert retried.value.max_retries > 0
    with warehouse.get_connection(read_only=True) as conn:
        assert conn.execute("SELECT portal FROM board.nights").fetchall() == [("ct",)]
    assert not Path(warehouse.database).exists()


@pytest.mark.parametrize("command", [("check",), ("backup",), ("restore", "backup.duckdb")])
def test_the_commands_of_the_file_alone_refuse_a_lake_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    completed = run_ctdata(
        tmp_path,
        *command,
        CTDATA_WAREHOUSE=f"ducklake:postgres:dbname=lake password={PG_PASSWORD}",
        CTDATA_WAREHOUSE_DATA="lake-data",
    )
    assert completed.returncode == 2, completed.stderr[-2000:]
    [line] = completed.stderr.strip().splitlines()
    assert line.startswith(f"ctdata {command[0]}: works on the DuckDB file (CTDATA_DB) only"), line
    assert "password=[redacted]" in line and PG_PASSWORD not in line
    assert sorted(path.name for path in tmp_path.iterdir()) == []


# Two demo runs differ, whatever the backend, in what their probes met: the loopback hosts'
# ports in every URL, and which slow links timed out on a loaded machine.
PROBE_FED = {"board.broken_links", "board.silently_stale"}
# The probe metrics, and the freshness states FR-5 counts by the probed data dates.
PROBE_FED_METRICS = {*PROBED_METRIC_NAMES, "freshness_state_by_data_date"}
LOOPBACK_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d+")


def unported(value: Any) -> Any:
    """A value with its loopback ports blanked (each run serves its portals on new ports)."""
    if isinstance(value, str):
        return LOOPBACK_PORT.sub(r"\1:PORT", value)
    if isinstance(value, list):
        return [unported(item) for item in value]
    return value


def demo_board(contents: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The board tables of a demo, without the probe-fed tables and metrics, ports blanked."""
    board = {}
    for table, rows in without_timing(contents).items():
        if not table.startswith("board.") or table in PROBE_FED:
            continue
        if table == "board.plan_metrics":
            rows = [row for row in rows if row[4].split(":")[0] not in PROBE_FED_METRICS]
        board[table] = sorted((tuple(unported(v) for v in row) for row in rows), key=repr)
    return board


def test_the_demo_on_a_lake_writes_the_board_tables_of_the_demo_on_the_file(
    demo_run: Any, tmp_path: Path, lake: Lake
) -> None:
    completed = run_ctdata(
        tmp_path,
        "demo",
        CTDATA_WAREHOUSE=f"ducklake:{lake.catalog}",
        CTDATA_WAREHOUSE_DATA=lake.data_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Warehouse:     the DuckLake ducklake:postgres:" in completed.stdout
    assert PG_PASSWORD not in completed.stdout + completed.stderr
    assert not (tmp_path / "data" / "ctdata.duckdb").exists()
    from_file = demo_board(database_contents(demo_run.folder / "data" / "ctdata.duckdb"))
    from_lake = demo_board(lake_contents(lake))
    assert len(from_file) >= 5 and sorted(from_lake) == sorted(from_file)
    assert len(from_file["board.plan_metrics"]) > 100
    assert [table for table in from_file if from_lake[table] != from_file[table]] == [], sorted(
        {
            row[4]
            for row in set(from_file["board.plan_metrics"]) ^ set(from_lake["board.plan_metrics"])
        }
    )
