"""A staged night (stage.py) written as the portal's snapshot of that night.

A night is written in one transaction: delete the night, insert it again, rewrite the
portal's recent nights in asset order once a month of them waits (compact.py), drop versions no
night uses; a failure anywhere leaves the previous state exactly as it was. Every path that
replaces a night passes the shrink guard (guard.py) first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb

from ctdata_pipeline.catalog import compact, identity
from ctdata_pipeline.catalog.guard import (
    HARVEST_OVERRIDE,
    StoredCounts,
    check_not_shrunken,
)
from ctdata_pipeline.catalog.normalize import NormalizeReport, normalizer_key
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.stage import STAGED, STAGED_VERSIONS, VERSION_COLUMNS, stage_records
from ctdata_pipeline.catalog.version_runs import add_night, take_night_out
from ctdata_pipeline.harvest.dcat import dcat_asset_id
from ctdata_pipeline.harvest.staging import COUNTER_COLUMNS, HarvestSummary
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import first_row, scalar, transaction


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
    shrink_guard: str  # what the guard compared, and its verdict
    rekeyed: str | None = None  # the night's identifier changes in words (identity.py)


def store_records(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    night: date,
    records: list[dict[str, Any]],
    *,
    source: str,
    snapshot_time: datetime | None = None,
    min_ratio: float | None = None,
) -> SnapshotWritten:
    """Store records held in memory (each as the portal sends it) as the portal's snapshot of
    `night`, through the catalog step's own staging and write: how the tests and the benchmark
    hand a catalog over without a harvest."""
    ensure_schema(conn)
    summary = HarvestSummary(
        portal=portal.name,
        kind=portal.kind,
        snapshot_date=night,
        snapshot_time=snapshot_time or night_instant(night),
        source_url=source,
        assets=len(records),
        result_set_size=len(records),
        pages=1,
        paging="offset",
        duplicates_dropped=0,
        seconds=0.0,
    )
    ids = [record_asset_id(portal, record) for record in records]
    report = stage_records(conn, portal, zip(ids, records, strict=True))
    return write_snapshot(conn, portal, summary, report, origin="harvest", min_ratio=min_ratio)


def record_asset_id(portal: Portal, record: dict[str, Any]) -> str:
    """The id the harvest keys a record by: Socrata's resource.id, a DCAT dataset's own."""
    return record["resource"]["id"] if portal.kind == "socrata" else dcat_asset_id(record)


def previous_snapshot(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> StoredCounts | None:
    """The portal's last good snapshot before `snapshot_date`."""
    return _stored_counts(conn, portal, snapshot_date, "snapshot_date < ?")


def stored_snapshot(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> StoredCounts | None:
    """The portal's stored snapshot of `snapshot_date` itself: what a write would replace."""
    return _stored_counts(conn, portal, snapshot_date, "snapshot_date = ?")


def _stored_counts(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date, which: str
) -> StoredCounts | None:
    row = first_row(
        conn,
        f"""
        SELECT snapshot_date, assets_total, datasets_in_scope
        FROM catalog.snapshots
        WHERE portal = ? AND {which}
        ORDER BY snapshot_date DESC
        LIMIT 1
        """,
        [portal, snapshot_date],
    )
    return StoredCounts(*row) if row else None


def write_snapshot(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    summary: HarvestSummary,
    report: NormalizeReport,
    *,
    origin: str,
    min_ratio: float | None,
    accept_shrink: bool = False,
    override: str = HARVEST_OVERRIDE,
) -> SnapshotWritten:
    """Replace the night (summary.snapshot_date, portal) with the staged records, atomically,
    unless the shrink guard (guard.py) refuses it: `override` says, in the refusal, how to
    accept the shrink on the caller's path (`accept_shrink`).

    Every path that replaces a night passes the portal's ratio; `min_ratio` None (no guard) is
    for nights built by hand (tests, benchmarks)."""
    snapshot_date = summary.snapshot_date
    assets_total = scalar(conn, f"SELECT count(*) FROM {STAGED}")
    previous = previous_snapshot(conn, portal.name, snapshot_date)
    shrink_guard = "not guarded"
    if min_ratio is not None:
        shrink_guard = check_not_shrunken(
            portal.name,
            snapshot_date,
            assets_total,
            report.in_scope,
            stored_snapshot(conn, portal.name, snapshot_date),
            previous,
            min_ratio=min_ratio,
            accept_shrink=accept_shrink,
            override=override,
        )

    with transaction(conn):
        new_versions = _replace_night(conn, portal, summary, assets_total, report.in_scope, origin)
    return SnapshotWritten(
        snapshot_date=snapshot_date,
        portal=portal.name,
        assets_total=assets_total,
        datasets_in_scope=report.in_scope,
        new_versions=new_versions,
        previous_date=previous.snapshot_date if previous else None,
        previous_in_scope=previous.datasets_in_scope if previous else None,
        report=report,
        shrink_guard=shrink_guard,
        rekeyed=identity.rekeyed_summary(conn, portal.name, snapshot_date),
    )


# A version's id, from what identifies it (portal, normalizer, record): 60 bits of its MD5, the
# same on every backend and in every writer, so writers that do not wait for each other (a
# DuckLake) never hand out one id twice, and the same nights give the same ids anywhere.
VERSION_ID = (
    "CAST('0x' || left(md5(concat_ws(chr(31), $portal, $key, s.record_hash)), 15) AS BIGINT)"
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
    keys = {"portal": portal.name, "key": normalizer_key(portal)}
    version_match = "v.portal = $portal AND v.normalizer = $key AND v.record_hash = s.record_hash"
    normalized = ", ".join(VERSION_COLUMNS)
    new_versions = scalar(
        conn,
        f"""
        INSERT INTO catalog.asset_versions (version_id, portal, normalizer, record, {normalized})
        SELECT {VERSION_ID}, $portal, $key, staged.record, {normalized}
        FROM {STAGED_VERSIONS} AS s
        JOIN {STAGED} AS staged USING (asset_id, record_hash)
        WHERE NOT EXISTS (SELECT 1 FROM catalog.asset_versions AS v WHERE {version_match})
        """,
        keys,
    )
    out_of_order = take_night_out(conn, portal.name, summary.snapshot_date)
    conn.execute(
        "DELETE FROM catalog.snapshot_assets WHERE snapshot_date = ? AND portal = ?", night
    )
    counters = ", ".join(f"s.{column}" for column in COUNTER_COLUMNS)
    stored = scalar(
        conn,
        f"""
        INSERT INTO catalog.snapshot_assets
        SELECT $night, $portal, s.asset_id, v.version_id, {counters}
        FROM {STAGED} AS s
        JOIN catalog.asset_versions AS v ON {version_match}
        """,
        {**keys, "night": summary.snapshot_date},
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
    add_night(conn, portal.name, summary.snapshot_date, out_of_order=out_of_order)
    # A new id tonight may be a dataset whose id changed form (identity.py): match it, and the
    # night after, whose previous snapshot this may be.
    identity.night_written(conn, portal.name, summary.snapshot_date)
    compact.night_written(conn, portal.name, summary.snapshot_date)
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
