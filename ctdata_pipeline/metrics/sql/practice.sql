-- AC-2 and GV-1 per in-scope dataset of one portal's night (metrics.md, "Version 2
-- additions"): machine-readable distributions, and updates inferred automated from the
-- portal's own snapshots. Reads night_datasets (assessments.sql) and the catalog.
CREATE OR REPLACE TEMP TABLE night_practice AS
WITH
tonight AS (
    SELECT snapshot_time FROM catalog.snapshots
    WHERE portal = $portal AND snapshot_date = $snapshot_date
),
-- AC-2: every DCAT distribution of tonight's in-scope datasets (a Socrata dataset has none:
-- its CSV/JSON API is the distribution)
distributions AS (
    SELECT raw.asset_id, unnest(
        CASE json_type(raw.record -> 'distribution')
            WHEN 'ARRAY' THEN json_transform(raw.record -> 'distribution', $distribution_shape)
            WHEN 'OBJECT' THEN [json_transform(raw.record -> 'distribution', $distribution_item)]
            ELSE []
        END
    ) AS d
    FROM catalog.raw_assets AS raw
    WHERE raw.snapshot_date = $snapshot_date AND raw.portal = $portal AND $kind = 'dcat'
      AND raw.asset_id IN (SELECT asset_id FROM night_datasets)
),
-- by mediaType, else format, else the URL (a generic mediaType such as
-- application/octet-stream or application/zip names no format: the next one is asked)
formats AS (
    SELECT asset_id, coalesce(
        format_of_media_type(d.mediaType),
        format_of_name(d.format),
        format_of_url(d.downloadURL),
        format_of_url(d.accessURL)
    ) AS distribution_format
    FROM distributions
),
by_dataset AS (
    SELECT asset_id, list_sort(list_distinct(list(distribution_format))) AS formats
    FROM formats
    WHERE distribution_format IS NOT NULL
    GROUP BY asset_id
),
-- GV-1: tonight's scheduled datasets with f <= 90 days, and how long the portal's snapshots
-- have held each
held AS (
    SELECT v.asset_id, min(r.first_night) AS first_night
    FROM catalog.version_runs AS r
    JOIN catalog.asset_versions AS v ON v.version_id = r.version_id AND v.portal = r.portal
    WHERE r.portal = $portal AND r.first_night <= $snapshot_date
      AND v.asset_id IN (SELECT asset_id FROM night_datasets)
    GROUP BY v.asset_id
),
-- the distinct data-update times of the versions held in the last 180 days that fall inside
-- those 180 days: each one a change of the data-update time
changes AS (
    SELECT DISTINCT v.asset_id, v.data_updated_at
    FROM catalog.asset_versions AS v
    WHERE v.portal = $portal AND v.in_scope AND v.data_updated_at IS NOT NULL
      AND v.asset_id IN (SELECT asset_id FROM night_datasets)
      AND v.version_id IN (
          SELECT version_id FROM catalog.version_runs
          WHERE portal = $portal
            AND first_night <= $snapshot_date
            AND last_night >= $snapshot_date - $automation_days::INTEGER
      )
      AND v.data_updated_at > (SELECT snapshot_time FROM tonight) - to_days($automation_days::INTEGER)
      AND v.data_updated_at <= (SELECT snapshot_time FROM tonight)
),
intervals AS (
    SELECT asset_id,
           epoch(data_updated_at) - epoch(lag(data_updated_at) OVER (
               PARTITION BY asset_id ORDER BY data_updated_at
           )) AS interval_seconds
    FROM changes
),
cadence AS (
    SELECT asset_id,
           count(*) AS changes,
           -- the coefficient of variation of the intervals between changes (population SD)
           stddev_pop(interval_seconds) / nullif(avg(interval_seconds), 0) AS interval_cv
    FROM intervals
    GROUP BY asset_id
)
SELECT
    d.asset_id,
    d.agency,
    -- AC-2: a Socrata tabular dataset counts (its CSV and JSON API); XLS/XLSX are machine-
    -- readable but not open
    CASE WHEN $kind = 'socrata' THEN ['api'] ELSE coalesce(f.formats, []) END AS formats,
    $kind = 'socrata'
        OR len(list_filter(coalesce(f.formats, []), x -> list_contains($machine_readable, x))) > 0
        AS machine_readable,
    $kind = 'socrata'
        OR len(list_filter(coalesce(f.formats, []), x -> list_contains($open_formats, x))) > 0
        AS machine_readable_open,
    -- GV-1
    coalesce(d.period_days <= $automation_max_period
             AND h.first_night <= $snapshot_date - $automation_days::INTEGER, false)
        AS automation_judged,
    coalesce(c.changes, 0) AS data_changes,
    c.interval_cv,
    coalesce(d.period_days <= $automation_max_period
             AND h.first_night <= $snapshot_date - $automation_days::INTEGER
             AND c.changes >= $automation_min_changes
             AND c.interval_cv < $automation_max_cv, false) AS automated_inferred
FROM night_datasets AS d
LEFT JOIN by_dataset AS f USING (asset_id)
LEFT JOIN held AS h USING (asset_id)
LEFT JOIN cadence AS c USING (asset_id)
