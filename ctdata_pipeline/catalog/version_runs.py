"""`catalog.version_runs`: the runs of consecutive snapshots of a portal in which each record
version was held, kept as nights are written.

FR-6 asks which record versions a portal's snapshots of the last 365 days held. Read from
`catalog.snapshot_assets` that is a row per asset and night of the window (36.5 million for a
100,000-asset portal), so the metric step grew with the history stored. A version's runs answer
it from a row per version and run: a run [first_night, last_night] overlapping the window means
a snapshot inside the window held the version (every snapshot of the run held it, and the night
itself is a snapshot of the window).

A night written after the portal's latest extends the runs of the versions it still holds and
opens runs for the others; writing the latest night again first takes it back out of the runs;
a night written before the latest (an import, a backfill) rebuilds the portal's runs from its
snapshots. `ctdata check` compares the runs with a rebuild. The table itself is created (and
built once for a file stored before it) by migrations/0002_version_runs.py."""

from __future__ import annotations

from datetime import date

import duckdb

from ctdata_pipeline.warehouse import scalar

# The runs as the snapshots define them (of one portal, or of all when $portal is NULL): gaps
# and islands over each portal's sequence of snapshots.
RUNS_FROM_SNAPSHOTS_SQL = """
WITH nights AS (
    SELECT portal, snapshot_date,
           row_number() OVER (PARTITION BY portal ORDER BY snapshot_date) AS position
    FROM catalog.snapshots
    WHERE $portal IS NULL OR portal = $portal
),
islands AS (
    SELECT m.portal, m.version_id, m.snapshot_date,
           n.position - row_number() OVER (
               PARTITION BY m.portal, m.version_id ORDER BY n.position
           ) AS island
    FROM catalog.snapshot_assets AS m JOIN nights AS n USING (portal, snapshot_date)
)
SELECT portal, version_id, min(snapshot_date) AS first_night, max(snapshot_date) AS last_night
FROM islands
GROUP BY portal, version_id, island
"""

# `ctdata check`: (night, portal, problem) when the stored runs differ from a rebuild.
RUNS_DIFFER_SQL = f"""
WITH expected AS ({RUNS_FROM_SNAPSHOTS_SQL}),
differing AS (
    (SELECT * FROM expected EXCEPT ALL SELECT * FROM catalog.version_runs)
    UNION ALL
    (SELECT * FROM catalog.version_runs EXCEPT ALL SELECT * FROM expected)
)
SELECT min(first_night), portal,
       format('{{}} runs of record versions differ from the snapshots', count(*))
FROM differing GROUP BY portal
"""


def rebuild_version_runs(conn: duckdb.DuckDBPyConnection, portal: str) -> None:
    conn.execute("DELETE FROM catalog.version_runs WHERE portal = $portal", {"portal": portal})
    conn.execute(f"INSERT INTO catalog.version_runs {RUNS_FROM_SNAPSHOTS_SQL}", {"portal": portal})


def take_night_out(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> bool:
    """Before `night` is (re)written: take it out of the runs if it is the latest night;
    True when it lies before the latest night (the runs are then rebuilt afterwards)."""
    latest = _latest_night(conn, portal)
    if latest is None or night > latest:
        return False
    if night < latest:
        return True
    parameters = {"portal": portal, "night": night, "previous": _night_before(conn, portal, night)}
    conn.execute(
        "DELETE FROM catalog.version_runs "
        "WHERE portal = $portal AND first_night = $night AND last_night = $night",
        {"portal": portal, "night": night},
    )
    if parameters["previous"] is not None:
        conn.execute(
            "UPDATE catalog.version_runs SET last_night = $previous "
            "WHERE portal = $portal AND last_night = $night",
            parameters,
        )
    return False


def add_night(
    conn: duckdb.DuckDBPyConnection, portal: str, night: date, *, out_of_order: bool
) -> None:
    """After `night` is written (its snapshot row included): add it to the runs."""
    if out_of_order:
        rebuild_version_runs(conn, portal)
        return
    parameters = {"portal": portal, "night": night, "previous": _night_before(conn, portal, night)}
    tonight = """
        SELECT version_id FROM catalog.snapshot_assets
        WHERE portal = $portal AND snapshot_date = $night
    """
    if parameters["previous"] is not None:
        conn.execute(
            f"""
            UPDATE catalog.version_runs SET last_night = $night
            WHERE portal = $portal AND last_night = $previous AND version_id IN ({tonight})
            """,
            parameters,
        )
    conn.execute(
        f"""
        INSERT INTO catalog.version_runs
        SELECT DISTINCT $portal, version_id, $night, $night FROM ({tonight}) AS t
        WHERE NOT EXISTS (
            SELECT 1 FROM catalog.version_runs AS r
            WHERE r.portal = $portal AND r.last_night = $night AND r.version_id = t.version_id
        )
        """,
        {"portal": portal, "night": night},
    )


def _latest_night(conn: duckdb.DuckDBPyConnection, portal: str) -> date | None:
    return scalar(
        conn, "SELECT max(snapshot_date) FROM catalog.snapshots WHERE portal = ?", [portal]
    )


def _night_before(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> date | None:
    return scalar(
        conn,
        "SELECT max(snapshot_date) FROM catalog.snapshots WHERE portal = ? AND snapshot_date < ?",
        [portal, night],
    )
