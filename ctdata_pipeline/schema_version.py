"""The warehouse's schema version: one row that says which layout of tables a file holds.

The number of the last catalog migration a file has had (catalog/migrations/: every write path
passes through the catalog's `ensure_schema`, which applies them), so a restore can tell a
backup this code cannot read from one it can. SCHEMA_VERSION is the number of the newest
migration: a change a file written before would need migrating for is a new migration."""

from __future__ import annotations

import duckdb

from ctdata_pipeline.warehouse import first_row, scalar

SCHEMA_VERSION = 5
TABLE = "main.schema_version"


class SchemaTooNew(Exception):
    """A file written by a newer ctdata: this code does not know its tables."""


def stored_schema_version(conn: duckdb.DuckDBPyConnection) -> int | None:
    """The version a file records, or None for a file written before versions were recorded
    (or one that holds no warehouse at all)."""
    exists = first_row(
        conn,
        "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'schema_version'",
    )
    if exists is None:
        return None
    return scalar(conn, f"SELECT max(version) FROM {TABLE}")


def check_schema_version(conn: duckdb.DuckDBPyConnection, where: str) -> int | None:
    """The stored version; SchemaTooNew if it is newer than this code knows."""
    stored = stored_schema_version(conn)
    if stored is not None and stored > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{where} has schema version {stored}, newer than this ctdata knows "
            f"({SCHEMA_VERSION}): upgrade ctdata to use it"
        )
    return stored


def record_schema_version(conn: duckdb.DuckDBPyConnection, version: int) -> None:
    """Store `version` as the file's one row: the migration it has just had."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER NOT NULL)")
    conn.execute(f"DELETE FROM {TABLE}")
    conn.execute(f"INSERT INTO {TABLE} VALUES (?)", [version])
