-- Each probe target of the night with its latest result (metrics.md, "Probes"): the newest
-- result of a probe run of this night or an earlier one, no older than 2 x probe_interval_days
-- at the snapshot time. A not_checked result was never sent, so it is no result: the target
-- counts as not checked, never as good or bad. For links, the unbroken run of failures that
-- ends in the latest result (AC-1's "consecutive probes").
CREATE OR REPLACE TEMP TABLE probe_night_targets AS
WITH targets AS (
    SELECT DISTINCT asset_id, probe, target
    FROM probes.targets
    WHERE portal = $portal AND snapshot_date = $snapshot_date
),
history AS (
    SELECT
        r.probe, r.target, r.probed_at, r.outcome, r.status_code, r.observed,
        r.outcome = 'ok' AS ok,
        row_number() OVER newest_first AS recency,
        -- OK results from this one up to the latest: 0 = every result since has failed
        sum((r.outcome = 'ok')::INTEGER) OVER (newest_first ROWS UNBOUNDED PRECEDING) AS ok_since
    FROM probes.results AS r
    WHERE r.portal = $portal
      AND r.snapshot_date <= $snapshot_date
      AND r.outcome <> 'not_checked'
      AND (r.probe, r.target) IN (SELECT (probe, target) FROM targets)
    WINDOW newest_first AS (
        PARTITION BY r.probe, r.target ORDER BY r.probed_at DESC, r.snapshot_date DESC
    )
),
failing AS (
    SELECT probe, target, min(probed_at) AS first_failed, count(*) AS failures
    FROM history
    WHERE ok_since = 0
    GROUP BY probe, target
),
latest AS (
    SELECT history.*, failing.first_failed, failing.failures
    FROM history
    LEFT JOIN failing USING (probe, target)
    WHERE recency = 1 AND probed_at >= $snapshot_time - to_days($window_days::INTEGER)
)
SELECT
    targets.asset_id,
    targets.probe,
    targets.target,
    latest.probed_at IS NOT NULL AS has_result,
    latest.probed_at,
    latest.outcome,
    latest.status_code,
    latest.observed,
    latest.ok,
    latest.first_failed,
    -- AC-1 broken: not OK on consecutive probes at least 20 hours apart (one failure, or
    -- failures closer together, is failing, not broken)
    coalesce(
        NOT latest.ok AND latest.failures >= 2
            AND latest.probed_at - latest.first_failed >= to_hours($broken_hours::INTEGER),
        false
    ) AS broken,
    -- the last outcome in words, for the work list: the status code of an HTTP error, else
    -- the error class
    CASE
        WHEN latest.outcome = 'http_error' AND latest.status_code IS NOT NULL
            THEN latest.status_code::VARCHAR
        ELSE replace(latest.outcome, '_', ' ')
    END AS status
FROM targets
LEFT JOIN latest USING (probe, target)
