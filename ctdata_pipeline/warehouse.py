"""The DuckDB file: one connection at a time, opened late, closed always."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
import tenacity
from pydantic import Field

# Another process (a run's other step, an open DuckDB CLI) may hold the file's lock for a while.
LOCK_WAIT_SECONDS = 120
# The Dagster concurrency pool of every step that writes the file: one at a time, across runs.
DUCKDB_POOL = "duckdb"


class DuckDBWarehouse(dg.ConfigurableResource):
    """The pipeline's DuckDB file (CTDATA_DB): catalog snapshots and board tables.

    Like dagster-duckdb's DuckDBResource it retries while another process holds the file's
    lock; unlike it, it always closes the connection (also when the body raises), so a failed
    step never leaves the file locked, and it reads timestamps in UTC."""

    database: str = Field(description="Path of the DuckDB file (CTDATA_DB).")

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = connect(Path(self.database), read_only=read_only)
        try:
            yield conn
        finally:
            conn.close()


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (with backoff) while another process holds its lock."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_lock_conflict),
        stop=tenacity.stop_after_delay(LOCK_WAIT_SECONDS),
        wait=tenacity.wait_exponential(multiplier=0.05, max=5),
        reraise=True,
    )
    conn = retrying(duckdb.connect, str(path), read_only=read_only)
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def _is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()
