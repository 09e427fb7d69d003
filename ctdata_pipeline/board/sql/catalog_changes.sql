-- board.catalog_changes: the in-scope datasets added, removed or renamed since the portal's
-- previous snapshot (the rows INV-2 counts).
INSERT INTO board.catalog_changes
SELECT $snapshot_date, $portal, asset_id, change, title, agency, previous_title, previous_date
FROM catalog.changes($portal, $snapshot_date)
