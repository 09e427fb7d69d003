-- board.stale_datasets: OVERDUE and DELINQUENT in-scope datasets (FR-1), ranked for the work
-- list: stale-but-popular first (FR-9), then by last month's views, then by days overdue.
INSERT INTO board.stale_datasets
SELECT snapshot_date, portal, asset_id, title, agency, update_frequency,
       last_data_update AS data_updated_at, age_days, freshness_state, days_overdue,
       views_last_month, url, stale_but_popular, timestamp_source,
       row_number() OVER (
           ORDER BY stale_but_popular DESC, views_last_month DESC NULLS LAST, days_overdue DESC,
                    asset_id
       ) AS work_rank,
       agency_as_published
FROM metrics.datasets
WHERE snapshot_date = $snapshot_date AND portal = $portal
  AND freshness_state IN ('OVERDUE', 'DELINQUENT')
