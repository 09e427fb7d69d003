"""`agency_as_published` on the per-dataset tables of the metrics and the board
(metrics.datasets, board.missing_metadata, board.stale_datasets, board.catalog_changes): since
`agency_aliases:`, `agency` is the canonical name and this column keeps the catalog's own.

A step here although the tables are the metrics' and the board's: every write passes through
the catalog's migrations first, and a file's schema version must say whether it has the column.
A file whose tables do not exist yet gets them with the column when they are created. Rows
stored before held no aliases, so their agency is the name as published ('(no agency)': none)."""

from __future__ import annotations

import duckdb

from ctdata_pipeline.warehouse import scalar

TABLES = (
    ("metrics", "datasets"),
    ("board", "missing_metadata"),
    ("board", "stale_datasets"),
    ("board", "catalog_changes"),
)
NO_AGENCY = "(no agency)"  # frozen: metrics.definitions.NO_AGENCY when this step was written


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    for schema, table in TABLES:
        exists = scalar(
            conn,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema, table],
        )
        if not exists:
            continue
        has_column = scalar(
            conn,
            "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ? AND column_name = 'agency_as_published'",
            [schema, table],
        )
        if has_column:
            continue
        conn.execute(f"ALTER TABLE {schema}.{table} ADD COLUMN agency_as_published VARCHAR")
        conn.execute(
            f"UPDATE {schema}.{table} SET agency_as_published = nullif(agency, ?)", [NO_AGENCY]
        )
