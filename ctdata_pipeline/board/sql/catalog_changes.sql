-- board.catalog_changes: the in-scope datasets added, removed, renamed or rekeyed (the same
-- dataset under a new form of id, catalog/identity.py) since the portal's previous snapshot
-- (the rows INV-2 counts).
INSERT INTO board.catalog_changes
    (snapshot_date, portal, asset_id, change, title, agency, previous_title, previous_date,
     agency_as_published, previous_asset_id)
-- The agency is the canonical name of agency_aliases: (metrics/agencies.py), NULL when none.
SELECT $snapshot_date, $portal, asset_id, change, title,
       coalesce(canonical_agency(agency, $alias_variants, $alias_canonicals), agency),
       previous_title, previous_date, agency AS agency_as_published, previous_asset_id
FROM catalog.changes($portal, $snapshot_date)
