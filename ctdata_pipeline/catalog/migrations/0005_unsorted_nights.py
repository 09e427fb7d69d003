"""`catalog.unsorted_nights` (catalog/compact.py): the nights of each portal written since its
rows of `catalog.snapshot_assets` were last rewritten in asset order.

Every night a file stored before this step holds was written unsorted, so they are all listed:
a portal with 30 or more of them has them compacted together by its next night (once, a longer
write than a usual night's)."""

from __future__ import annotations

import duckdb

TABLE_SQL = """
CREATE TABLE IF NOT EXISTS catalog.unsorted_nights (
    portal VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL
);
"""


def apply(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(TABLE_SQL)
    conn.execute(
        """
        INSERT INTO catalog.unsorted_nights
        SELECT DISTINCT portal, snapshot_date FROM catalog.snapshots AS s
        WHERE NOT EXISTS (
            SELECT 1 FROM catalog.unsorted_nights AS u
            WHERE u.portal = s.portal AND u.snapshot_date = s.snapshot_date
        )
        """
    )
