"""`ctdata check`: the demo's database passes, and each kind of damage is found and named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ctdata_pipeline.board.verify import BOARD_CHECK, CHECKS, READ_CHECK, RUNS_CHECK, verify
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import run_ctdata

TITLES = [check.title for check in CHECKS] + [BOARD_CHECK, RUNS_CHECK]
SHOWN = [READ_CHECK, *TITLES]  # in the order `ctdata check` prints them
PORTAL = "demo.data.ct.gov"
LAST_NIGHT = "(SELECT max(snapshot_date) FROM catalog.snapshots)"
ONE_NIGHT = f"snapshot_date = {LAST_NIGHT} AND portal = '{PORTAL}'"


def test_the_demo_database_passes_every_check(demo_run):
    db = demo_run.folder / "data" / "ctdata.duckdb"
    before = db.stat().st_mtime_ns
    checked = run_ctdata(demo_run.folder, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert lines[0].startswith(f"{db}: 14 snapshots of 2 portal(s) (demo.data.ct.gov, ")
    assert lines[1:-1] == [f"  ok    {title}" for title in SHOWN]
    assert lines[-1] == "ctdata check: no problems found"
    assert db.stat().st_mtime_ns == before  # read-only


# (the damage, as SQL; the check that must find it; what it must say)
DAMAGE = {
    "an asset lost from a snapshot": (
        f"DELETE FROM catalog.snapshot_assets WHERE {ONE_NIGHT} AND asset_id = "
        f"(SELECT min(asset_id) FROM catalog.snapshot_assets WHERE {ONE_NIGHT})",
        TITLES[0],
        "assets and",
    ),
    "a stored version gone": (
        "DELETE FROM catalog.asset_versions WHERE version_id = (SELECT min(version_id) "
        f"FROM catalog.snapshot_assets WHERE {ONE_NIGHT})",
        TITLES[1],
        "point to a missing version",
    ),
    "a metric missing": (
        f"DELETE FROM board.plan_metrics WHERE {ONE_NIGHT} AND metric_id = 'MD-5'",
        TITLES[2],
        "metrics missing: MD-5",
    ),
    "INV-1 disagreeing with the snapshot": (
        f"UPDATE board.plan_metrics SET value = value + 1 WHERE {ONE_NIGHT} "
        "AND metric = 'assets_total' AND agency IS NULL",
        TITLES[3],
        "assets_total is",
    ),
    "an impossible percentage": (
        f"UPDATE board.plan_metrics SET value = 150 WHERE {ONE_NIGHT} "
        "AND metric = 'pct_missing_metadata' AND agency IS NULL",
        TITLES[4],
        "percentage 150.0 outside 0-100",
    ),
    "rows of a night without a snapshot": (
        f"INSERT INTO board.catalog_changes SELECT * REPLACE (DATE '1999-01-01' AS snapshot_date) "
        f"FROM board.catalog_changes WHERE portal = '{PORTAL}' LIMIT 1",
        TITLES[5],
        "1 rows in board.catalog_changes",
    ),
    "a work-list row lost": (
        f"DELETE FROM board.stale_datasets WHERE {ONE_NIGHT} AND asset_id = "
        f"(SELECT min(asset_id) FROM board.stale_datasets WHERE {ONE_NIGHT})",
        BOARD_CHECK,
        "board.stale_datasets has",
    ),
    "a run of record versions cut short": (
        # One of PORTAL's runs (a version's id is a hash: the smallest may be any portal's).
        "UPDATE catalog.version_runs SET last_night = first_night WHERE version_id = "
        f"(SELECT min(version_id) FROM catalog.version_runs WHERE portal = '{PORTAL}' "
        "AND last_night > first_night)",
        RUNS_CHECK,
        "runs of record versions differ from the snapshots",
    ),
}


@pytest.fixture(scope="module")
def demo_copy_source(demo_run) -> Path:
    return demo_run.folder / "data" / "ctdata.duckdb"


@pytest.mark.parametrize("damage", DAMAGE)
def test_each_kind_of_damage_is_found_and_named(demo_copy_source, tmp_path, damage):
    statement, title, detail = DAMAGE[damage]
    db = tmp_path / "ctdata.duckdb"
    shutil.copy(demo_copy_source, db)
    conn = connect(db)
    try:
        conn.execute(statement)
        found = verify(conn)
    finally:
        conn.close()
    failed = {result.title: result.problems for result in found.results if not result.passed}
    # A version shared by several nights is missing from each, and from its snapshot's count;
    # an asset lost from a snapshot also leaves its version's run with a gap.
    also = {
        "a stored version gone": {TITLES[0]},
        "an asset lost from a snapshot": {RUNS_CHECK},
    }.get(damage, set())
    assert set(failed) == {title} | also, failed
    assert any(portal == PORTAL and detail in problem for _, portal, problem in failed[title])


def test_damage_makes_the_command_fail_and_say_where(demo_copy_source, tmp_path):
    db = tmp_path / "ctdata.duckdb"
    shutil.copy(demo_copy_source, db)
    conn = connect(db)
    try:
        conn.execute(DAMAGE["an impossible percentage"][0])
    finally:
        conn.close()
    checked = run_ctdata(tmp_path, "check", CTDATA_DB=str(db))
    assert checked.returncode == 1
    assert f"  FAIL  {TITLES[4]}" in checked.stdout
    assert f" {PORTAL}: pct_missing_metadata (whole portal): percentage 150.0" in checked.stdout
    assert checked.stderr == f"ctdata check: 1 problem(s) found in {db}\n"


def test_no_database_is_said_plainly(tmp_path):
    checked = run_ctdata(tmp_path, "check")
    assert checked.returncode == 2
    assert (
        checked.stderr
        == f"ctdata check: no database at {tmp_path}/data/ctdata.duckdb (CTDATA_DB)\n"
    )
