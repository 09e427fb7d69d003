"""Backups: taken after the night's report (skipped when nothing was written), kept by restic's
daily/weekly/monthly rule, refused by `ctdata restore` when damaged or from a newer schema, and
never holding the app token."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ctdata_pipeline.backup.assets import BACKUP
from ctdata_pipeline.backup.folder import apply_retention, backup_name, list_backups
from ctdata_pipeline.backup.retention import KeepPolicy, RetentionError
from ctdata_pipeline.code_location import definitions_from_env
from ctdata_pipeline.jobs import REPORT_JOB
from ctdata_pipeline.schema_version import SCHEMA_VERSION, stored_schema_version
from ctdata_pipeline_tests.support import (
    GOOD_ASSETS,
    History,
    Pipeline,
    database_contents,
    portal_entry,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)

TOKEN = "ctdataTOKEN-backup-8d1e"


def backups_in(history: History) -> list[Path]:
    return [
        backup.path for backup in list_backups(history.db_path.parent / "backups", history.db_path)
    ]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- retention ---------------------------------------------------------------------------


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_retention_keeps_the_newest_of_each_of_the_last_days_weeks_and_months(tmp_path):
    db = tmp_path / "ctdata.duckdb"
    # A backup every night of 2026 at 07:00 UTC (02:00 or 03:00 in New York), a second one on
    # the last evening, and one at 03:00 UTC on 1 March, which is still 28 February in New York.
    taken = [utc("2026-01-01T07:00:00") + timedelta(days=day) for day in range(365)]
    taken += [utc("2026-12-31T20:00:00"), utc("2026-03-01T03:00:00")]
    for moment in taken:
        (tmp_path / backup_name(db, moment)).write_bytes(b"backup")
        (tmp_path / backup_name(db, moment)).with_suffix(".json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a backup")

    kept, deleted = apply_retention(tmp_path, db, KeepPolicy.parse("daily=7,weekly=5,monthly=12"))

    daily = [utc("2026-12-31T20:00:00")] + [utc(f"2026-12-{day}T07:00:00") for day in range(25, 31)]
    # ISO weeks: 28 Dec-3 Jan and 21-27 Dec are kept by the daily rule already.
    weekly = [utc(f"2026-12-{day:02d}T07:00:00") for day in (20, 13, 6)]
    month_ends = ["01-31", "03-31", "04-30", "05-31", "06-30", "07-31", "08-31", "09-30"]
    monthly = [utc(f"2026-{end}T07:00:00") for end in [*month_ends, "10-31", "11-30"]]
    monthly.append(utc("2026-03-01T03:00:00"))  # February's newest, New York time
    expected = sorted(daily + weekly + monthly)
    assert [backup.taken_at for backup in kept] == expected
    assert len(deleted) == len(taken) - len(expected)
    remaining = sorted(path.name for path in tmp_path.iterdir())
    names = [backup_name(db, moment) for moment in expected]
    assert remaining == sorted(
        [*names, *(Path(name).with_suffix(".json").name for name in names), "notes.txt"]
    )


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("", KeepPolicy(7, 5, 12)),
        ("daily=2", KeepPolicy(2, 0, 0)),
        (" weekly=4 , monthly=24 ", KeepPolicy(0, 4, 24)),
    ],
)
def test_the_keep_rule_is_read_from_its_text(text, policy):
    assert KeepPolicy.parse(text) == policy


@pytest.mark.parametrize("text", ["daily", "daily=-1", "hourly=3", "daily=0,weekly=0"])
def test_a_bad_keep_rule_is_refused_by_name(text):
    with pytest.raises(RetentionError, match="CTDATA_BACKUP_KEEP"):
        KeepPolicy.parse(text)


# --- the backup asset --------------------------------------------------------------------


def latest_backup_metadata(instance: dg.DagsterInstance, night: str) -> dict[str, object]:
    event = instance.get_latest_materialization_event(BACKUP)
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.partition == night
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def test_the_backup_follows_the_report_and_is_skipped_when_nothing_was_written(history, instance):
    night = history.last_night + timedelta(days=1)
    # The night the fixture stored ended with its report and a backup of it.
    [first] = backups_in(history)
    with serve("socrata", socrata_catalog(GOOD_ASSETS)) as good:
        pipeline = Pipeline(history.folder, [portal_entry("ct", good, as_of=True)])
        report_job = pipeline.defs.resolve_job_def(REPORT_JOB)

        # Nothing written since: the report is written again, the backup skipped.
        assert report_job.execute_in_process(
            partition_key=night.isoformat(), instance=instance
        ).success
        skipped = latest_backup_metadata(instance, night.isoformat())
        assert "nothing written to the warehouse since the newest backup" in str(skipped["skipped"])
        assert backups_in(history) == [first]

        # A night that was refused (the shrink guard) writes nothing either.
        with serve("socrata", socrata_catalog(3)) as shrunk:
            stored, reason = history.tonight(
                instance, night, portal_entry("ct", shrunk, as_of=True)
            )
        assert not stored and "refused" in reason
        assert report_job.execute_in_process(
            partition_key=night.isoformat(), instance=instance
        ).success
        assert "skipped" in latest_backup_metadata(instance, night.isoformat())
        assert backups_in(history) == [first]

        # Tonight stored: a new backup, with what it cost and what retention did. (The
        # refused night wrote its own portal file: write this one again.)
        pipeline = Pipeline(history.folder, [portal_entry("ct", good, as_of=True)])
        report_job = pipeline.defs.resolve_job_def(REPORT_JOB)
        pipeline.run_ok(instance, night, "ct")
        assert report_job.execute_in_process(
            partition_key=night.isoformat(), instance=instance
        ).success
    metadata = latest_backup_metadata(instance, night.isoformat())
    # The fixture's backup was taken today too: the daily rule keeps the newest of a day.
    [second] = backups_in(history)
    assert second != first
    assert metadata["backup"] == str(second.resolve())
    assert metadata["bytes"] == second.stat().st_size > 0
    assert 0 < metadata["check_seconds"] <= metadata["seconds"]
    assert metadata["kept"] == 1 and metadata["deleted"] == 1
    assert metadata["deleted_backups"] == [first.name]
    assert metadata["retention"] == "daily=7,weekly=5,monthly=12"
    assert metadata["schema_version"] == SCHEMA_VERSION
    manifest = json.loads(second.with_suffix(".json").read_text())
    assert manifest["bytes"] == metadata["bytes"]
    # The backup holds the warehouse as it was: every row of every table.
    assert database_contents(second) == database_contents(history.db_path)


def test_ctdata_backup_takes_one_now_and_applies_the_keep_rule(history):
    backups = history.db_path.parent / "backups"
    [from_the_night] = backups_in(history)
    # Two backups two days ago and one three days ago, a day apart or more in any timezone.
    now = datetime.now(UTC)
    older = [
        backups / backup_name(history.db_path, now - timedelta(days=days)) for days in (3, 2.1, 2)
    ]
    for path in older:
        shutil.copyfile(from_the_night, path)
    from_the_night.unlink()

    taken = run_ctdata(history.folder, "backup", CTDATA_BACKUP_KEEP="daily=2")

    assert taken.returncode == 0, taken.stderr
    [now_taken] = [path for path in backups_in(history) if path not in older]
    assert taken.stdout.startswith(
        f"ctdata backup: {now_taken} ({now_taken.stat().st_size:,} bytes, 2 snapshots, "
        f"nights to {history.last_night}) in "
    )
    # daily=2: the newest of today, and the newest of the latest day before it with a backup.
    assert backups_in(history) == [older[2], now_taken]
    assert taken.stdout.splitlines()[1].startswith("retention daily=2,weekly=0,monthly=0: 2 kept")
    checked = run_ctdata(history.folder, "check", CTDATA_DB=str(now_taken))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    refused = run_ctdata(history.folder, "backup", CTDATA_BACKUP_KEEP="daily=lots")
    assert refused.returncode == 1
    assert refused.stderr.startswith("ctdata backup: CTDATA_BACKUP_KEEP='daily=lots': ")
    assert len(refused.stderr.splitlines()) == 1


def test_the_report_sensor_backs_up_after_each_night_s_report(instance, today):
    """The daemon's path: `report_automation` requests the backup of a night once that night's
    report is materialized, and not before."""
    defs = definitions_from_env()
    target = dg.AssetSelection.assets("board_report", "warehouse_backup")
    result = dg.evaluate_automation_conditions(defs, instance, asset_selection=target)
    assert result.get_num_requested(BACKUP) == 0
    instance.report_runless_asset_event(
        dg.AssetMaterialization("board_report", partition=today.isoformat())
    )
    result = dg.evaluate_automation_conditions(
        defs, instance, asset_selection=target, cursor=result.cursor
    )
    assert result.get_requested_partitions(BACKUP) == {today.isoformat()}
    result = dg.evaluate_automation_conditions(
        defs, instance, asset_selection=target, cursor=result.cursor
    )
    assert result.get_num_requested(BACKUP) == 0  # once per report


# --- restore refusals --------------------------------------------------------------------


def truncated(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def garbage(path: Path) -> None:
    path.write_bytes(bytes(range(256)) * (path.stat().st_size // 256))


def impossible_value(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute("UPDATE board.plan_metrics SET value = 150 WHERE metric = 'pct_missing_metadata'")
    conn.close()


def newer_schema(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute("UPDATE main.schema_version SET version = ?", [SCHEMA_VERSION + 1])
    conn.close()


def emptied(path: Path) -> None:
    path.write_bytes(b"")


REFUSALS = {
    "truncated": (truncated, "is truncated: DuckDB needs bytes past its end"),
    "garbage": (garbage, "is not a DuckDB file"),
    "empty": (emptied, "is empty (0 bytes)"),
    "failing a check": (impossible_value, "fails `ctdata check` with"),
    "from a newer schema": (
        newer_schema,
        f"has schema version {SCHEMA_VERSION + 1}, newer than this ctdata knows "
        f"({SCHEMA_VERSION}): upgrade ctdata to use it",
    ),
}


@pytest.mark.parametrize("damage", REFUSALS)
def test_a_backup_that_cannot_be_restored_is_refused_and_nothing_changes(history, damage):
    spoil, said = REFUSALS[damage]
    [good] = backups_in(history)
    backup = history.folder / "spoiled" / good.name
    backup.parent.mkdir()
    shutil.copyfile(good, backup)
    spoil(backup)
    before = digest(history.db_path)
    files_before = sorted(history.db_path.parent.iterdir())

    restored = run_ctdata(history.folder, "restore", str(backup))

    assert restored.returncode == 1
    assert restored.stderr.startswith(f"ctdata restore: refused, {backup} {said}")
    assert restored.stderr.endswith(f"; {history.db_path} is unchanged\n")
    assert len(restored.stderr.splitlines()) == 1
    assert digest(history.db_path) == before
    # Nothing set aside, nothing half-copied.
    assert sorted(history.db_path.parent.iterdir()) == files_before


def test_a_missing_backup_is_refused(history):
    restored = run_ctdata(history.folder, "restore", "no-such.duckdb")
    assert restored.returncode == 1
    assert restored.stderr == (
        f"ctdata restore: refused, no-such.duckdb: no such file; {history.db_path} is unchanged\n"
    )


def test_a_restore_onto_a_machine_without_a_warehouse_just_places_it(history, tmp_path):
    [good] = backups_in(history)
    fresh = tmp_path / "fresh" / "data" / "ctdata.duckdb"
    restored = run_ctdata(history.folder, "restore", str(good), CTDATA_DB=str(fresh))
    assert restored.returncode == 0, restored.stderr
    assert "kept at" not in restored.stdout
    assert database_contents(fresh) == database_contents(good)
    assert [path.name for path in fresh.parent.iterdir()] == ["ctdata.duckdb"]


def test_the_warehouse_records_its_schema_version(history):
    conn = duckdb.connect(str(history.db_path), read_only=True)
    try:
        assert stored_schema_version(conn) == SCHEMA_VERSION
    finally:
        conn.close()


# --- the app token -----------------------------------------------------------------------


def test_a_backup_never_holds_the_app_token(tmp_path):
    with serve("socrata", socrata_catalog(30)) as portal:
        portals = write_portal_file(tmp_path, [portal_entry("ct", portal)])
        completed = run_ctdata(
            tmp_path,
            "nightly",
            SOCRATA_APP_TOKEN=TOKEN,
            CTDATA_PORTALS=str(portals),
            CTDATA_HARVEST_RETRIES="0",
        )
    assert completed.returncode == 0, completed.stderr
    assert {request.headers.get("X-App-Token") for request in portal.requests} == {TOKEN}
    backups = sorted((tmp_path / "data" / "backups").iterdir())
    assert {path.suffix for path in backups} >= {".duckdb", ".json"}
    assert [path for path in backups if TOKEN.encode() in path.read_bytes()] == []
