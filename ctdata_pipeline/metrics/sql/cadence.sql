-- FR-6: declared against observed update cadence, from the portal's own snapshots of the last
-- 365 days. Run only when those snapshots cover at least 30 nights (else every dataset is
-- flagged 'insufficient history' and no count is guessed). A dataset's history is that of its
-- identity (catalog.asset_identity): the versions it had under an earlier form of its id count.
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
        dataset_id,
        count(*) AS distinct_updates,
        -- the median interval between consecutive distinct data-update times
        median(interval_seconds) / 86400 AS median_interval_days
    FROM (
        SELECT
            dataset_id,
            epoch(data_updated_at)
                - epoch(lag(data_updated_at) OVER (PARTITION BY dataset_id ORDER BY data_updated_at))
                AS interval_seconds
        FROM (
            -- the data-update times of every in-scope record version the portal's snapshots
            -- of the window held: a version held in a run of snapshots that overlaps the
            -- window (catalog.version_runs: a row per version and run, not per asset and night)
            SELECT DISTINCT coalesce(i.dataset_id, v.asset_id) AS dataset_id, v.data_updated_at
            FROM catalog.asset_versions AS v
            LEFT JOIN catalog.asset_identity AS i
                ON i.portal = v.portal AND i.asset_id = v.asset_id
            WHERE v.portal = $portal AND v.in_scope
              AND v.data_updated_at IS NOT NULL
              AND v.version_id IN (
                  SELECT version_id FROM catalog.version_runs
                  WHERE portal = $portal
                    AND first_night <= $snapshot_date
                    AND last_night >= $snapshot_date - $window_days
              )
        )
    )
    GROUP BY dataset_id
) AS observed
WHERE observed.dataset_id = coalesce(
    (SELECT i.dataset_id FROM catalog.asset_identity AS i
     WHERE i.portal = $portal AND i.asset_id = d.asset_id),
    d.asset_id
)
