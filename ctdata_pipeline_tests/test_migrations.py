"""The catalog's numbered migrations on real DuckDB files: a file written before this release,
or before versions were recorded, is brought to the current layout once, keeping every row;
a second pass changes nothing; a step that fails leaves the file at the version before it."""

from datetime import date, timedelta

import duckdb
import pytest

from ctdata_pipeline.catalog.migrations import Migration, migrate, migrations
from ctdata_pipeline.catalog.normalize import ASSET_COLUMNS
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.version_runs import RUNS_DIFFER_SQL
from ctdata_pipeline.harvest.staging import COUNTER_COLUMNS
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.schema_version import SCHEMA_VERSION, stored_schema_version
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    database_contents,
    socrata_catalog,
    store_night,
)

PORTAL = Portal(
    name="ct", kind="socrata", url="https://data.ct.gov", custom_fields=CT_CUSTOM_FIELDS
)
NIGHT = date(2025, 3, 1)


def stored_history(path):
    """A file with two stored nights of 30 assets, one renamed on the second night."""
    conn = connect(path)
    ensure_schema(conn)
    records = socrata_catalog(30, datasets_only=True)
    store_night(conn, PORTAL, NIGHT, records)
    records[3]["resource"]["name"] = "Renamed"
    store_night(conn, PORTAL, NIGHT + timedelta(days=1), records)
    conn.close()


def steps(conn):
    applied = migrate(conn)
    return [step.name for step in applied]


def test_the_migrations_are_numbered_up_to_the_schema_version():
    assert [step.version for step in migrations()] == list(range(1, SCHEMA_VERSION + 1))
    assert [step.name for step in migrations()][:2] == ["0001_catalog_tables", "0002_version_runs"]


def test_the_migrations_make_the_tables_the_code_writes():
    """What normalize.py and the harvest write has a column of its type: a column added to the
    code without a migration fails here."""
    conn = duckdb.connect()
    ensure_schema(conn)
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in ASSET_COLUMNS.items())
    conn.execute(f"CREATE TEMP TABLE written ({columns})")

    def types(table):
        return dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ?",
                [table],
            ).fetchall()
        )

    stored = types("asset_versions")
    assert {name: stored.get(name) for name in ASSET_COLUMNS} == types("written")
    assert set(COUNTER_COLUMNS) <= set(types("snapshot_assets"))
    assert stored_schema_version(conn) == SCHEMA_VERSION


def test_a_file_of_the_previous_release_is_upgraded_once(tmp_path):
    """Schema version 1 as the release before numbered migrations wrote it: every table, its
    runs kept up to date, version 1 recorded. It gets 0002 to 0005 only, which keep every row
    (0003 finds no metrics or board tables in it, 0004 no identifier changes) and list its two
    nights as not yet compacted (0005)."""
    db = tmp_path / "ctdata.duckdb"
    stored_history(db)
    with duckdb.connect(str(db)) as conn:
        conn.execute("UPDATE main.schema_version SET version = 1")
        conn.execute("DROP TABLE catalog.unsorted_nights")
    before = database_contents(db)

    conn = connect(db)
    assert steps(conn) == [
        "0002_version_runs",
        "0003_agency_as_published",
        "0004_dataset_identity",
        "0005_unsorted_nights",
    ]
    assert steps(conn) == []
    ensure_schema(conn)
    conn.close()
    after = database_contents(db)
    assert after.pop("main.schema_version") == [(SCHEMA_VERSION,)]
    assert after.pop("catalog.unsorted_nights") == [
        ("ct", NIGHT),
        ("ct", NIGHT + timedelta(days=1)),
    ]
    before.pop("main.schema_version")
    assert after == before


def test_a_file_from_before_versions_were_recorded_gets_every_step(tmp_path):
    """No version row, no runs table, an asset_versions without the newest columns: the file
    gains them (NULL on the stored versions), its runs are built from its snapshots, and a
    second pass writes nothing."""
    db = tmp_path / "ctdata.duckdb"
    stored_history(db)
    with duckdb.connect(str(db)) as conn:
        conn.execute("DROP TABLE main.schema_version")
        conn.execute("DROP TABLE catalog.version_runs")
        conn.execute("DROP VIEW catalog.assets")
        conn.execute("DROP MACRO TABLE catalog.changes")
        conn.execute("ALTER TABLE catalog.asset_versions DROP COLUMN schema_errors")
        conn.execute("ALTER TABLE catalog.asset_versions DROP COLUMN schema_valid")
        held = conn.execute("SELECT * FROM catalog.snapshot_assets ORDER BY ALL").fetchall()

    conn = connect(db)
    assert steps(conn) == [
        "0001_catalog_tables",
        "0002_version_runs",
        "0003_agency_as_published",
        "0004_dataset_identity",
        "0005_unsorted_nights",
    ]
    ensure_schema(conn)
    assert conn.execute("SELECT * FROM catalog.snapshot_assets ORDER BY ALL").fetchall() == held
    assert conn.execute("SELECT count(*) FROM catalog.version_runs").fetchone()[0] == 31
    assert conn.execute(RUNS_DIFFER_SQL, {"portal": None}).fetchall() == []
    assert conn.execute(
        "SELECT count(*), count(schema_errors) FROM catalog.assets WHERE snapshot_date = ?",
        [NIGHT],
    ).fetchone() == (30, 0)
    conn.close()
    migrated = database_contents(db)

    conn = connect(db)
    assert steps(conn) == []
    ensure_schema(conn)
    conn.close()
    assert database_contents(db) == migrated


def test_a_step_that_fails_leaves_the_file_at_the_version_before_it(tmp_path):
    db = tmp_path / "ctdata.duckdb"
    stored_history(db)
    before = database_contents(db)

    def half_done(conn):
        conn.execute("CREATE TABLE catalog.half_done (x INTEGER)")
        raise duckdb.IOException("No space left on device")

    broken = Migration(SCHEMA_VERSION + 1, f"{SCHEMA_VERSION + 1:04d}_broken", half_done)
    conn = connect(db)
    with pytest.raises(duckdb.IOException, match="No space left"):
        migrate(conn, [*migrations(), broken])
    conn.close()
    assert database_contents(db) == before
