"""A portal's recent nights of `catalog.snapshot_assets` rewritten in the order they are read
back, once NIGHTS_PER_COMPACTION of them are waiting, so that a year of nights costs less to
keep.

A night is appended as the harvest staged it: its rows in the portal's order, so every column
segment holds thousands of unrelated asset ids, version ids (60-bit hashes) and view counts,
and they compress poorly. The same rows ordered by asset and night put an asset's nights side
by side: its id, its version (which changes a few times a year) and its counters (which grow
slowly) become runs and small steps, which DuckDB stores as RLE, dictionary and delta-encoded
bit-packing. For a year of a 10,000-asset catalog, 79 MB of these rows become 35 MB.

The nights written since a portal's last compaction are listed in `catalog.unsorted_nights`
(migrations/0005_unsorted_nights.py). When a night's write brings the portal's list to
NIGHTS_PER_COMPACTION, the same transaction takes those nights' rows out and puts them back
ordered, and empties the list: the rows are the same before and after, only their order on
disk changes, and a failed write changes neither. DuckDB reuses the freed blocks after the next
checkpoint. A DuckLake does the same (one sorted data file instead of one per night)."""

from __future__ import annotations

from datetime import date

import duckdb

from ctdata_pipeline.warehouse import scalar

# About a month: a portal's compaction rewrites this many nights of its rows (300,000 for a
# 10,000-asset catalog) once a month; fewer would rewrite more often for smaller runs.
NIGHTS_PER_COMPACTION = 30

PENDING = """
    SELECT snapshot_date FROM catalog.unsorted_nights WHERE portal = $portal
"""


def night_written(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> None:
    """List the night just written as unsorted; compact the portal's unsorted nights once
    there are NIGHTS_PER_COMPACTION of them."""
    parameters = {"portal": portal, "night": night}
    conn.execute(
        f"""
        INSERT INTO catalog.unsorted_nights
        SELECT $portal, $night WHERE $night NOT IN ({PENDING})
        """,
        parameters,
    )
    pending = scalar(conn, f"SELECT count(*) FROM ({PENDING})", {"portal": portal})
    if pending >= NIGHTS_PER_COMPACTION:
        compact(conn, portal)


def compact(conn: duckdb.DuckDBPyConnection, portal: str) -> None:
    """Rewrite the portal's unsorted nights ordered by asset and night, in the caller's
    transaction."""
    parameters = {"portal": portal}
    pending_rows = f"""
        FROM catalog.snapshot_assets
        WHERE portal = $portal AND snapshot_date IN ({PENDING})
    """
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE compacting AS
        SELECT * {pending_rows} ORDER BY asset_id, snapshot_date
        """,
        parameters,
    )
    conn.execute(f"DELETE {pending_rows}", parameters)
    # A table scan returns rows in insertion order, so they are stored as sorted above.
    conn.execute("INSERT INTO catalog.snapshot_assets SELECT * FROM compacting")
    conn.execute("DROP TABLE compacting")
    conn.execute("DELETE FROM catalog.unsorted_nights WHERE portal = $portal", parameters)
