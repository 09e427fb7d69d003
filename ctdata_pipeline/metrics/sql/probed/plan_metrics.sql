-- The probe metrics of one portal's night (metrics.md, "Version 2 additions"), for the whole
-- portal (agency NULL) and for each agency, from probed_night (datasets.sql) and
-- probe_night_targets (latest_results.sql). pct(n, d) is 100 n / d, NULL when d = 0. A value
-- that cannot be computed is NULL with a note saying why ($content_not_applicable, $layers_not_applicable: the metric reads
-- what this kind of portal does not publish).
CREATE OR REPLACE TEMP TABLE probe_night_metrics AS
WITH datasets AS (SELECT * FROM probed_night WHERE in_scope),
-- every asset with its link targets (a URL of several datasets counts once in a group)
asset_links AS (
    SELECT probed_night.agency, links.*
    FROM probed_night
    LEFT JOIN (SELECT * FROM probe_night_targets WHERE probe = 'link') AS links USING (asset_id)
)

-- FR-5 pct_silently_stale: silently stale ÷ FRESH or DUE datasets with a content date
SELECT agency, 'FR-5' AS metric_id, 'pct_silently_stale' AS metric,
       count(*) FILTER (WHERE silently_stale)::DOUBLE AS numerator,
       count(silently_stale)::DOUBLE AS denominator,
       pct(count(*) FILTER (WHERE silently_stale), count(silently_stale)) AS value,
       'percent' AS unit,
       CASE
           WHEN $kind <> 'socrata' THEN $content_not_applicable
           WHEN count(silently_stale) > 0 THEN NULL
           WHEN count(*) FILTER (WHERE has_date_column) = 0 THEN 'no dataset with a date column'
           WHEN count(*) FILTER (WHERE content_checked) = 0 THEN 'not yet probed'
           ELSE 'no FRESH or DUE dataset with a content date'
       END AS note
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-5 content_date_coverage: datasets with a content date ÷ datasets with a date column
SELECT agency, 'FR-5', 'content_date_coverage',
       count(content_date), count(*) FILTER (WHERE has_date_column),
       pct(count(content_date), count(*) FILTER (WHERE has_date_column)), 'percent',
       CASE
           WHEN $kind <> 'socrata' THEN $content_not_applicable
           WHEN count(*) FILTER (WHERE has_date_column) = 0 THEN 'no dataset with a date column'
           WHEN count(*) FILTER (WHERE content_checked) = 0 THEN 'not yet probed'
       END
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-8 median_data_age_days: over datasets with a layer URL and a data date (n = denominator)
SELECT agency, 'FR-8', 'median_data_age_days',
       NULL, count(data_age_days) FILTER (WHERE has_layer_url),
       median(data_age_days) FILTER (WHERE has_layer_url), 'days',
       CASE
           WHEN $kind <> 'dcat' THEN $layers_not_applicable
           WHEN count(*) FILTER (WHERE has_layer_url) = 0 THEN 'no dataset with an ArcGIS layer'
           WHEN count(data_age_days) FILTER (WHERE has_layer_url) = 0 THEN 'no data date'
       END
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-8 pct_data_older_than_1y / 3y: data age > 365 (1095) days ÷ datasets with a data date
SELECT agency, 'FR-8', 'pct_data_older_than_' || span,
       count(*) FILTER (WHERE has_layer_url AND data_age_days > days),
       count(data_age_days) FILTER (WHERE has_layer_url),
       pct(count(*) FILTER (WHERE has_layer_url AND data_age_days > days),
           count(data_age_days) FILTER (WHERE has_layer_url)),
       'percent',
       CASE
           WHEN $kind <> 'dcat' THEN $layers_not_applicable
           WHEN count(*) FILTER (WHERE has_layer_url) = 0 THEN 'no dataset with an ArcGIS layer'
           WHEN count(data_age_days) FILTER (WHERE has_layer_url) = 0 THEN 'no data date'
       END
FROM datasets
CROSS JOIN (VALUES ('1y', 365), ('3y', 3 * 365)) AS spans(span, days)
GROUP BY GROUPING SETS ((span, days), (span, days, agency))

