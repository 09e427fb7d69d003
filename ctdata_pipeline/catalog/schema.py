"""The catalog's layout in DuckDB, and `ensure_schema`, which every write path calls first.

- `catalog.snapshots`: one row per (snapshot_date, portal) that is complete;
- `catalog.asset_versions`: each distinct record an asset has had, raw and normalized, stored
  once however many nights it stays the same;
- `catalog.snapshot_assets`: which version of which asset each night holds, with the night's
  view and download counters (the only fields that move every night);
- `catalog.version_runs`: the runs of consecutive nights each version was held
  (version_runs.py), so FR-6 reads versions, not a row per asset and night of its window;
- `catalog.rekeyed` and `catalog.asset_identity`: a night's new ids matched to the ids that
  disappeared for them, and the id each such dataset was first seen under (identity.py);
- the views over them: `catalog.assets` (the spec's table), `catalog.raw_assets`, and the
  `catalog.changes` macro (which reads `catalog.rekeyed`, identity.py).

So history costs what changes, not a full copy per night, and every night's raw records stay
available to recompute metrics when a definition changes. The tables are made by the numbered
steps of migrations/; the views follow the code and are replaced on every call."""

from __future__ import annotations

import duckdb

from ctdata_pipeline.catalog.migrations import migrate
from ctdata_pipeline.catalog.normalize import ASSET_COLUMNS
from ctdata_pipeline.harvest.staging import COUNTER_COLUMNS

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
-- A version belongs to one portal (its id hashes the portal): saying so lets a query of one
-- portal read only that portal's versions, not every portal's (a national night's thousand).
JOIN catalog.asset_versions AS v ON v.version_id = m.version_id AND v.portal = m.portal;

-- In-scope datasets added, removed, renamed or rekeyed between a portal's night and its
-- previous snapshot (INV-2 and board.catalog_changes). No rows on a portal's first snapshot.
-- A dataset whose id changed form (catalog.rekeyed, identity.py) is 'rekeyed', with the id it
-- had (previous_asset_id), never removed + added; renamed when its title changed as well.
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
    -- the previous snapshot's datasets under tonight's id (current_id)
    SELECT b.asset_id, coalesce(r.asset_id, b.asset_id) AS current_id, b.title, b.agency
    FROM catalog.assets AS b
    LEFT JOIN catalog.rekeyed AS r
        ON r.portal = portal_name AND r.snapshot_date = night
        AND r.previous_asset_id = b.asset_id
    WHERE b.portal = portal_name AND b.in_scope
      AND b.snapshot_date = (SELECT snapshot_date FROM previous)
)
SELECT 'added' AS change, t.asset_id, t.title, t.agency, NULL AS previous_title,
       (SELECT snapshot_date FROM previous) AS previous_date, NULL AS previous_asset_id
FROM tonight AS t
WHERE (SELECT snapshot_date FROM previous) IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM before AS b WHERE b.current_id = t.asset_id)
UNION ALL
SELECT 'removed', b.asset_id, b.title, b.agency, b.title, (SELECT snapshot_date FROM previous),
       NULL
FROM before AS b
WHERE NOT EXISTS (SELECT 1 FROM tonight AS t WHERE t.asset_id = b.current_id)
UNION ALL
SELECT 'renamed', t.asset_id, t.title, t.agency, b.title, (SELECT snapshot_date FROM previous),
       if(b.asset_id = t.asset_id, NULL, b.asset_id)
FROM tonight AS t
JOIN before AS b ON b.current_id = t.asset_id
WHERE t.title IS DISTINCT FROM b.title
UNION ALL
SELECT 'rekeyed', t.asset_id, t.title, t.agency, b.title, (SELECT snapshot_date FROM previous),
       b.asset_id
FROM tonight AS t
JOIN before AS b ON b.current_id = t.asset_id
WHERE b.asset_id <> t.asset_id;

CREATE OR REPLACE VIEW catalog.raw_assets AS
SELECT m.snapshot_date, m.portal, m.asset_id, v.record,
    {", ".join(f"m.{name}" for name in COUNTER_COLUMNS)}
FROM catalog.snapshot_assets AS m
JOIN catalog.asset_versions AS v ON v.version_id = m.version_id AND v.portal = m.portal;
"""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Give the file the migrations it has not had, then (re)create the views."""
    migrate(conn)
    conn.execute(VIEWS_SQL)
