"""The catalog's tables as schema version 1 first recorded them: snapshots, record versions
and which version each night holds.

Files written before versions were recorded may have an `asset_versions` of fewer columns (a
normalizer of the time knew fewer fields): they get the missing ones, NULL on the versions they
hold until those are re-normalized.

Edited once after files were written with it: it created a sequence for `version_id`, which a
DuckLake cannot hold. Files made before keep that sequence, unused since (catalog/write.py
derives the id from the version's key instead)."""

from __future__ import annotations

import re

import duckdb

from ctdata_pipeline.warehouse import scalar

# Frozen here: what the code writes (normalize.ASSET_COLUMNS) may only grow by a later step.
ASSET_VERSION_COLUMNS = {
    "version_id": "BIGINT NOT NULL",
    "portal": "VARCHAR NOT NULL",
    "asset_id": "VARCHAR NOT NULL",
    "record_hash": "VARCHAR NOT NULL",
    "normalizer": "VARCHAR NOT NULL",
    "record": "JSON NOT NULL{record_compression}",
    "asset_type": "VARCHAR",
    "in_scope": "BOOLEAN",
    "scope_note": "VARCHAR",
    "title": "VARCHAR",
    "description": "VARCHAR",
    "description_text": "VARCHAR",
    "agency": "VARCHAR",
    "agency_rule": "VARCHAR",
    "category": "VARCHAR",
    "tags": "VARCHAR[]",
    "license": "VARCHAR",
    "update_frequency_raw": "VARCHAR",
    "update_frequency": "VARCHAR",
    "geographic_unit": "VARCHAR",
    "temporal_coverage": "VARCHAR",
    "row_label": "VARCHAR",
    "contact_name": "VARCHAR",
    "contact_email": "VARCHAR",
    "source_link": "VARCHAR",
    "attribution": "VARCHAR",
    "owner_name": "VARCHAR",
    "provenance": "VARCHAR",
    "source_domain": "VARCHAR",
    "parent_ids": "VARCHAR[]",
    "created_at": "TIMESTAMPTZ",
    "published_at": "TIMESTAMPTZ",
    "updated_at": "TIMESTAMPTZ",
    "data_updated_at": "TIMESTAMPTZ",
    "metadata_updated_at": "TIMESTAMPTZ",
    "columns_total": "INTEGER",
    "columns_described": "INTEGER",
    "url": "VARCHAR",
    "identifier": "VARCHAR",
    "access_level": "VARCHAR",
    "template_fields": "VARCHAR[]",
    "described_by": "VARCHAR",
    "schema_valid": "BOOLEAN",
    "schema_errors": "VARCHAR[]",
}
# The columns an older normalizer's file may lack: every normalized field (the keys and the
# record were there from the first night).
_NORMALIZED_FROM = list(ASSET_VERSION_COLUMNS).index("asset_type")

TABLES_SQL = """
CREATE SCHEMA IF NOT EXISTS catalog;

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

CREATE TABLE IF NOT EXISTS catalog.asset_versions ({asset_version_columns});

CREATE TABLE IF NOT EXISTS catalog.snapshot_assets (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    version_id BIGINT NOT NULL,
    views_last_week BIGINT,
    views_last_month BIGINT,
    views_total BIGINT,
    downloads_total BIGINT
);
"""


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(tables_sql(conn))
    for name, sql_type in list(ASSET_VERSION_COLUMNS.items())[_NORMALIZED_FROM:]:
        conn.execute(
            f"ALTER TABLE catalog.asset_versions ADD COLUMN IF NOT EXISTS {name} {sql_type}"
        )


def tables_sql(conn: duckdb.DuckDBPyConnection) -> str:
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
    zstd = len(numbers) >= 2 and (int(numbers[0]), int(numbers[1])) >= (1, 2)
    compression = " USING COMPRESSION zstd" if zstd else ""
    columns = ",\n    ".join(
        f"{name} {sql_type}".replace("{record_compression}", compression)
        for name, sql_type in ASSET_VERSION_COLUMNS.items()
    )
    return TABLES_SQL.replace("{asset_version_columns}", f"\n    {columns}\n")
