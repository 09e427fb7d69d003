-- in_scope_within_band: the in-scope datasets stored for one portal's night, and for the
-- portal's previous snapshot (NULLs when it has none).
WITH previous AS (
    SELECT max(snapshot_date) AS night
    FROM catalog.snapshots
    WHERE portal = $portal AND snapshot_date < $night
)
SELECT
    (SELECT count(DISTINCT asset_id) FROM catalog.assets
     WHERE portal = $portal AND snapshot_date = $night AND in_scope) AS in_scope,
    previous.night AS previous_night,
    (SELECT count(DISTINCT asset_id) FROM catalog.assets
     WHERE portal = $portal AND snapshot_date = previous.night AND in_scope) AS previous_in_scope
FROM previous
