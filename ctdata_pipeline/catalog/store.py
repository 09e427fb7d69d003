"""Dated catalog snapshots in DuckDB.

Layout (the spec's `catalog.assets` is a view over it):
- `catalog.snapshots`: one row per (snapshot_date, portal) that is complete;
- `catalog.asset_versions`: each distinct record an asset has had, raw and normalized, stored
  once however many nights it stays the same;
- `catalog.snapshot_assets`: which version of which asset each night holds, with the night's
  view and download counters (the only fields that move every night).

So history costs what changes, not a full copy per night, and every night's raw records stay
available to recompute metrics when a definition changes. A night is written in one
transaction: delete the night, insert it again, drop versions no night uses; a failure anywhere
leaves the previous state exactly as it was."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from ctdata_pipeline.catalog.frequency import normalize_frequency
from ctdata_pipeline.catalog.normalize import (
    ASSET_COLUMNS,
    COUNTER_COLUMNS,
    NormalizeReport,
    merge_counters,
    normalize,
    normalizer_key,
    record_hash,
    split_counters,
)
from ctdata_pipeline.harvest.staging import HarvestSummary
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import first_row, scalar, transaction

CHUNK_ROWS = 5000
STAGED = "staged_assets"

_KEY_COLUMNS = {
    "portal": "VARCHAR NOT NULL",
    "asset_id": "VARCHAR NOT NULL",
    "record_hash": "VARCHAR NOT NULL",
    "normalizer": "VARCHAR NOT NULL",
    "record": "JSON NOT NULL",
}
_COUNTER_TYPES = dict.fromkeys(COUNTER_COLUMNS, "BIGINT")


def _column_list(columns: dict[str, str]) -> str:
    return ",\n    ".join(f"{name} {sql_type}" for name, sql_type in columns.items())


TABLES_SQL = f"""
CREATE SCHEMA IF NOT EXISTS catalog;
CREATE SEQUENCE IF NOT EXISTS catalog.asset_version_ids;

CREATE TABLE IF NOT EXISTS catalog.snapshots (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    snapshot_time TIMESTAMPTZ NOT NULL,
    source_url VARCHAR,
    assets_total INTEGER NOT NULL,
    datasets_in_scope INTEGER NOT NULL,
    result_set_size INTEGER,
    pages INTEGER,
    paging VARCHAR,
    duplicates_dropped INTEGER,
    harvest_seconds DOUBLE,
    origin VARCHAR NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS catalog.asset_versions (
    version_id BIGINT NOT NULL,
    {_column_list(_KEY_COLUMNS)},
    {_column_list(ASSET_COLUMNS)}
);

CREATE TABLE IF NOT EXISTS catalog.snapshot_assets (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    version_id BIGINT NOT NULL,
    {_column_list(_COUNTER_TYPES)}
);

"""

VIEWS_SQL = f"""
CREATE OR REPLACE VIEW catalog.assets AS
SELECT
    m.snapshot_date,
    m.portal,
    m.asset_id,
    s.snapshot_time,
    {", ".join(f"v.{name}" for name in ASSET_COLUMNS)},
    {", ".join(f"m.{name}" for name in COUNTER_COLUMNS)}
FROM catalog.snapshot_assets AS m
JOIN catalog.snapshots AS s USING (snapshot_date, portal)
JOIN catalog.asset_versions AS v USING (version_id);

-- In-scope datasets added, removed or renamed between a portal's night and its previous
-- snapshot (INV-2 and board.catalog_changes). No rows on a portal's first snapshot.
CREATE OR REPLACE MACRO catalog.changes(portal_name, night) AS TABLE
WITH previous AS (
    SELECT max(snapshot_date) AS snapshot_date
    FROM catalog.snapshots
    WHERE portal = portal_name AND snapshot_date < night
),
tonight AS (
    SELECT asset_id, title, agency FROM catalog.assets
    WHERE portal = portal_name AND snapshot_date = night AND in_scope
),
before AS (
    SELECT asset_id, title, agency FROM catalog.assets
    WHERE portal = portal_name AND in_scope
      AND snapshot_date = (SELECT snapshot_date FROM previous)
)
SELECT 'added' AS change, t.asset_id, t.title, t.agency, NULL AS previous_title,
       (SELECT snapshot_date FROM previous) AS previous_date
FROM tonight AS t
WHERE (SELECT snapshot_date FROM previous) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM before AS b WHERE b.asset_id = t.asset_id)
UNION ALL
SELECT 'removed', b.asset_id, b.title, b.agency, b.title, (SELECT snapshot_date FROM previous)
FROM before AS b
WHERE NOT EXISTS (SELECT 1 FROM tonight AS t WHERE t.asset_id = b.asset_id)
UNION ALL
SELECT 'renamed', t.asset_id, t.title, t.agency, b.title, (SELECT snapshot_date FROM previous)
FROM tonight AS t
JOIN before AS b USING (asset_id)
WHERE t.title IS DISTINCT FROM b.title;

