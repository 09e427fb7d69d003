-- asset_ids_unique: the asset ids stored more than once in one portal's night, most copies first.
SELECT asset_id, count(*) AS copies
FROM catalog.snapshot_assets
WHERE snapshot_date = $night AND portal = $portal
GROUP BY asset_id
HAVING count(*) > 1
ORDER BY copies DESC, asset_id
