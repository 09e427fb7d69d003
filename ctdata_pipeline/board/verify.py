"""`ctdata check`: verify a DuckDB file the way an auditor would, without writing to it.

First the file itself: a DuckDB file, every table there, every row of every table read back
(DuckDB checks each block's checksum as it reads, so a truncated or overwritten file fails
here); damage of that kind is one line (WarehouseDamaged). Then each check is one query that
lists what is wrong, one row per (night, portal): every snapshot whole, its metrics all there
and plausible, the board tables adding up to the metrics they list, and no board or metric rows
for a night that has no snapshot. An empty answer is a pass."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from ctdata_pipeline.board.publish import BOARD_TABLES, board_problems
from ctdata_pipeline.catalog.version_runs import RUNS_DIFFER_SQL
from ctdata_pipeline.failures import duckdb_reason
from ctdata_pipeline.metrics.definitions import NIGHTLY_METRIC_IDS
from ctdata_pipeline.warehouse import LOCK_WAIT_SECONDS, connect, first_row, run_sql

# Shown per check; the rest is counted.
MAX_DETAILS = 10


@dataclass(frozen=True)
class Check:
    title: str
    sql: str  # -> (snapshot_date, portal, problem) for each problem


CHECKS = (
    Check(
        "every snapshot is whole (its assets stored = its assets counted)",
        """
        WITH stored AS (
            SELECT snapshot_date, portal, count(*) AS assets,
                   count(*) FILTER (WHERE in_scope) AS in_scope
            FROM catalog.assets GROUP BY ALL
        )
        SELECT s.snapshot_date, s.portal,
               format('{} assets and {} in-scope datasets stored; the snapshot counted {} and {}',
                      coalesce(stored.assets, 0), coalesce(stored.in_scope, 0),
                      s.assets_total, s.datasets_in_scope)
        FROM catalog.snapshots AS s LEFT JOIN stored USING (snapshot_date, portal)
        WHERE coalesce(stored.assets, 0) <> s.assets_total
           OR coalesce(stored.in_scope, 0) <> s.datasets_in_scope
        """,
    ),
    Check(
        "every asset id appears once per snapshot, and every stored version exists",
        """
        SELECT snapshot_date, portal,
               format('{} ids appear more than once', count(*) - count(DISTINCT asset_id))
        FROM catalog.snapshot_assets GROUP BY ALL
        HAVING count(*) <> count(DISTINCT asset_id)
        UNION ALL
        SELECT snapshot_date, portal, format('{} assets point to a missing version', count(*))
        FROM catalog.snapshot_assets AS m ANTI JOIN catalog.asset_versions USING (version_id)
        GROUP BY ALL
        """,
    ),
    Check(
        "every snapshot has every metric, over all its in-scope datasets",
        """
        WITH expected AS (SELECT unnest($metric_ids) AS metric_id),
        missing AS (
            SELECT s.snapshot_date, s.portal, e.metric_id
            FROM catalog.snapshots AS s CROSS JOIN expected AS e
            WHERE NOT EXISTS (
                SELECT 1 FROM board.plan_metrics AS m
                WHERE m.snapshot_date = s.snapshot_date AND m.portal = s.portal
                  AND m.metric_id = e.metric_id AND m.agency IS NULL
            )
        ),
        assessed AS (
            SELECT snapshot_date, portal, count(*) AS datasets FROM metrics.datasets GROUP BY ALL
        )
        SELECT snapshot_date, portal,
               'metrics missing: ' || string_agg(metric_id, ', ' ORDER BY metric_id)
        FROM missing GROUP BY ALL
        UNION ALL
        SELECT s.snapshot_date, s.portal,
               format('{} datasets assessed, {} in scope',
                      coalesce(assessed.datasets, 0), s.datasets_in_scope)
        FROM catalog.snapshots AS s LEFT JOIN assessed USING (snapshot_date, portal)
        WHERE coalesce(assessed.datasets, 0) <> s.datasets_in_scope
        """,
    ),
    Check(
        "INV-1 equals the snapshot's own counts",
        """
        SELECT s.snapshot_date, s.portal,
               format('{} is {} in board.plan_metrics but {} in catalog.snapshots',
                      m.metric, m.value, CASE m.metric WHEN 'assets_total' THEN s.assets_total
                                                       ELSE s.datasets_in_scope END)
        FROM catalog.snapshots AS s
        JOIN board.plan_metrics AS m USING (snapshot_date, portal)
        WHERE m.agency IS NULL AND m.metric IN ('assets_total', 'datasets_in_scope')
          AND m.value IS DISTINCT FROM CASE m.metric WHEN 'assets_total' THEN s.assets_total
                                                     ELSE s.datasets_in_scope END
        """,
    ),
    Check(
        "every metric value is possible (percentages 0-100, numerator <= denominator)",
        """
        SELECT snapshot_date, portal,
               format('{} ({}): {}', metric, coalesce(agency, 'whole portal'), CASE
                   WHEN unit = 'percent' AND (value < 0 OR value > 100)
                       THEN 'percentage ' || value || ' outside 0-100'
                   WHEN numerator < 0 OR denominator < 0 THEN 'negative count'
                   WHEN unit = 'percent' AND numerator > denominator
                       THEN 'numerator ' || numerator || ' above denominator ' || denominator
                   ELSE 'no value and no reason'
               END)
        FROM board.plan_metrics
        WHERE (unit = 'percent' AND (value < 0 OR value > 100))
           OR numerator < 0 OR denominator < 0
           OR (unit = 'percent' AND numerator > denominator)
           OR (value IS NULL AND note IS NULL)
        """,
    ),
    Check(
        "no metric or board rows for a night without a snapshot",
        """
        WITH rows_by_night AS (
            SELECT snapshot_date, portal, 'board.plan_metrics' AS held_in FROM board.plan_metrics
            UNION ALL SELECT snapshot_date, portal, 'metrics.datasets' FROM metrics.datasets
            UNION ALL SELECT snapshot_date, portal, 'board.missing_metadata'
                FROM board.missing_metadata
            UNION ALL SELECT snapshot_date, portal, 'board.stale_datasets' FROM board.stale_datasets
            UNION ALL SELECT snapshot_date, portal, 'board.agency_scorecard'
                FROM board.agency_scorecard
            UNION ALL SELECT snapshot_date, portal, 'board.catalog_changes'
                FROM board.catalog_changes
        )
        SELECT snapshot_date, portal, format('{} rows in {}', count(*), held_in)
        FROM rows_by_night ANTI JOIN catalog.snapshots USING (snapshot_date, portal)
        GROUP BY snapshot_date, portal, held_in
        """,
    ),
)
BOARD_CHECK = "every board table adds up to the metric it lists"
RUNS_CHECK = "the runs of record versions (FR-6's input) match the snapshots"
READ_CHECK = "every table is there and every row reads back (block checksums hold)"
# What the checks read (catalog.version_runs may not exist yet: see _version_runs_match).
REQUIRED_TABLES = (
    "catalog.snapshots",
    "catalog.asset_versions",
    "catalog.snapshot_assets",
    "metrics.datasets",
    "board.plan_metrics",
    *(f"board.{table}" for table in BOARD_TABLES),
)
REQUIRED_VIEWS = ("catalog.assets",)
# Bytes 8-11 of every DuckDB file (its main header's magic).
DUCKDB_MAGIC = b"DUCK"


class WarehouseDamaged(Exception):
    """The file cannot be checked at all: not a DuckDB file, cut short, a block overwritten, a
    table gone. The message is one line naming the damage."""


@dataclass
class CheckResult:
    title: str
    problems: list[tuple[date, str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Verification:
    snapshots: int
    portals: list[str]
    first_night: date | None
    last_night: date | None
    results: list[CheckResult]
    # Of every row of every table: equal fingerprints, equal contents (see content_fingerprint).
    fingerprint: str

    @property
    def problems(self) -> int:
        return sum(len(result.problems) for result in self.results)


def verify_file(path: Path, lock_wait_seconds: float = LOCK_WAIT_SECONDS) -> Verification:
    """Open `path` read-only and verify it; WarehouseDamaged (naming `path`) when the file itself
    is damaged. Another process holding the file's lock is not damage: WarehouseLocked (naming
    the holder) once `lock_wait_seconds` have passed."""
    size = check_header(path)
    try:
        conn = connect(path, read_only=True, lock_wait_seconds=lock_wait_seconds)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise
        raise WarehouseDamaged(_damage(path, size, error)) from None
    except duckdb.Error as error:
        raise WarehouseDamaged(_damage(path, size, error)) from None
    try:
        return verify(conn)
    except WarehouseDamaged as damage:
        raise WarehouseDamaged(f"{path} {damage}") from None
    except duckdb.Error as error:
        raise WarehouseDamaged(_damage(path, size, error)) from None
    finally:
        conn.close()


def check_header(path: Path) -> int:
    """The file's size; WarehouseDamaged unless it starts as every DuckDB file does."""
    size = path.stat().st_size
    if size == 0:
        raise WarehouseDamaged(f"{path} is empty (0 bytes)")
    with path.open("rb") as head:
        if head.read(12)[8:12] != DUCKDB_MAGIC:
            raise WarehouseDamaged(
                f"{path} is not a DuckDB file (it does not start with DuckDB's header)"
            )
    return size


