-- Tables the probe metrics write (metrics/probed.py), after the night's probes. Their first
-- columns are the product spec's, in its order.
CREATE SCHEMA IF NOT EXISTS metrics;
CREATE SCHEMA IF NOT EXISTS board;

-- One row per in-scope dataset of the night (and per other asset with a link to check): what
-- the probes said about it, the per-dataset inputs of FR-5, FR-8, FR-1/FR-2 by data date and
-- AC-1. Empty columns mean the probe does not apply or has no recent result.
CREATE TABLE IF NOT EXISTS metrics.probed_datasets (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    agency VARCHAR NOT NULL,               -- canonical (agency_aliases:); '(no agency)' when none
    in_scope BOOLEAN NOT NULL,             -- false: an asset counted for AC-1 only (a link asset)
    -- FR-5: content dates of Socrata date columns
    has_date_column BOOLEAN NOT NULL,
    content_date TIMESTAMPTZ,              -- latest column max not after snapshot time + 1 day
    content_age_days DOUBLE,
    silently_stale BOOLEAN,                -- FRESH or DUE, content older than 3 x f
    -- FR-8: ArcGIS layer edit dates of DCAT datasets
    has_layer_url BOOLEAN NOT NULL,
    layer_date TIMESTAMPTZ,                -- the latest of its layers' dates
    layer_date_source VARCHAR,             -- dataLastEditDate | lastEditDate
    data_date TIMESTAMPTZ,                 -- layer date, else modified (DCAT only)
    data_date_source VARCHAR,              -- layer | modified
    data_age_days DOUBLE,
    modified_after_data_edit BOOLEAN,      -- modified more than 1 day after the layer date
    freshness_state_by_data_date VARCHAR,  -- FR-1 version 2 (DCAT with a known frequency)
    -- AC-1: the URLs the catalog publishes for it
    links INTEGER NOT NULL,
    links_with_result INTEGER NOT NULL,
    links_ok INTEGER NOT NULL,
    links_broken INTEGER NOT NULL,
    metric_version INTEGER NOT NULL
);

-- AC-1: one row per dataset and URL that is broken (not OK on consecutive probes at least 20
-- hours apart).
CREATE TABLE IF NOT EXISTS board.broken_links (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    title VARCHAR,
    agency VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    status VARCHAR NOT NULL,               -- the last outcome in words: "404", "timeout", "dns"
    first_failed TIMESTAMPTZ NOT NULL,     -- first probe of the unbroken run of failures
    last_checked TIMESTAMPTZ NOT NULL,
    agency_as_published VARCHAR
);

-- FR-5: one row per silently stale dataset (the metadata says current, the data is old).
CREATE TABLE IF NOT EXISTS board.silently_stale (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    title VARCHAR,
    agency VARCHAR NOT NULL,
    update_frequency VARCHAR NOT NULL,
    data_updated_at TIMESTAMPTZ,           -- what the catalog says (FR-1's timestamp)
    content_date TIMESTAMPTZ NOT NULL,     -- what the data says
    content_age_days DOUBLE NOT NULL,
    period_days DOUBLE NOT NULL,
    permalink VARCHAR,
    freshness_state VARCHAR NOT NULL,      -- FRESH or DUE
    agency_as_published VARCHAR
);