CREATE OR REPLACE VIEW catalog.raw_assets AS
SELECT m.snapshot_date, m.portal, m.asset_id, v.record,
    {", ".join(f"m.{name}" for name in COUNTER_COLUMNS)}
FROM catalog.snapshot_assets AS m
JOIN catalog.asset_versions AS v USING (version_id);
"""

# A staged row whose version is already stored carries no record or normalized fields: NULL.
_STAGED_COLUMNS = {
    **_KEY_COLUMNS,
    "record": "JSON",
    **ASSET_COLUMNS,
    **_COUNTER_TYPES,
}
# What NormalizeReport counts, read back from a stored version instead of normalizing again.
_REPORTED_COLUMNS = ("asset_type", "in_scope", "agency_rule", "update_frequency_raw")
_NOT_RENORMALIZED = dict.fromkeys(["record", *ASSET_COLUMNS])


class SnapshotRefused(Exception):
    """A harvest that must not replace the last good snapshot (empty, or suspiciously small)."""


@dataclass(frozen=True)
class SnapshotWritten:
    """What a snapshot write did, for logs and asset metadata."""

    snapshot_date: date
    portal: str
    assets_total: int
    datasets_in_scope: int
    new_versions: int
    previous_date: date | None
    previous_in_scope: int | None
    report: NormalizeReport


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the catalog tables, add columns that a newer normalizer introduced (nights stored
    before keep NULL there until re-normalized), and (re)create the views."""
    conn.execute(TABLES_SQL)
    existing = {
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'catalog' AND table_name = 'asset_versions'"
        ).fetchall()
    }
    for name, sql_type in ASSET_COLUMNS.items():
        if name not in existing:
            conn.execute(f"ALTER TABLE catalog.asset_versions ADD COLUMN {name} {sql_type}")
    conn.execute(VIEWS_SQL)


def stage_records(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    records: Iterable[tuple[str, dict[str, Any], dict[str, int | None] | None]],
) -> NormalizeReport:
    """Normalize (asset_id, record, counters) into a temporary table, in chunks; `counters`
    None means they are still inside the record (a fresh harvest).

    A record identical to a version the portal's latest snapshot holds, under the same rules,
    is not normalized again (its row keeps only its hash and counters): a night then costs
    what changed since the last one, not the whole catalog."""
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED} ({_column_list(_STAGED_COLUMNS)})")
    report = NormalizeReport()
    key = normalizer_key(portal)
    known = _latest_versions(conn, portal.name, key)
    # DuckDB types a pandas object column from a sample of its rows (1,000 by default): a chunk
    # whose first rows are NULL there (reused versions, or a field most records leave empty)
    # would be typed NULL and refuse the values further down. Read whole chunks.
    conn.execute(f"SET pandas_analyze_sample = {CHUNK_ROWS}")
    for chunk in _chunks(_staged_rows(portal, key, records, report, known), CHUNK_ROWS):
        frame = pd.DataFrame.from_records(chunk, columns=list(_STAGED_COLUMNS))
        conn.register("staged_chunk", frame)
        try:
            conn.execute(f"INSERT INTO {STAGED} SELECT * FROM staged_chunk")
        finally:
            conn.unregister("staged_chunk")
    return report


