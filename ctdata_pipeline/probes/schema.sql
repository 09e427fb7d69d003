-- Probe targets and results (README, "Probe results"). Created by the probes stage; the
-- metrics stage only reads them.
CREATE SCHEMA IF NOT EXISTS probes;

-- Every probe target a night's snapshot names, with the dataset it belongs to: one URL can
-- belong to several datasets, and a dataset to several targets.
CREATE TABLE IF NOT EXISTS probes.targets (
    portal        VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,
    asset_id      VARCHAR NOT NULL,
    probe         VARCHAR NOT NULL,   -- content_date | layer_date | link
    target        VARCHAR NOT NULL,   -- dataset id | layer URL | URL
    url           VARCHAR NOT NULL,   -- what is requested
    columns       VARCHAR[]           -- content_date: the date columns asked about
    -- One row per (portal, snapshot_date, asset_id, probe, target): store.write_targets keeps
    -- the first of repeats (no PRIMARY KEY: a DuckLake refuses constraints).
);

-- Every probe made, kept: the metrics read each target's latest result no older than
-- 2 x probe_interval_days.
CREATE TABLE IF NOT EXISTS probes.results (
    portal        VARCHAR NOT NULL,
    probe         VARCHAR NOT NULL,
    target        VARCHAR NOT NULL,
    snapshot_date DATE NOT NULL,      -- the night whose probe run made it
    probed_at     TIMESTAMPTZ NOT NULL,
    request       VARCHAR NOT NULL,
    outcome       VARCHAR NOT NULL,   -- ok | http_error | timeout | dns | refused | tls |
                                      -- too_many_redirects | not_checked | bad_answer | error
    status_code   INTEGER,
    final_url     VARCHAR,
    observed      STRUCT(name VARCHAR, "at" TIMESTAMPTZ)[],  -- "at" is a DuckDB keyword
    detail        VARCHAR,
    elapsed_ms    INTEGER,
    replayed      BOOLEAN NOT NULL DEFAULT false  -- a past night probed "as of" that night
);
