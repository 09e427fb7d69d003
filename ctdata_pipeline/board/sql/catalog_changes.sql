-- board.catalog_changes: the in-scope datasets added, removed or renamed since the portal's
-- previous snapshot (the rows INV-2 counts).
INSERT INTO board.catalog_changes
-- The agency is the canonical name of agency_aliases: (metrics/agencies.py), NULL when none.
SELECT $snapshot_date, $portal, asset_id, change, title,
       coalesce(canonical_agency(agency, $alias_variants, $alias_canonicals), agency),
       previous_title, previous_date, agency AS agency_as_published
FROM catalog.changes($portal, $snapshot_date)