def _damage(path: Path, size: int, error: duckdb.Error) -> str:
    reason = duckdb_reason(error)
    if "Could not read enough bytes" in reason:
        return f"{path} is truncated: DuckDB needs bytes past its end ({size:,} bytes)"
    checksum = re.search(r"checksum .* in block at location (\d+)", reason)
    if checksum:
        return (
            f"{path} is corrupt: the block at byte {int(checksum[1]):,} fails its checksum "
            "(overwritten or damaged on disk)"
        )
    if "not a valid DuckDB database file" in reason:
        return f"{path} is not a DuckDB database DuckDB can open"
    return f"{path} is damaged: {reason}"


def content_fingerprint(conn: duckdb.DuckDBPyConnection) -> str:
    """A digest of every row of every table (per table: its rows and the sum of their hashes,
    so row order does not count). Reading every row also makes DuckDB check every block."""
    tables = conn.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() ORDER BY ALL"
    ).fetchall()
    digest = hashlib.sha256()
    for schema, table in tables:
        rows, total = first_row(
            conn, f'SELECT count(*), sum(hash(t)::HUGEINT) FROM "{schema}"."{table}" AS t'
        )
        digest.update(f"{schema}.{table}:{rows}:{total or 0}\n".encode())
    return digest.hexdigest()


