"""probes.targets and probes.results (schema.sql; README, "Probe results"): the night's targets
written whole, every probe kept with its probe time, a re-run of a night replacing its rows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import duckdb

from ctdata_pipeline.probes.model import ProbeKind, ProbeResult
from ctdata_pipeline.probes.targets import Target
from ctdata_pipeline.warehouse import sql, transaction

SCHEMA_SQL = "schema.sql"
HERE = Path(__file__).parent


def ensure_probe_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(sql(SCHEMA_SQL, HERE))


def snapshot_time(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> datetime | None:
    """The instant the night's stored snapshot stands for (None: no snapshot stored)."""
    rows = conn.execute(
        "SELECT snapshot_time FROM catalog.snapshots WHERE portal = ? AND snapshot_date = ?",
        [portal, night],
    ).fetchall()
    return rows[0][0] if rows else None


def write_targets(
    conn: duckdb.DuckDBPyConnection,
    portal: str,
    night: date,
    kinds: Sequence[ProbeKind],
    targets: Iterable[Target],
) -> int:
    """Replace the night's targets of `kinds` with `targets`; returns the rows written."""
    # One row per (asset, probe, target), the first named: the table's key.
    keyed = {
        (target.asset_id, target.item.kind, target.item.target): target
        for target in reversed(list(targets))
        if target.item.kind in kinds
    }
    mine = list(reversed(keyed.values()))
    columns = {
        "asset_id": [target.asset_id for target in mine],
        "probe": [target.item.kind for target in mine],
        "target": [target.item.target for target in mine],
        "url": [target.item.url for target in mine],
        "columns": [
            list(target.item.columns) if target.item.kind == "content_date" else None
            for target in mine
        ],
    }
    with transaction(conn):
        conn.execute(
            "DELETE FROM probes.targets WHERE portal = ? AND snapshot_date = ? "
            "AND list_contains(?, probe)",
            [portal, night, list(kinds)],
        )
        if mine:
            # One statement for the night, column by column (a row at a time is ~1 ms each).
            conn.execute(
                """
                INSERT INTO probes.targets
                SELECT ?, ?::DATE, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[][])
                """,
                [portal, night, *columns.values()],
            )
    return len(mine)


def last_probed(
    conn: duckdb.DuckDBPyConnection, portal: str, night: date
) -> dict[tuple[str, str], date]:
    """(kind, target) -> the last night before `night` that probed it (whatever the outcome:
    a not_checked result was tried, and waits its turn like the others)."""
    rows = conn.execute(
        """
        SELECT probe, target, max(snapshot_date)
        FROM probes.results
        WHERE portal = ? AND snapshot_date < ?
        GROUP BY probe, target
        """,
        [portal, night],
    ).fetchall()
    return {(probe, target): last for probe, target, last in rows}


def write_results(
    conn: duckdb.DuckDBPyConnection,
    portal: str,
    night: date,
    kinds: Sequence[ProbeKind],
    results: Iterable[ProbeResult],
    *,
    replayed: bool,
) -> int:
    """Replace the night's results of `kinds` with `results`, in one transaction."""
    rows = list(results)
    columns = [
        [r.item.kind for r in rows],
        [r.item.target for r in rows],
        [r.probed_at for r in rows],
        [r.request for r in rows],
        [r.outcome for r in rows],
        [r.status_code for r in rows],
        [r.final_url for r in rows],
        [[{"name": name, "at": at} for name, at in r.observed] for r in rows],
        [r.detail for r in rows],
        [r.elapsed_ms for r in rows],
    ]
    with transaction(conn):
        conn.execute(
            "DELETE FROM probes.results WHERE portal = ? AND snapshot_date = ? "
            "AND list_contains(?, probe)",
            [portal, night, list(kinds)],
        )
        if rows:
            conn.execute(
                """
                INSERT INTO probes.results
                SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), ?::DATE,
                       unnest(?::TIMESTAMPTZ[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       unnest(?::INTEGER[]), unnest(?::VARCHAR[]),
                       unnest(?::STRUCT(name VARCHAR, "at" TIMESTAMPTZ)[][]),
                       unnest(?::VARCHAR[]), unnest(?::INTEGER[]), ?
                """,
                [portal, *columns[:2], night, *columns[2:], replayed],
            )
    return len(rows)
