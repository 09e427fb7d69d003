"""`catalog.version_runs` (version_runs.py): the runs of consecutive nights each record version
was held, so FR-6 reads versions instead of a row per asset and night of its window.

Built once from the stored snapshots. Files that recorded schema version 1 before migrations
were numbered already keep their runs up to date: the step finds the table filled and leaves
it."""

from __future__ import annotations

import duckdb

from ctdata_pipeline.catalog.version_runs import rebuild_version_runs
from ctdata_pipeline.warehouse import scalar

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS catalog.version_runs (
    portal VARCHAR NOT NULL,
    version_id BIGINT NOT NULL,
    first_night DATE NOT NULL,
    last_night DATE NOT NULL
);
"""


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(TABLE_SQL)
    if scalar(conn, "SELECT count(*) FROM catalog.version_runs") > 0:
        return
    for (portal,) in conn.execute("SELECT DISTINCT portal FROM catalog.snapshots").fetchall():
        rebuild_version_runs(conn, portal)
