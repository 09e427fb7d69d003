"""The DuckDB file: one connection at a time, opened late, closed always."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import tenacity
from pydantic import Field

from ctdata_pipeline.failures import failing_clearly

# Another process (a run's other step, an open DuckDB CLI) may hold the file's lock for a while.
LOCK_WAIT_SECONDS = 120
# The Dagster concurrency pool of every step that writes the file: one at a time, across runs.
DUCKDB_POOL = "duckdb"
STORAGE_VERSION = "v1.2.0"
_PARAMETER = re.compile(r"\$([a-z_]+)")


class DuckDBWarehouse(dg.ConfigurableResource):
    """The pipeline's DuckDB file (CTDATA_DB): catalog snapshots and board tables.

    Like dagster-duckdb's DuckDBResource it retries while another process holds the file's
    lock; unlike it, it always closes the connection (also when the body raises), so a failed
    step never leaves the file locked, and it reads timestamps in UTC."""

    database: str = Field(description="Path of the DuckDB file (CTDATA_DB).")

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = Path(self.database)
        action = "read the database" if read_only else "write the database"
        with failing_clearly(action, path, os_errors=False, writing=not read_only):
            conn = connect(path, read_only=read_only)
            try:
                yield conn
            finally:
                conn.close()


# DuckDB names a file's catalog after the file, so a file named like one of the pipeline's
# schemas ("metrics.duckdb") would make `metrics.datasets` ambiguous.
RESERVED_FILE_NAMES = frozenset({"catalog", "metrics", "board", "main", "temp", "system", "memory"})


class WarehouseNameError(ValueError):
    """The DuckDB file's name cannot be used."""


def check_database_name(path: Path) -> None:
    if path.stem.lower() in RESERVED_FILE_NAMES:
        raise WarehouseNameError(
            f"CTDATA_DB {path}: DuckDB would name the file's catalog {path.stem!r}, the same as "
            f"one of the pipeline's schemas; choose another file name (e.g. ctdata.duckdb)"
        )


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (with backoff) while another process holds its lock."""
    check_database_name(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_lock_conflict),
        stop=tenacity.stop_after_delay(LOCK_WAIT_SECONDS),
        wait=tenacity.wait_exponential(multiplier=0.05, max=5),
        reraise=True,
    )
    # A new file in DuckDB's storage format 1.2 (readable by DuckDB 1.2 and later), which can
    # compress the raw records with zstd; an existing file keeps the format it has.
    config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
    conn = retrying(duckdb.connect, str(path), read_only=read_only, config=config)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One all-or-nothing write. A COMMIT that fails (a full disk) has already ended the
    transaction, so the ROLLBACK after it fails too; that must not hide why the write failed."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise


def first_row(
    conn: duckdb.DuckDBPyConnection, query: str, parameters: Sequence[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, read to the end (DuckDB 2 keeps a half-read result open and
    refuses the connection's next relational call)."""
    rows = conn.execute(query, parameters or []).fetchall()
    return rows[0] if rows else None


def scalar(
    conn: duckdb.DuckDBPyConnection, query: str, parameters: Sequence[Any] | None = None
) -> Any:
    """The single value a query returns."""
    row = first_row(conn, query, parameters)
    return row[0] if row else None


@cache
def sql(name: str, folder: Path) -> str:
    """The text of a query file of the pipeline's (each module keeps its own `sql/` folder)."""
    return (folder / name).read_text(encoding="utf-8")


def run_sql(conn: duckdb.DuckDBPyConnection, text: str, parameters: dict[str, Any]) -> None:
    """Execute one statement with the named parameters it uses (DuckDB refuses extra ones)."""
    used = set(_PARAMETER.findall(text))
    conn.execute(text, {name: value for name, value in parameters.items() if name in used})


def _is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()
