-- board.missing_metadata: in-scope datasets failing MD-1 or MD-2, with every requirement they
-- miss. MD-2's requirements include MD-1's fields, so failing MD-1 always means failing MD-2.
INSERT INTO board.missing_metadata
SELECT snapshot_date, portal, asset_id, title, agency, md2_missing AS missing_fields, url,
       len(md1_missing) > 0 AS fails_md1, len(md2_missing) > 0 AS fails_md2, metadata_score,
       agency_as_published
FROM metrics.datasets
WHERE snapshot_date = $snapshot_date AND portal = $portal
  AND (len(md1_missing) > 0 OR len(md2_missing) > 0)
