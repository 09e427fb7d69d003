"""Dataset identity across identifier changes (catalog/identity.py): `catalog.rekeyed`, the
nights' matches of a new id to one that disappeared, `catalog.asset_identity`, the id each
rekeyed id's dataset was first seen under, and `previous_asset_id` on board.catalog_changes
(the id a 'rekeyed' row's dataset had before). And, of the same round (metrics v2),
`valid_fields` on metrics.datasets: MD-3's fields with a form whose value is well-formed (NULL
on rows stored before; the night's recompute fills them).

Filled once from the stored snapshots, so a file stored before this step reads its past
identifier changes as rekeyings too (its board.catalog_changes rows are rewritten when the
nights are computed again). A file whose board table does not exist yet gets the column when
it is created (board/sql/schema.sql).

Edited once after files were written with it: both tables had a PRIMARY KEY, which a DuckLake
refuses. Files made before keep theirs; identity.py writes each key once either way."""

from __future__ import annotations

import duckdb

from ctdata_pipeline.catalog.identity import rebuild_rekeyings
from ctdata_pipeline.warehouse import scalar

TABLES_SQL = """
CREATE TABLE IF NOT EXISTS catalog.rekeyed (
    portal VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,
    asset_id VARCHAR NOT NULL,            -- the night's new id
    previous_asset_id VARCHAR NOT NULL,   -- the id that disappeared, in the previous snapshot
    matched_by VARCHAR NOT NULL           -- 'layer_url' | 'hub_item' | 'title_publisher'
);

CREATE TABLE IF NOT EXISTS catalog.asset_identity (
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    dataset_id VARCHAR NOT NULL           -- the id the dataset was first seen under
);
"""


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(TABLES_SQL)
    if _exists(conn, "board", "catalog_changes"):
        conn.execute(
            "ALTER TABLE board.catalog_changes ADD COLUMN IF NOT EXISTS previous_asset_id VARCHAR"
        )
    if _exists(conn, "metrics", "datasets"):
        conn.execute("ALTER TABLE metrics.datasets ADD COLUMN IF NOT EXISTS valid_fields VARCHAR[]")
    if scalar(conn, "SELECT count(*) FROM catalog.rekeyed") > 0:
        return
    for (portal,) in conn.execute(
        "SELECT DISTINCT portal FROM catalog.snapshots ORDER BY 1"
    ).fetchall():
        rebuild_rekeyings(conn, portal)


def _exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        scalar(
            conn,
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [schema, table],
        )
    )
