-- The board tables (product spec: board.*). Their first columns are the spec's, in its order.
CREATE SCHEMA IF NOT EXISTS board;

-- One row per in-scope dataset that fails MD-1 or MD-2: the work list of missing metadata.
CREATE TABLE IF NOT EXISTS board.missing_metadata (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    title VARCHAR,
    agency VARCHAR NOT NULL,
    missing_fields VARCHAR[] NOT NULL,  -- every MD-2 requirement not met (MD-1's are among them)
    url VARCHAR,
    fails_md1 BOOLEAN NOT NULL,
    fails_md2 BOOLEAN NOT NULL,
    metadata_score DOUBLE NOT NULL,
    agency_as_published VARCHAR         -- the agency as the catalog names it (agency: canonical)
);

-- One row per in-scope dataset that is OVERDUE or DELINQUENT: the work list of stale data.
CREATE TABLE IF NOT EXISTS board.stale_datasets (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    title VARCHAR,
    agency VARCHAR NOT NULL,
    update_frequency VARCHAR NOT NULL,
    data_updated_at TIMESTAMPTZ,
    age_days DOUBLE NOT NULL,
    freshness_state VARCHAR NOT NULL,
    days_overdue DOUBLE NOT NULL,
    views_last_month BIGINT,
    url VARCHAR,
    stale_but_popular BOOLEAN NOT NULL,   -- FR-9
    timestamp_source VARCHAR NOT NULL,    -- which timestamp gave the age (FR-1)
    work_rank INTEGER NOT NULL,           -- 1 = first to fix: stale-but-popular, then most viewed
    agency_as_published VARCHAR           -- the agency as the catalog names it (agency: canonical)
);

-- GV-4: one row per agency with in-scope datasets, each figure with its n.
CREATE TABLE IF NOT EXISTS board.agency_scorecard (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    agency VARCHAR NOT NULL,
    datasets INTEGER NOT NULL,
    md1_pct_missing_metadata DOUBLE,
    md1_n INTEGER,
    md2_pct_meets_ct_standard DOUBLE,
    md2_n INTEGER,
    md4_mean_metadata_score DOUBLE,
    md4_n INTEGER,
    md5_column_doc_coverage DOUBLE,
    md5_n INTEGER,                        -- columns
    fr2_pct_stale DOUBLE,
    fr2_n INTEGER,                        -- datasets with a schedule and a known age
    fr3_pct_freshness_unknown DOUBLE,
    fr3_n INTEGER,
    us2_pct_unused DOUBLE,
    us2_n INTEGER,
    ranked BOOLEAN NOT NULL,              -- at least 5 in-scope datasets
    rank INTEGER                          -- by MD-4 mean score, among ranked agencies
);

-- One row per change between a snapshot and the portal's previous one (INV-2).
CREATE TABLE IF NOT EXISTS board.catalog_changes (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    change VARCHAR NOT NULL,              -- 'added' | 'removed' | 'renamed' | 'rekeyed'
    title VARCHAR,
    agency VARCHAR,
    previous_title VARCHAR,
    previous_date DATE NOT NULL,
    agency_as_published VARCHAR,          -- the agency as the catalog names it (agency: canonical)
    previous_asset_id VARCHAR             -- rekeyed (and renamed then): the id it had before
);