def missing_objects(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The tables and views the checks read that the file does not have."""
    present = {
        f"{schema}.{name}"
        for schema, name in conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = current_database() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database()"
        ).fetchall()
    }
    return [name for name in (*REQUIRED_TABLES, *REQUIRED_VIEWS) if name not in present]


def verify(conn: duckdb.DuckDBPyConnection) -> Verification:
    """Run every check over every night of every portal; WarehouseDamaged when a table or view
    the checks read is gone (duckdb.Error when a block cannot be read)."""
    missing = missing_objects(conn)
    if missing:
        raise WarehouseDamaged(f"is missing {', '.join(missing)} (dropped or never created)")
    fingerprint = content_fingerprint(conn)
    snapshots, portals, first_night, last_night = first_row(
        conn,
        "SELECT count(*), list(DISTINCT portal ORDER BY portal), min(snapshot_date), "
        "max(snapshot_date) FROM catalog.snapshots",
    )
    parameters = {"metric_ids": list(NIGHTLY_METRIC_IDS)}
    results = [CheckResult(READ_CHECK)]
    for check in CHECKS:
        run_sql(conn, check.sql, parameters)
        results.append(CheckResult(check.title, sorted(conn.fetchall())))
    results.append(_board_adds_up(conn))
    results.append(_version_runs_match(conn))
    return Verification(snapshots, portals or [], first_night, last_night, results, fingerprint)


def _board_adds_up(conn: duckdb.DuckDBPyConnection) -> CheckResult:
    """The sums the board step checks before it commits, over every published night."""
    result = CheckResult(BOARD_CHECK)
    nights = conn.execute(
        "SELECT DISTINCT snapshot_date, portal FROM board.plan_metrics ORDER BY ALL"
    ).fetchall()
    for snapshot_date, portal in nights:
        result.problems += [
            (snapshot_date, portal, problem)
            for problem in board_problems(conn, portal, snapshot_date)
        ]
    return result


def _version_runs_match(conn: duckdb.DuckDBPyConnection) -> CheckResult:
    """A database last written before catalog.version_runs existed has none yet: the next
    night written builds them, and there is nothing to compare until then."""
    exists = first_row(
        conn,
        "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'catalog' "
        "AND table_name = 'version_runs'",
    )
    if exists is None:
        return CheckResult(RUNS_CHECK)
    rows = conn.execute(RUNS_DIFFER_SQL, {"portal": None}).fetchall()
    return CheckResult(RUNS_CHECK, sorted(rows))
