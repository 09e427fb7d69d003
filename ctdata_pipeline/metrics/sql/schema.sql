-- Tables of the metrics step. board.plan_metrics is the product spec's table (its columns come
-- first, as the spec lists them); metrics.datasets holds the per-dataset inputs of every metric.
CREATE SCHEMA IF NOT EXISTS metrics;
CREATE SCHEMA IF NOT EXISTS board;

-- FR-0's tiers, loaded from ctdata_pipeline.catalog.frequency so SQL and Python share one table.
CREATE TABLE IF NOT EXISTS metrics.update_frequencies (
    code VARCHAR NOT NULL,
    period_days DOUBLE,
    due_after DOUBLE,
    overdue_after DOUBLE,
    delinquent_after DOUBLE
);

CREATE TABLE IF NOT EXISTS metrics.datasets (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    agency VARCHAR NOT NULL,           -- canonical (agency_aliases:); '(no agency)' when none
    title VARCHAR,
    url VARCHAR,
    md1_missing VARCHAR[] NOT NULL,    -- MD-1 fields empty or invalid
    md2_missing VARCHAR[] NOT NULL,    -- MD-2 requirements not met
    filled_fields VARCHAR[] NOT NULL,  -- MD-3 standard fields that are not empty
    description_substantive BOOLEAN NOT NULL,  -- MD-6
    license_present BOOLEAN NOT NULL,  -- MD-8
    license_open BOOLEAN NOT NULL,     -- MD-8
    columns_total INTEGER,             -- MD-5 (NULL: the portal publishes no columns)
    columns_described INTEGER,
    full_data_dictionary BOOLEAN,
    findability DOUBLE NOT NULL,       -- MD-4 parts
    reusability DOUBLE NOT NULL,
    context DOUBLE NOT NULL,
    interoperability DOUBLE NOT NULL,
    metadata_score DOUBLE NOT NULL,    -- MD-4
    score_band VARCHAR NOT NULL,
    update_frequency VARCHAR NOT NULL, -- FR-0 code
    period_days DOUBLE,
    last_data_update TIMESTAMPTZ,      -- FR-1
    timestamp_source VARCHAR,
    age_days DOUBLE,
    freshness_state VARCHAR NOT NULL,
    days_overdue DOUBLE,               -- FR-4
    metadata_reviewed_12m BOOLEAN NOT NULL,  -- FR-7
    views_last_month BIGINT,           -- US-1, US-2, FR-9
    views_total BIGINT,
    downloads_total BIGINT,
    popular BOOLEAN,
    stale_but_popular BOOLEAN NOT NULL,
    title_key VARCHAR,                 -- GV-2
    cadence_flag VARCHAR,              -- FR-6
    observed_interval_days DOUBLE,
    metric_version INTEGER NOT NULL,
    agency_as_published VARCHAR,       -- the agency as the catalog names it (agency: canonical)
    valid_fields VARCHAR[]             -- MD-3 fields with a form whose value is well-formed
);

-- AC-2 and GV-1 per in-scope dataset (practice.sql): formats found, and what the portal's own
-- snapshots say about how its data is updated.
CREATE TABLE IF NOT EXISTS metrics.dataset_practice (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    asset_id VARCHAR NOT NULL,
    agency VARCHAR NOT NULL,
    formats VARCHAR[] NOT NULL,           -- AC-2: csv, json, arcgis_rest, xlsx, other, ...
    machine_readable BOOLEAN NOT NULL,    -- AC-2 (XLS/XLSX count)
    machine_readable_open BOOLEAN NOT NULL,  -- ... in an open format
    automation_judged BOOLEAN NOT NULL,   -- GV-1: f <= 90 days, held >= 180 days
    data_changes INTEGER NOT NULL,        -- data-update times in the last 180 days
    interval_cv DOUBLE,                   -- coefficient of variation of their intervals
    automated_inferred BOOLEAN NOT NULL,  -- >= 6 changes and CV < 0.3
    metric_version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS board.plan_metrics (
    snapshot_date DATE NOT NULL,
    portal VARCHAR NOT NULL,
    agency VARCHAR,                    -- NULL: the whole portal
    metric_id VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    numerator DOUBLE,
    denominator DOUBLE,                -- NULL for counts
    value DOUBLE,                      -- NULL when there is nothing to divide by, or no data
    metric_version INTEGER NOT NULL,
    unit VARCHAR NOT NULL,             -- percent, count, days, score
    note VARCHAR                       -- why a value is NULL, when it is
);

-- Every night's value of every metric next to the night before it: the trend of any metric,
-- portal-wide (agency IS NULL) or per agency.
CREATE OR REPLACE VIEW board.metric_trends AS
SELECT
    snapshot_date,
    portal,
    agency,
    metric_id,
    metric,
    unit,
    value,
    lag(snapshot_date) OVER series AS previous_date,
    lag(value) OVER series AS previous_value,
    value - lag(value) OVER series AS change,
    first_value(value) OVER (series ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
        AS first_value,
    metric_version
FROM board.plan_metrics
WINDOW series AS (PARTITION BY portal, agency, metric ORDER BY snapshot_date);
