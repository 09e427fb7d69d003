"""Dated catalog snapshots in DuckDB.

Layout (the spec's `catalog.assets` is a view over it):
- `catalog.snapshots`: one row per (snapshot_date, portal) that is complete;
- `catalog.asset_versions`: each distinct record an asset has had, raw and normalized, stored
  once however many nights it stays the same;
- `catalog.snapshot_assets`: which version of which asset each night holds, with the night's
  view and download counters (the only fields that move every night);
- `catalog.version_runs`: the runs of consecutive nights each version was held
  (version_runs.py), so FR-6 reads versions, not a row per asset and night of its window.

So history costs what changes, not a full copy per night, and every night's raw records stay
available to recompute metrics when a definition changes. A night is written in one
transaction: delete the night, insert it again, drop versions no night uses; a failure anywhere
leaves the previous state exactly as it was."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ctdata_pipeline.catalog.frequency import normalize_frequency
from ctdata_pipeline.catalog.guard import (
    HARVEST_OVERRIDE,
    StoredCounts,
    check_not_shrunken,
)
from ctdata_pipeline.catalog.normalize import (
    ASSET_COLUMNS,
    NormalizeReport,
    normalize_dcat,
    normalizer_key,
)
from ctdata_pipeline.catalog.text import clean_text
from ctdata_pipeline.catalog.version_runs import add_night, ensure_version_runs, take_night_out
from ctdata_pipeline.harvest.dcat import dcat_asset_id
from ctdata_pipeline.harvest.socrata import take_counters
from ctdata_pipeline.harvest.staging import (
    COUNTER_COLUMNS,
    NO_COUNTERS,
    HarvestSummary,
    staged_line,
)
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.schema_version import record_schema_version
from ctdata_pipeline.warehouse import first_row, scalar, sql, transaction

CHUNK_ROWS = 5000
SQL_DIR = Path(__file__).parent / "sql"
# Tonight's assets (id, record hash, counters, record) and the records no stored version holds,
# normalized: the two temporary tables a night is written from.
STAGED = "staged_assets"
STAGED_VERSIONS = "staged_versions"
# A record larger than this is refused when staged (DuckDB's default is 16 MB; real catalogs
# have descriptions of megabytes).
MAX_RECORD_BYTES = 128 << 20

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
    {_column_list(_KEY_COLUMNS)}{{record_compression}},
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

_STAGED_COLUMNS = {
    "asset_id": "VARCHAR",
    "record_hash": "VARCHAR",
    **_COUNTER_TYPES,
    "record": "JSON",
}
# A new version's normalized fields; its record stays in STAGED (one copy of the night's JSON).
_VERSION_COLUMNS = {"asset_id": "VARCHAR", "record_hash": "VARCHAR", **ASSET_COLUMNS}
# The fields of a Discovery API record that normalize_socrata.sql reads, each kept as JSON so the
# SQL can tell a string from a number or a list (json_transform would quietly convert them).
_SOCRATA_FIELDS = {
    "resource": [
        "id",
        "name",
        "description",
        "type",
        "provenance",
        "parent_fxf",
        "attribution",
        "contact_email",
        "createdAt",
        "publication_date",
        "updatedAt",
        "data_updated_at",
        "metadata_updated_at",
        "columns_field_name",
        "columns_name",
        "columns_description",
    ],
    "classification": ["domain_metadata", "domain_category", "domain_tags"],
    "metadata": ["domain", "license"],
    "owner": ["display_name", "displayName"],
    "": ["permalink", "link"],
}


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


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the catalog tables, add columns that a newer normalizer introduced (nights stored
    before keep NULL there until re-normalized), and (re)create the views."""
    conn.execute(catalog_tables_sql(conn))
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
    ensure_version_runs(conn)
    conn.execute(VIEWS_SQL)
    record_schema_version(conn)


def catalog_tables_sql(conn: duckdb.DuckDBPyConnection) -> str:
    """TABLES_SQL for the file `conn` writes to.

    Raw records are most of what history costs, and JSON compresses about four times better
    with zstd than with DuckDB's default string compression. Files written in DuckDB's storage
    format 1.2 or later (every file the pipeline creates) can use it; an older file keeps the
    default (zstd would be silently ignored there, leaving the records uncompressed)."""
    version = scalar(
        conn,
        "SELECT tags['storage_version'] FROM duckdb_databases() "
        "WHERE database_name = current_database()",
    )
    numbers = re.findall(r"\d+", version or "")
    if len(numbers) >= 2 and (int(numbers[0]), int(numbers[1])) >= (1, 2):
        return TABLES_SQL.replace("{record_compression}", " USING COMPRESSION zstd")
    return TABLES_SQL.replace("{record_compression}", "")


