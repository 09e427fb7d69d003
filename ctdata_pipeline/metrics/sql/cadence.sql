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
            -- the data-update times of every in-scope record version the portal's snapshots
            -- of the window held: a version held in a run of snapshots that overlaps the
            -- window (catalog.version_runs: a row per version and run, not per asset and night)
            SELECT DISTINCT asset_id, data_updated_at
            FROM catalog.asset_versions
            WHERE in_scope
              AND data_updated_at IS NOT NULL
              AND version_id IN (
                  SELECT version_id FROM catalog.version_runs
                  WHERE portal = $portal
                    AND first_night <= $snapshot_date
                    AND last_night >= $snapshot_date - $window_days
              )
        )
    )
    GROUP BY asset_id
) AS observed
WHERE observed.asset_id = d.asset_id
