-- FR-6: declared against observed update cadence, from the portal's own snapshots of the last
-- 365 days. Run only when those snapshots cover at least 30 nights (else every dataset is
-- flagged 'insufficient history' and no count is guessed).
UPDATE night_datasets AS d
SET
    observed_interval_days = observed.median_interval_days,
    cadence_flag = CASE
        WHEN d.update_frequency = 'historical' AND observed.distinct_updates >= 2
            THEN 'misdeclared_static'
        WHEN d.period_days IS NOT NULL AND observed.median_interval_days > 2 * d.period_days
            THEN 'under_delivering'
    END
FROM (
    SELECT
        asset_id,
        count(*) AS distinct_updates,
        -- the median interval between consecutive distinct data-update times
        median(interval_seconds) / 86400 AS median_interval_days
    FROM (
        SELECT
            asset_id,
            epoch(data_updated_at)
                - epoch(lag(data_updated_at) OVER (PARTITION BY asset_id ORDER BY data_updated_at))
                AS interval_seconds
        FROM (
            SELECT DISTINCT asset_id, data_updated_at
            FROM catalog.assets
            WHERE portal = $portal
              AND snapshot_date BETWEEN $snapshot_date - $window_days AND $snapshot_date
              AND in_scope
              AND data_updated_at IS NOT NULL
        )
    )
    GROUP BY asset_id
) AS observed
WHERE observed.asset_id = d.asset_id