def stage_file(conn: duckdb.DuckDBPyConnection, portal: Portal, path: Path) -> NormalizeReport:
    """Stage a night's records file (harvest/staging.py's format) and normalize the records no
    stored version holds. DuckDB reads the file: a record seen on an earlier night (the same
    hash, under the same rules) is never normalized or stored again, so a night costs what
    changed since the nights before it."""
    columns = ", ".join(f"'{name}': '{sql_type}'" for name, sql_type in _STAGED_COLUMNS.items())
    # The staged table is a set: without keeping the file's order DuckDB reads it with less
    # memory. Only for this read: the connection's other queries keep DuckDB's default.
    conn.execute("SET preserve_insertion_order = false")
    try:
        conn.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {STAGED} AS
            SELECT * FROM read_json(
                ?, format = 'newline_delimited', columns = {{{columns}}},
                maximum_object_size = {MAX_RECORD_BYTES}
            )
            """,
            [str(path)],
        )
    finally:
        conn.execute("RESET preserve_insertion_order")
    return _normalize_new_versions(conn, portal)


def stage_records(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    records: Iterable[tuple[str, dict[str, Any]]],
) -> NormalizeReport:
    """Stage (asset id, record as the portal sent it) pairs, e.g. from an archived file."""
    with tempfile.TemporaryDirectory(prefix="ctdata-stage-") as folder:
        path = Path(folder) / "records.ndjson"
        with path.open("wb") as lines:
            for asset_id, record in records:
                counters = NO_COUNTERS
                if portal.kind == "socrata":
                    # The caller's record keeps its counters: take them from a copy.
                    record = {**record, "resource": dict(record["resource"])}
                    counters = take_counters(record)
                lines.write(staged_line(asset_id, record, counters))
        return stage_file(conn, portal, path)


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


def stage_stored_night(
    conn: duckdb.DuckDBPyConnection, portal: Portal, snapshot_date: date
) -> NormalizeReport:
    """Stage a stored night again, to re-normalize it under the current rules."""
    counters = ", ".join(f"m.{column}" for column in COUNTER_COLUMNS)
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {STAGED} AS
        SELECT m.asset_id, v.record_hash, {counters}, v.record
        FROM catalog.snapshot_assets AS m
        JOIN catalog.asset_versions AS v USING (version_id)
        WHERE m.portal = ? AND m.snapshot_date = ?
        """,
        [portal.name, snapshot_date],
    )
    return _normalize_new_versions(conn, portal)