def _latest_versions(
    conn: duckdb.DuckDBPyConnection, portal: str, key: str
) -> dict[str, dict[str, Any]]:
    """Record hash -> the reported fields, of the versions (normalized under `key`) that the
    portal's latest stored snapshot holds: the records a night most likely sees again."""
    rows = conn.execute(
        f"""
        SELECT DISTINCT v.record_hash, {", ".join(f"v.{c}" for c in _REPORTED_COLUMNS)}
        FROM catalog.snapshot_assets AS m
        JOIN catalog.asset_versions AS v USING (version_id)
        WHERE m.portal = $portal AND v.normalizer = $key
          AND m.snapshot_date = (
              SELECT max(snapshot_date) FROM catalog.snapshots WHERE portal = $portal
          )
        """,
        {"portal": portal, "key": key},
    ).fetchall()
    return {row[0]: dict(zip(_REPORTED_COLUMNS, row[1:], strict=True)) for row in rows}


def _staged_rows(
    portal: Portal,
    key: str,
    records: Iterable[tuple[str, dict[str, Any], dict[str, int | None] | None]],
    report: NormalizeReport,
    known: dict[str, dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    for asset_id, record, counters in records:
        if counters is None:
            stable, counters = split_counters(portal, record)
            full = record
        else:
            stable, full = record, None
        stable_hash = record_hash(stable)
        stored = known.get(stable_hash)
        if stored is not None:
            report.add(stored, normalize_frequency(stored["update_frequency_raw"])[1])
            yield {
                "portal": portal.name,
                "asset_id": asset_id,
                "record_hash": stable_hash,
                "normalizer": key,
                **_NOT_RENORMALIZED,
                **counters,
            }
            continue
        if full is None:
            full = merge_counters(record, counters)
        row, mapped = normalize(portal, full)
        report.add(row, mapped)
        yield {
            "portal": portal.name,
            "asset_id": asset_id,
            "record_hash": stable_hash,
            "normalizer": key,
            "record": json.dumps(stable, ensure_ascii=False, separators=(",", ":")),
            **row,
            **counters,
        }


def previous_snapshot(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> tuple[date, int] | None:
    """The portal's last good snapshot before `snapshot_date`: (date, in-scope datasets)."""
    row = first_row(
        conn,
        """
        SELECT snapshot_date, datasets_in_scope
        FROM catalog.snapshots
        WHERE portal = ? AND snapshot_date < ?
        ORDER BY snapshot_date DESC
        LIMIT 1
        """,
        [portal, snapshot_date],
    )
    return (row[0], row[1]) if row else None


def check_not_shrunken(
    portal: Portal,
    assets_total: int,
    in_scope: int,
    previous: tuple[date, int] | None,
    min_ratio: float,
) -> None:
    """Refuse an empty harvest, or one far smaller than the last good snapshot."""
    if assets_total == 0:
        raise SnapshotRefused(
            f"{portal.name}: the harvest returned no assets at all; refusing to replace the "
            "last good snapshot with an empty catalog (nothing was written)"
        )
    if previous is None:
        return
    previous_date, previous_in_scope = previous
    if in_scope < min_ratio * previous_in_scope:
        raise SnapshotRefused(
            f"{portal.name}: refused: {in_scope} in-scope datasets tonight is below "
            f"{min_ratio:g} x the {previous_in_scope} of the last good snapshot "
            f"({previous_date}); nothing was written. If the portal really shrank, lower "
            "min_in_scope_ratio for it in the portal file and run the night again."
        )


def write_snapshot(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    summary: HarvestSummary,
    report: NormalizeReport,
    *,
    origin: str,
    min_ratio: float | None,
) -> SnapshotWritten:
    """Replace the night (summary.snapshot_date, portal) with the staged records, atomically.

    `min_ratio` None skips the shrink guard (re-normalizing records already stored)."""
    snapshot_date = summary.snapshot_date
    assets_total = scalar(conn, f"SELECT count(*) FROM {STAGED}")
    previous = previous_snapshot(conn, portal.name, snapshot_date)
    if min_ratio is not None:
        check_not_shrunken(portal, assets_total, report.in_scope, previous, min_ratio)

    with transaction(conn):
        new_versions = _replace_night(conn, portal, summary, assets_total, report.in_scope, origin)
    return SnapshotWritten(
        snapshot_date=snapshot_date,
        portal=portal.name,
        assets_total=assets_total,
        datasets_in_scope=report.in_scope,
        new_versions=new_versions,
        previous_date=previous[0] if previous else None,
        previous_in_scope=previous[1] if previous else None,
        report=report,
    )


def _replace_night(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    summary: HarvestSummary,
    assets_total: int,
    in_scope: int,
    origin: str,
) -> int:
    night = [summary.snapshot_date, portal.name]
    version_match = """
        v.portal = s.portal AND v.record_hash = s.record_hash AND v.normalizer = s.normalizer
    """
    stored = ", ".join([*_KEY_COLUMNS, *ASSET_COLUMNS])
    new_versions = scalar(
        conn,
        f"""
        INSERT INTO catalog.asset_versions (version_id, {stored})
        SELECT nextval('catalog.asset_version_ids'), {stored}
        FROM {STAGED} AS s
        WHERE s.record IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM catalog.asset_versions AS v WHERE {version_match})
        """,
    )
    conn.execute(
        "DELETE FROM catalog.snapshot_assets WHERE snapshot_date = ? AND portal = ?", night
    )
    counters = ", ".join(f"s.{column}" for column in COUNTER_COLUMNS)
    stored = scalar(
        conn,
        f"""
        INSERT INTO catalog.snapshot_assets
        SELECT ?::DATE, s.portal, s.asset_id, v.version_id, {counters}
        FROM {STAGED} AS s
        JOIN catalog.asset_versions AS v ON {version_match}
        """,
        [summary.snapshot_date],
    )
    if stored != assets_total:
        # A reused version vanished between staging and writing: never store a partial night.
        raise RuntimeError(
            f"{portal.name} {summary.snapshot_date}: {stored} of {assets_total} staged assets "
            "found their record version; nothing was written"
        )
    conn.execute("DELETE FROM catalog.snapshots WHERE snapshot_date = ? AND portal = ?", night)
    conn.execute(
        """
        INSERT INTO catalog.snapshots VALUES
            (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())
        """,
        [
            summary.snapshot_date,
            portal.name,
            summary.kind,
            summary.snapshot_time,
            summary.source_url,
            assets_total,
            in_scope,
            summary.result_set_size,
            summary.pages,
            summary.paging,
            summary.duplicates_dropped,
            summary.seconds,
            origin,
        ],
    )
    drop_unused_versions(conn, portal.name)
    return new_versions


def drop_unused_versions(conn: duckdb.DuckDBPyConnection, portal: str) -> None:
    conn.execute(
        """
        DELETE FROM catalog.asset_versions AS v
        WHERE v.portal = ?
          AND NOT EXISTS (
              SELECT 1 FROM catalog.snapshot_assets AS m WHERE m.version_id = v.version_id
          )
        """,
        [portal],
    )


def stored_summary(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> tuple[HarvestSummary, str] | None:
    """The stored night's harvest summary and origin, to re-normalize it without harvesting."""
    row = first_row(
        conn,
        """
        SELECT kind, snapshot_time, source_url, assets_total, result_set_size, pages, paging,
               duplicates_dropped, harvest_seconds, origin
        FROM catalog.snapshots WHERE portal = ? AND snapshot_date = ?
        """,
        [portal, snapshot_date],
    )
    if row is None:
        return None
    summary = HarvestSummary(
        portal=portal,
        kind=row[0],
        snapshot_date=snapshot_date,
        snapshot_time=row[1],
        source_url=row[2],
        assets=row[3],
        result_set_size=row[4],
        pages=row[5],
        paging=row[6],
        duplicates_dropped=row[7],
        seconds=row[8],
    )
    return summary, row[9]


def stored_records(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> Iterator[tuple[str, dict[str, Any], dict[str, int | None]]]:
    """A stored night's raw records with their counters, for re-normalization."""
    cursor = conn.cursor()
    cursor.execute(
        f"""
        SELECT asset_id, record, {", ".join(COUNTER_COLUMNS)}
        FROM catalog.raw_assets WHERE portal = ? AND snapshot_date = ?
        ORDER BY asset_id
        """,
        [portal, snapshot_date],
    )
    while batch := cursor.fetchmany(CHUNK_ROWS):
        for asset_id, record, *counters in batch:
            yield asset_id, json.loads(record), dict(zip(COUNTER_COLUMNS, counters, strict=True))


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
