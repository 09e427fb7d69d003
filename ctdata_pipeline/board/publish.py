"""Publish one portal's night to the board tables, in one transaction, checked against the plan
metrics they come from: a table that disagrees with its metric is never left behind."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from ctdata_pipeline.metrics.agencies import alias_parameters, define_canonical_agency
from ctdata_pipeline.warehouse import run_sql, scalar, sql, transaction

SQL_DIR = Path(__file__).with_name("sql")
BOARD_TABLES = ("missing_metadata", "stale_datasets", "agency_scorecard", "catalog_changes")
RANKED_AT = 5  # agencies with fewer in-scope datasets are listed, not ranked

# What each table must add up to: (table, what that is, a query of the night's metrics). Each
# query is completed with the night's snapshot_date and portal.
CONSISTENCY = (
    (
        "missing_metadata",
        "MD-2's in-scope datasets not meeting the standard",
        "SELECT denominator - numerator FROM board.plan_metrics"
        " WHERE metric = 'pct_meets_ct_standard' AND agency IS NULL",
    ),
    (
        "stale_datasets",
        "FR-2's OVERDUE + DELINQUENT datasets",
        "SELECT numerator FROM board.plan_metrics WHERE metric = 'pct_stale' AND agency IS NULL",
    ),
    (
        "agency_scorecard",
        "the agencies with in-scope datasets",
        "SELECT count(DISTINCT agency) FROM metrics.datasets WHERE true",
    ),
    (
        "catalog_changes",
        "INV-2's datasets added + removed + renamed",
        "SELECT coalesce(sum(value), 0) FROM board.plan_metrics"
        " WHERE metric_id = 'INV-2' AND agency IS NULL",
    ),
)
NIGHT_FILTER = " AND snapshot_date = $snapshot_date AND portal = $portal"


class BoardInconsistent(Exception):
    """A board table disagreed with the metric it lists; nothing was written."""


@dataclass(frozen=True)
class BoardNight:
    snapshot_date: date
    portal: str
    rows: dict[str, int]


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(sql("schema.sql", SQL_DIR))


def publish_night(
    conn: duckdb.DuckDBPyConnection,
    portal: str,
    snapshot_date: date,
    aliases: Mapping[str, str] | None = None,
) -> BoardNight:
    """Replace the night's rows of every board table; raise BoardInconsistent (and write
    nothing) if a table does not add up to its metric. `aliases` ({variant: canonical}, the
    ones the night's metrics were computed with) names the agency of catalog_changes; the
    other tables read it from the metrics."""
    ensure_schema(conn)
    parameters = {
        "snapshot_date": snapshot_date,
        "portal": portal,
        "ranked_at": RANKED_AT,
        **alias_parameters(aliases or {}),
    }
    define_canonical_agency(conn)
    with transaction(conn):
        for table in BOARD_TABLES:
            conn.execute(
                f"DELETE FROM board.{table} WHERE snapshot_date = ? AND portal = ?",
                [snapshot_date, portal],
            )
            run_sql(conn, sql(f"{table}.sql", SQL_DIR), parameters)
        rows = {table: board_rows(conn, table, portal, snapshot_date) for table in BOARD_TABLES}
        problems = board_problems(conn, portal, snapshot_date)
        if problems:
            raise BoardInconsistent(
                f"{portal} {snapshot_date}: the board tables do not add up, nothing was "
                "written: " + "; ".join(problems)
            )
    return BoardNight(snapshot_date=snapshot_date, portal=portal, rows=rows)


def board_rows(
    conn: duckdb.DuckDBPyConnection, table: str, portal: str, snapshot_date: date
) -> int:
    return scalar(
        conn,
        f"SELECT count(*) FROM board.{table} WHERE snapshot_date = ? AND portal = ?",
        [snapshot_date, portal],
    )


def board_problems(conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date) -> list[str]:
    """How the night's board tables disagree with the metrics they list (none: they add up)."""
    parameters = {"snapshot_date": snapshot_date, "portal": portal}
    problems = []
    for table, meaning, query in CONSISTENCY:
        rows = board_rows(conn, table, portal, snapshot_date)
        run_sql(conn, query + NIGHT_FILTER, parameters)
        expected = conn.fetchall()
        expected_count = int(expected[0][0] or 0) if expected else 0
        if rows != expected_count:
            problems.append(f"board.{table} has {rows} rows but {meaning} are {expected_count}")
    return problems
