-- Every plan metric of one portal's night (shared/spec/metrics.md, version 1), for the whole
-- portal (agency NULL) and for each agency. Reads the temporary tables compute.py prepares:
-- night_datasets (assessments.sql), night_assets (every asset), night_changes (INV-2) and
-- agencies. pct(n, d) is 100 n / d, NULL when d = 0.
CREATE OR REPLACE TEMP TABLE night_metrics AS

-- INV-1 assets_total: every harvested asset, in scope or not
SELECT agency, 'INV-1' AS metric_id, 'assets_total' AS metric,
       count(*)::DOUBLE AS numerator, NULL::DOUBLE AS denominator, count(*)::DOUBLE AS value,
       'count' AS unit, NULL::VARCHAR AS note
FROM night_assets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- INV-1 datasets_in_scope
SELECT agency, 'INV-1', 'datasets_in_scope', count(*), NULL, count(*), 'count', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- INV-1 assets_total:<type>, with the portal's own type names
SELECT agency, 'INV-1', 'assets_total:' || asset_type, count(*), NULL, count(*), 'count', NULL
FROM night_assets
GROUP BY GROUPING SETS ((asset_type), (asset_type, agency))

UNION ALL
-- INV-2 datasets_added, datasets_removed, datasets_renamed, datasets_rekeyed: in-scope datasets
-- against the portal's previous snapshot; a dataset whose id changed form is rekeyed
-- (catalog.changes), neither added nor removed
SELECT spine.agency, 'INV-2', 'datasets_' || spine.change,
       if($has_previous, count(changed.asset_id), NULL), NULL,
       if($has_previous, count(changed.asset_id), NULL), 'count',
       if($has_previous, NULL, 'first snapshot of this portal: nothing to compare with')
FROM (
    SELECT change, agency
    FROM unnest(['added', 'removed', 'renamed', 'rekeyed']) AS kinds(change)
    CROSS JOIN (SELECT NULL AS agency UNION ALL SELECT agency FROM agencies)
) AS spine
LEFT JOIN night_changes AS changed
    ON changed.change = spine.change AND (spine.agency IS NULL OR changed.agency = spine.agency)
GROUP BY spine.agency, spine.change