def _normalize_new_versions(conn: duckdb.DuckDBPyConnection, portal: Portal) -> NormalizeReport:
    key = normalizer_key(portal)
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE staged_new AS
        SELECT DISTINCT ON (record_hash) asset_id, record_hash
        FROM {STAGED} AS s
        WHERE NOT EXISTS (
            SELECT 1 FROM catalog.asset_versions AS v
            WHERE v.portal = $portal AND v.normalizer = $key AND v.record_hash = s.record_hash
        )
        """,
        {"portal": portal.name, "key": key},
    )
    if portal.kind == "socrata":
        _normalize_socrata(conn, portal)
    else:
        _normalize_dcat(conn)
    return _report(conn, portal.name, key)


def _normalize_socrata(conn: duckdb.DuckDBPyConnection, portal: Portal) -> None:
    register_text_functions(conn)
    custom = portal.custom_fields
    parameters = {
        "domain": portal.socrata_domain,
        "agency_key": custom.get("agency"),
        "frequency_key": custom.get("update_frequency"),
        "geographic_unit_key": custom.get("geographic_unit"),
        "temporal_coverage_key": custom.get("temporal_coverage"),
        "row_label_key": custom.get("row_label"),
        "contact_email_key": custom.get("contact_email"),
        "source_link_key": custom.get("source_link"),
    }
    query = sql("normalize_socrata.sql", SQL_DIR)
    query = query.replace("{record_structure}", _socrata_structure())
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED_VERSIONS} AS {query}", parameters)


def _normalize_dcat(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE {STAGED_VERSIONS} ({_column_list(_VERSION_COLUMNS)})"
    )
    # DuckDB types a pandas object column from a sample of its rows; a chunk whose sampled rows
    # are all NULL in a column would be typed NULL and refuse the values further down.
    conn.execute(f"SET pandas_analyze_sample = {CHUNK_ROWS}")
    # Page by hash: a DuckDB cursor is a connection of its own and cannot see temp tables.
    last_hash = ""
    while batch := conn.execute(
        f"""
        SELECT asset_id, record_hash, record
        FROM staged_new JOIN {STAGED} USING (asset_id, record_hash)
        WHERE record_hash > ? ORDER BY record_hash LIMIT {CHUNK_ROWS}
        """,
        [last_hash],
    ).fetchall():
        last_hash = batch[-1][1]
        rows = [
            {"asset_id": asset_id, "record_hash": record_hash, **normalize_dcat(json.loads(record))}
            for asset_id, record_hash, record in batch
        ]
        frame = pd.DataFrame.from_records(rows, columns=list(_VERSION_COLUMNS))
        conn.register("staged_chunk", frame)
        try:
            conn.execute(f"INSERT INTO {STAGED_VERSIONS} SELECT * FROM staged_chunk")
        finally:
            conn.unregister("staged_chunk")


def _report(conn: duckdb.DuckDBPyConnection, portal: str, key: str) -> NormalizeReport:
    """What normalization saw across tonight's assets, new versions and reused ones alike."""
    reported = (
        "record_hash, asset_type, in_scope, agency_rule, update_frequency_raw, update_frequency"
    )
    rows = conn.execute(
        f"""
        WITH versions AS (
            SELECT {reported} FROM {STAGED_VERSIONS}
            UNION ALL
            SELECT {reported} FROM catalog.asset_versions
            WHERE portal = $portal AND normalizer = $key
        )
        SELECT
            v.asset_type,
            v.in_scope,
            v.agency_rule,
            CASE WHEN v.update_frequency = 'unknown' THEN v.update_frequency_raw END,
            count(*)
        FROM {STAGED} AS s
        JOIN versions AS v USING (record_hash)
        GROUP BY ALL
        """,
        {"portal": portal, "key": key},
    ).fetchall()
    return NormalizeReport.from_counts(rows)


def register_text_functions(conn: duckdb.DuckDBPyConnection) -> None:
    """The text macros of sql/text.sql, and the Python functions they call, on `conn`."""
    registered = {
        row[0]
        for row in conn.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'ctdata_%'"
        ).fetchall()
    }
    if "ctdata_clean_text" not in registered:
        conn.create_function(
            "ctdata_clean_text", _clean_text, ["VARCHAR"], "VARCHAR", null_handling="special"
        )
    if "ctdata_frequency_code" not in registered:
        conn.create_function("ctdata_frequency_code", _frequency_code, ["VARCHAR"], "VARCHAR")
    conn.execute(sql("text.sql", SQL_DIR).replace("{plain_text}", _plain_text_pattern()))


# The values that reach Python repeat across datasets ("&nbsp;", the same column described the
# same way in a family of datasets): clean each once.
@lru_cache(maxsize=1 << 16)
def _clean_text(text: str) -> str | None:
    return clean_text(text)


@cache
def _frequency_code(raw: str) -> str:
    return normalize_frequency(raw)[0]


@cache
def _plain_text_pattern() -> str:
    """RE2: text that clean_text returns unchanged: words without markup, braces or Python's
    whitespace (every character `\\s` matches in Python, not only RE2's ASCII ones), separated by
    single spaces."""
    whitespace = "".join(
        f"\\x{{{code:x}}}" for code in range(0x3001) if re.fullmatch(r"\s", chr(code))
    )
    word = f"[^<&{{}}{whitespace}]+"
    return f"{word}( {word})*"


@cache
def _socrata_structure() -> str:
    structure: dict[str, Any] = {}
    for parent, names in _SOCRATA_FIELDS.items():
        fields = dict.fromkeys(names, "JSON")
        if parent:
            structure[parent] = fields
        else:
            structure.update(fields)
    return json.dumps(structure)


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
    normalized = ", ".join(_VERSION_COLUMNS)
    new_versions = scalar(
        conn,
        f"""
        INSERT INTO catalog.asset_versions (version_id, portal, normalizer, record, {normalized})
        SELECT nextval('catalog.asset_version_ids'), $portal, $key, staged.record, {normalized}
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