UNION ALL
-- FR-8 layer_date_coverage: datasets with a layer date ÷ datasets with a layer URL
SELECT agency, 'FR-8', 'layer_date_coverage',
       count(layer_date), count(*) FILTER (WHERE has_layer_url),
       pct(count(layer_date), count(*) FILTER (WHERE has_layer_url)), 'percent',
       CASE
           WHEN $kind <> 'dcat' THEN $layers_not_applicable
           WHEN count(*) FILTER (WHERE has_layer_url) = 0 THEN 'no dataset with an ArcGIS layer'
           WHEN count(*) FILTER (WHERE layers_checked) = 0 THEN 'not yet probed'
       END
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-8 pct_modified_after_data_edit: modified > layer date + 1 day ÷ datasets with a layer date
SELECT agency, 'FR-8', 'pct_modified_after_data_edit',
       count(*) FILTER (WHERE modified_after_data_edit), count(layer_date),
       pct(count(*) FILTER (WHERE modified_after_data_edit), count(layer_date)), 'percent',
       CASE
           WHEN $kind <> 'dcat' THEN $layers_not_applicable
           WHEN count(layer_date) > 0 THEN NULL
           WHEN count(*) FILTER (WHERE has_layer_url) = 0 THEN 'no dataset with an ArcGIS layer'
           WHEN count(*) FILTER (WHERE layers_checked) = 0 THEN 'not yet probed'
           ELSE 'no layer date'
       END
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- FR-1 (version 2) freshness_state_by_data_date:<state>: DCAT datasets with a known
-- accrualPeriodicity in each state, aged by the data date
SELECT agency, 'FR-1', 'freshness_state_by_data_date:' || state,
       if($kind = 'dcat', count(*) FILTER (WHERE freshness_state_by_data_date = state), NULL),
       NULL,
       if($kind = 'dcat', count(*) FILTER (WHERE freshness_state_by_data_date = state), NULL),
       'count',
       if($kind = 'dcat', NULL, $layers_not_applicable)
FROM datasets
CROSS JOIN unnest(['FRESH', 'DUE', 'OVERDUE', 'DELINQUENT', 'NOT_SCHEDULED', 'STATIC', 'UNKNOWN'])
    AS states(state)
GROUP BY GROUPING SETS ((state), (state, agency))

UNION ALL
-- FR-2 pct_stale_by_data_date: (OVERDUE + DELINQUENT) ÷ (FRESH + DUE + OVERDUE + DELINQUENT),
-- by the data date
SELECT agency, 'FR-2', 'pct_stale_by_data_date',
       count(*) FILTER (WHERE freshness_state_by_data_date IN ('OVERDUE', 'DELINQUENT')),
       count(*) FILTER (WHERE freshness_state_by_data_date IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT')),
       pct(count(*) FILTER (WHERE freshness_state_by_data_date IN ('OVERDUE', 'DELINQUENT')),
           count(*) FILTER (WHERE freshness_state_by_data_date IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT'))),
       'percent',
       CASE
           WHEN $kind <> 'dcat' THEN $layers_not_applicable
           WHEN count(*) FILTER (WHERE freshness_state_by_data_date IN ('FRESH', 'DUE', 'OVERDUE', 'DELINQUENT')) = 0
               THEN 'no dataset with a schedule and a data date'
       END
FROM datasets
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- AC-1 pct_links_ok: OK URLs ÷ URLs with a result
SELECT agency, 'AC-1', 'pct_links_ok',
       count(DISTINCT target) FILTER (WHERE has_result AND ok),
       count(DISTINCT target) FILTER (WHERE has_result),
       pct(count(DISTINCT target) FILTER (WHERE has_result AND ok),
           count(DISTINCT target) FILTER (WHERE has_result)),
       'percent',
       CASE
           WHEN count(DISTINCT target) FILTER (WHERE has_result) > 0 THEN NULL
           WHEN count(DISTINCT target) = 0 THEN 'no URL to check'
           ELSE 'not yet probed'
       END
FROM asset_links
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- AC-1 pct_datasets_with_broken_link: datasets with >= 1 broken URL ÷ datasets with >= 1 URL
-- with a result
SELECT agency, 'AC-1', 'pct_datasets_with_broken_link',
       count(*) FILTER (WHERE links_broken > 0), count(*) FILTER (WHERE links_with_result > 0),
       pct(count(*) FILTER (WHERE links_broken > 0), count(*) FILTER (WHERE links_with_result > 0)),
       'percent',
       CASE
           WHEN count(*) FILTER (WHERE links_with_result > 0) > 0 THEN NULL
           WHEN count(*) FILTER (WHERE links > 0) = 0 THEN 'no URL to check'
           ELSE 'not yet probed'
       END
FROM probed_night
GROUP BY GROUPING SETS ((), (agency))

UNION ALL
-- AC-1 links_not_checked: URLs without a recent result (never sent, or none in 2 x interval)
SELECT agency, 'AC-1', 'links_not_checked',
       count(DISTINCT target) FILTER (WHERE NOT has_result), NULL,
       count(DISTINCT target) FILTER (WHERE NOT has_result), 'count', NULL
FROM asset_links
GROUP BY GROUPING SETS ((), (agency))