UNION ALL
-- MD-1 pct_missing_metadata: in-scope datasets missing any MD-1 field ÷ in-scope datasets
SELECT agency, 'MD-1', 'pct_missing_metadata',
       count(*) FILTER (WHERE len(md1_missing) > 0), count(*),
       pct(count(*) FILTER (WHERE len(md1_missing) > 0), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-2 pct_meets_ct_standard: in-scope datasets meeting every MD-2 requirement ÷ in-scope
SELECT agency, 'MD-2', 'pct_meets_ct_standard',
       count(*) FILTER (WHERE len(md2_missing) = 0), count(*),
       pct(count(*) FILTER (WHERE len(md2_missing) = 0), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-3 fill_rate:<field>: in-scope datasets with the field not empty, whatever its form ÷
-- in-scope datasets
SELECT agency, 'MD-3', 'fill_rate:' || field,
       count(*) FILTER (WHERE list_contains(filled_fields, field)), count(*),
       pct(count(*) FILTER (WHERE list_contains(filled_fields, field)), count(*)), 'percent', NULL
FROM night_datasets
CROSS JOIN unnest($fill_fields) AS fields(field)
GROUP BY GROUPING SETS ((field), (field, agency))

UNION ALL
-- MD-3 valid_rate:<field>: in-scope datasets whose field is also well-formed (the fields with a
-- form: hasEmail a mailto: address, modified ISO 8601, accessLevel one of three, license a URL
-- or a known name) ÷ in-scope datasets
SELECT agency, 'MD-3', 'valid_rate:' || field,
       count(*) FILTER (WHERE list_contains(valid_fields, field)), count(*),
       pct(count(*) FILTER (WHERE list_contains(valid_fields, field)), count(*)), 'percent', NULL
FROM night_datasets
CROSS JOIN unnest($valid_fields) AS fields(field)
GROUP BY GROUPING SETS ((field), (field, agency))

UNION ALL
-- MD-4 mean_metadata_score: the mean 0-100 score of in-scope datasets
SELECT agency, 'MD-4', 'mean_metadata_score',
       sum(metadata_score), count(*), avg(metadata_score), 'score', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-4 pct_band:<band>: in-scope datasets in the band ÷ in-scope datasets
SELECT agency, 'MD-4', 'pct_band:' || band,
       count(*) FILTER (WHERE score_band = band), count(*),
       pct(count(*) FILTER (WHERE score_band = band), count(*)), 'percent', NULL
FROM night_datasets
CROSS JOIN unnest(['excellent', 'good', 'sufficient', 'bad']) AS bands(band)
GROUP BY GROUPING SETS ((band), (band, agency))

UNION ALL
-- MD-5 pct_full_data_dictionary: datasets with every column described ÷ datasets with columns
-- information
SELECT agency, 'MD-5', 'pct_full_data_dictionary',
       count(*) FILTER (WHERE full_data_dictionary), count(*) FILTER (WHERE columns_total IS NOT NULL),
       pct(count(*) FILTER (WHERE full_data_dictionary), count(*) FILTER (WHERE columns_total IS NOT NULL)),
       'percent',
       if(count(*) FILTER (WHERE columns_total IS NOT NULL) = 0,
          'this portal''s catalog publishes no column information', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-5 column_doc_coverage: described columns ÷ columns, over in-scope datasets
SELECT agency, 'MD-5', 'column_doc_coverage',
       coalesce(sum(columns_described), 0), coalesce(sum(columns_total), 0),
       pct(coalesce(sum(columns_described), 0), coalesce(sum(columns_total), 0)), 'percent',
       if(count(*) FILTER (WHERE columns_total IS NOT NULL) = 0,
          'this portal''s catalog publishes no column information', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-6 pct_description_substantive
SELECT agency, 'MD-6', 'pct_description_substantive',
       count(*) FILTER (WHERE description_substantive), count(*),
       pct(count(*) FILTER (WHERE description_substantive), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-8 pct_license_present
SELECT agency, 'MD-8', 'pct_license_present',
       count(*) FILTER (WHERE license_present), count(*),
       pct(count(*) FILTER (WHERE license_present), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- MD-8 pct_license_open
SELECT agency, 'MD-8', 'pct_license_open',
       count(*) FILTER (WHERE license_open), count(*),
       pct(count(*) FILTER (WHERE license_open), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-1 freshness_state:<state>: in-scope datasets in each state
SELECT agency, 'FR-1', 'freshness_state:' || state,
       count(*) FILTER (WHERE freshness_state = state), NULL,
       count(*) FILTER (WHERE freshness_state = state), 'count', NULL
FROM night_datasets
CROSS JOIN unnest(['FRESH', 'DUE', 'OVERDUE', 'DELINQUENT', 'NOT_SCHEDULED', 'STATIC', 'UNKNOWN'])
    AS states(state)
GROUP BY GROUPING SETS ((state), (state, agency))

UNION ALL
-- FR-2 pct_stale: (OVERDUE + DELINQUENT) ÷ (FRESH + DUE + OVERDUE + DELINQUENT)
SELECT agency, 'FR-2', 'pct_stale',
       count(*) FILTER (WHERE freshness_state IN ('OVERDUE', 'DELINQUENT')),
       count(*) FILTER (WHERE freshness_state IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT')),
       pct(count(*) FILTER (WHERE freshness_state IN ('OVERDUE', 'DELINQUENT')),
           count(*) FILTER (WHERE freshness_state IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT'))),
       'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-2s pct_stale_strict: (DUE + OVERDUE + DELINQUENT) ÷ the same denominator
SELECT agency, 'FR-2s', 'pct_stale_strict',
       count(*) FILTER (WHERE freshness_state IN ('DUE', 'OVERDUE', 'DELINQUENT')),
       count(*) FILTER (WHERE freshness_state IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT')),
       pct(count(*) FILTER (WHERE freshness_state IN ('DUE', 'OVERDUE', 'DELINQUENT')),
           count(*) FILTER (WHERE freshness_state IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT'))),
       'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-3 pct_freshness_unknown: UNKNOWN ÷ in-scope datasets
SELECT agency, 'FR-3', 'pct_freshness_unknown',
       count(*) FILTER (WHERE freshness_state = 'UNKNOWN'), count(*),
       pct(count(*) FILTER (WHERE freshness_state = 'UNKNOWN'), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-4 median_days_overdue: over OVERDUE + DELINQUENT datasets, age − f (n = denominator)
SELECT agency, 'FR-4', 'median_days_overdue',
       NULL, count(days_overdue), median(days_overdue), 'days',
       if(count(days_overdue) = 0, 'no stale datasets', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-4 p90_days_overdue: the 90th percentile (interpolated) of the same
SELECT agency, 'FR-4', 'p90_days_overdue',
       NULL, count(days_overdue), quantile_cont(days_overdue, 0.9), 'days',
       if(count(days_overdue) = 0, 'no stale datasets', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-6 cadence_mismatch:<flag>: datasets flagged from the portal's own snapshot history
SELECT agency, 'FR-6', 'cadence_mismatch:' || flag,
       if($history_sufficient, count(*) FILTER (WHERE cadence_flag = flag), NULL), NULL,
       if($history_sufficient, count(*) FILTER (WHERE cadence_flag = flag), NULL), 'count',
       if($history_sufficient, NULL, $history_note)
FROM night_datasets
CROSS JOIN unnest(['under_delivering', 'misdeclared_static']) AS flags(flag)
GROUP BY GROUPING SETS ((flag), (flag, agency))

UNION ALL
-- FR-7 pct_metadata_reviewed_12m: metadata updated within 365 days ÷ in-scope datasets
SELECT agency, 'FR-7', 'pct_metadata_reviewed_12m',
       count(*) FILTER (WHERE metadata_reviewed_12m), count(*),
       pct(count(*) FILTER (WHERE metadata_reviewed_12m), count(*)), 'percent', NULL
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-9 stale_but_popular: OVERDUE or DELINQUENT and in the top quartile of last-month views
SELECT agency, 'FR-9', 'stale_but_popular',
       if($kind = 'dcat', NULL, count(*) FILTER (WHERE stale_but_popular)), NULL,
       if($kind = 'dcat', NULL, count(*) FILTER (WHERE stale_but_popular)), 'count',
       if($kind = 'dcat', 'this portal publishes no view counts', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- US-1 views_last_month, views_total, downloads_total: sums over in-scope datasets
SELECT agency, 'US-1', measure,
       CASE measure WHEN 'views_last_month' THEN sum(views_last_month)
                    WHEN 'views_total' THEN sum(views_total)
                    ELSE sum(downloads_total) END,
       NULL,
       CASE measure WHEN 'views_last_month' THEN sum(views_last_month)
                    WHEN 'views_total' THEN sum(views_total)
                    ELSE sum(downloads_total) END,
       'count',
       if($kind = 'dcat', 'this portal publishes no view or download counts', NULL)
FROM night_datasets
CROSS JOIN unnest(['views_last_month', 'views_total', 'downloads_total']) AS measures(measure)
GROUP BY GROUPING SETS ((measure), (measure, agency))

UNION ALL
-- US-2 pct_unused: datasets with 0 views last month ÷ datasets with view counts
SELECT agency, 'US-2', 'pct_unused',
       count(*) FILTER (WHERE views_last_month = 0), count(views_last_month),
       pct(count(*) FILTER (WHERE views_last_month = 0), count(views_last_month)), 'percent',
       if($kind = 'dcat', 'this portal publishes no view counts', NULL)
FROM night_datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- GV-2 duplicate_title_groups: groups of > 1 in-scope datasets with equal normalized titles
-- (per agency: among the agency's own datasets)
SELECT spine.agency, 'GV-2', 'duplicate_title_groups',
       count(groups.title_key), NULL, count(groups.title_key), 'count', NULL
FROM (SELECT NULL AS agency UNION ALL SELECT agency FROM agencies) AS spine
LEFT JOIN (
    SELECT NULL AS agency, title_key
    FROM night_datasets WHERE title_key <> ''
    GROUP BY title_key HAVING count(*) > 1
    UNION ALL
    SELECT agency, title_key
    FROM night_datasets WHERE title_key <> ''
    GROUP BY agency, title_key HAVING count(*) > 1
) AS groups ON groups.agency IS NOT DISTINCT FROM spine.agency
GROUP BY spine.agency
