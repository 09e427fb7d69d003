-- The night's rows of the two work lists the probes feed, built before anything is written.

-- board.broken_links (AC-1): one row per dataset and broken URL, the longest broken first
CREATE OR REPLACE TEMP TABLE probe_night_broken_links AS
SELECT $snapshot_date AS snapshot_date, $portal AS portal, d.asset_id, d.title, d.agency,
       t.target AS url, t.status, t.first_failed, t.probed_at AS last_checked,
       d.agency_as_published
FROM probe_night_targets AS t
JOIN probed_night AS d USING (asset_id)
WHERE t.probe = 'link' AND t.broken
ORDER BY t.first_failed, d.asset_id, t.target;

-- board.silently_stale (FR-5): one row per silently stale dataset, the oldest content first
CREATE OR REPLACE TEMP TABLE probe_night_silently_stale AS
SELECT $snapshot_date AS snapshot_date, $portal AS portal, asset_id, title, agency,
       update_frequency, last_data_update AS data_updated_at, content_date, content_age_days,
       period_days, url AS permalink, freshness_state, agency_as_published
FROM probed_night
WHERE silently_stale
ORDER BY content_age_days DESC, asset_id;
