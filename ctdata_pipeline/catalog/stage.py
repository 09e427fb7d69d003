"""A night's records staged in temporary tables, and the ones no stored version holds
normalized, ready for write.py.

STAGED holds tonight's assets (id, record hash, counters, record); STAGED_VERSIONS the
normalized fields of the records no stored version holds (under the same normalizer). A record
seen on an earlier night is never normalized or stored again, so a night costs what changed
since the nights before it."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from ctdata_pipeline.catalog.normalize import (
    ASSET_COLUMNS,
    NormalizeReport,
    normalize_dcat,
    normalizer_key,
)
from ctdata_pipeline.catalog.udfs import register_text_functions
from ctdata_pipeline.harvest.socrata import take_counters
from ctdata_pipeline.harvest.staging import COUNTER_COLUMNS, NO_COUNTERS, staged_line
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import sql

CHUNK_ROWS = 5000
SQL_DIR = Path(__file__).parent / "sql"
STAGED = "staged_assets"
STAGED_VERSIONS = "staged_versions"
# A record larger than this is refused when staged (DuckDB's default is 16 MB; real catalogs
# have descriptions of megabytes).
MAX_RECORD_BYTES = 128 << 20

_COUNTER_TYPES = dict.fromkeys(COUNTER_COLUMNS, "BIGINT")
_STAGED_COLUMNS = {
    "asset_id": "VARCHAR",
    "record_hash": "VARCHAR",
    **_COUNTER_TYPES,
    "record": "JSON",
}
# A new version's normalized fields; its record stays in STAGED (one copy of the night's JSON).
VERSION_COLUMNS = {"asset_id": "VARCHAR", "record_hash": "VARCHAR", **ASSET_COLUMNS}
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


def stage_file(conn: duckdb.DuckDBPyConnection, portal: Portal, path: Path) -> NormalizeReport:
    """Stage a night's records file (harvest/staging.py's format) and normalize the records no
    stored version holds. DuckDB reads the file."""
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
        JOIN catalog.asset_versions AS v ON v.version_id = m.version_id AND v.portal = m.portal
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
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in VERSION_COLUMNS.items())
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {STAGED_VERSIONS} ({columns})")
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
        # pandas only here (DCAT records handed to DuckDB): imported on use, not by every command
        import pandas as pd

        frame = pd.DataFrame.from_records(rows, columns=list(VERSION_COLUMNS))
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
