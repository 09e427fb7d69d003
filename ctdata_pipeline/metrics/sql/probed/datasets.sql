-- One row per in-scope dataset of the night, and per other asset with a link to check, with
-- what its probes said: the per-dataset inputs of FR-5, FR-8, FR-1/FR-2 by data date and AC-1
-- (metrics.md, "Version 2 additions"). Reads metrics.datasets (the night's FR-1 assessment),
-- catalog.assets (assets that are not in-scope datasets) and probe_night_targets.
CREATE OR REPLACE TEMP TABLE probed_night AS
WITH published_names AS (
    -- the canonical name each published name got tonight, for assets outside metrics.datasets
    SELECT agency_as_published, any_value(agency) AS agency
    FROM metrics.datasets
    WHERE snapshot_date = $snapshot_date AND portal = $portal AND agency_as_published IS NOT NULL
    GROUP BY agency_as_published
),
assets AS (
    SELECT asset_id, agency, agency_as_published, title, url, true AS in_scope,
           update_frequency, period_days, freshness_state, last_data_update
    FROM metrics.datasets
    WHERE snapshot_date = $snapshot_date AND portal = $portal
    UNION ALL
    SELECT a.asset_id,
           coalesce(canonical_agency(a.agency, $alias_variants, $alias_canonicals),
                    published_names.agency, a.agency, $no_agency),
           a.agency, a.title, a.url, false,
           a.update_frequency, NULL, NULL, NULL
    FROM catalog.assets AS a
    LEFT JOIN published_names ON published_names.agency_as_published = a.agency
    WHERE a.snapshot_date = $snapshot_date AND a.portal = $portal AND NOT a.in_scope
      AND a.asset_id IN (SELECT asset_id FROM probe_night_targets WHERE probe = 'link')
),
-- FR-5: the latest column maximum that is not after the snapshot time + 1 day
content AS (
    SELECT
        asset_id,
        bool_or(has_result) AS content_checked,
        max(list_max(list_transform(
            list_filter(observed, o -> o.at IS NOT NULL AND o.at <= $snapshot_time + INTERVAL 1 DAY),
            o -> o.at
        ))) FILTER (WHERE outcome = 'ok') AS content_date
    FROM probe_night_targets
    WHERE probe = 'content_date'
    GROUP BY asset_id
),
-- FR-8: each layer's dataLastEditDate, else its lastEditDate
layer_edits AS (
    SELECT
        asset_id,
        has_result,
        CASE WHEN outcome = 'ok' THEN coalesce(
            list_filter(observed, o -> o.name = 'dataLastEditDate' AND o.at IS NOT NULL)[1],
            list_filter(observed, o -> o.name = 'lastEditDate' AND o.at IS NOT NULL)[1]
        ) END AS edit
    FROM probe_night_targets
    WHERE probe = 'layer_date'
),
layers AS (
    -- a dataset with several layers: its data last changed when any of them did; a layer date
    -- more than a day in the future cannot be aged (as FR-1 treats a future timestamp)
    SELECT
        asset_id,
        bool_or(has_result) AS layers_checked,
        max(edit.at) FILTER (WHERE edit.at <= $snapshot_time + INTERVAL 1 DAY) AS layer_date,
        arg_max(edit.name, edit.at) FILTER (WHERE edit.at <= $snapshot_time + INTERVAL 1 DAY)
            AS layer_date_source
    FROM layer_edits
    GROUP BY asset_id
),
-- AC-1: the dataset's URLs and what their latest results say
links AS (
    SELECT
        asset_id,
        count(DISTINCT target) AS links,
        count(DISTINCT target) FILTER (WHERE has_result) AS links_with_result,
        count(DISTINCT target) FILTER (WHERE has_result AND ok) AS links_ok,
        count(DISTINCT target) FILTER (WHERE broken) AS links_broken
    FROM probe_night_targets
    WHERE probe = 'link'
    GROUP BY asset_id
),
dated AS (
    SELECT
        assets.*,
        content.asset_id IS NOT NULL AS has_date_column,
        coalesce(content.content_checked, false) AS content_checked,
        content.content_date,
        (epoch($snapshot_time) - epoch(content.content_date)) / 86400 AS content_age_days,
        layers.asset_id IS NOT NULL AS has_layer_url,
        coalesce(layers.layers_checked, false) AS layers_checked,
        layers.layer_date,
        layers.layer_date_source,
        -- FR-8 data date (DCAT): the layer date where present, else modified
        CASE WHEN $kind = 'dcat' AND in_scope THEN
            CASE
                WHEN layers.layer_date IS NOT NULL THEN layers.layer_date
                WHEN assets.last_data_update <= $snapshot_time + INTERVAL 1 DAY
                    THEN assets.last_data_update
            END
        END AS data_date,
        CASE WHEN $kind = 'dcat' AND in_scope THEN
            CASE
                WHEN layers.layer_date IS NOT NULL THEN 'layer'
                WHEN assets.last_data_update <= $snapshot_time + INTERVAL 1 DAY THEN 'modified'
            END
        END AS data_date_source,
        coalesce(links.links, 0) AS links,
        coalesce(links.links_with_result, 0) AS links_with_result,
        coalesce(links.links_ok, 0) AS links_ok,
        coalesce(links.links_broken, 0) AS links_broken
    FROM assets
    LEFT JOIN content USING (asset_id)
    LEFT JOIN layers USING (asset_id)
    LEFT JOIN links USING (asset_id)
)
SELECT
    dated.*,
    -- FR-5 silently stale: the metadata says FRESH or DUE, the content is older than 3 x f
    CASE WHEN content_date IS NOT NULL AND freshness_state IN ('FRESH', 'DUE')
        THEN content_age_days > 3 * dated.period_days
    END AS silently_stale,
    (epoch($snapshot_time) - epoch(data_date)) / 86400 AS data_age_days,
    -- FR-8: Hub's modified more than 1 day after the layer's own edit date
    CASE WHEN layer_date IS NOT NULL AND $kind = 'dcat'
        THEN coalesce(last_data_update > layer_date + INTERVAL 1 DAY, false)
    END AS modified_after_data_edit,
    -- FR-1 version 2 for DCAT portals: the tiers of FR-0, aged by the data date, where the
    -- dataset's accrualPeriodicity is known
    CASE WHEN $kind = 'dcat' AND in_scope AND update_frequency <> 'unknown' THEN
        CASE
            WHEN update_frequency = 'historical' THEN 'STATIC'
            WHEN update_frequency = 'as_needed' THEN 'NOT_SCHEDULED'
            WHEN data_date IS NULL THEN 'UNKNOWN'
            WHEN (epoch($snapshot_time) - epoch(data_date)) / 86400 > tiers.delinquent_after
                THEN 'DELINQUENT'
            WHEN (epoch($snapshot_time) - epoch(data_date)) / 86400 > tiers.overdue_after
                THEN 'OVERDUE'
            WHEN (epoch($snapshot_time) - epoch(data_date)) / 86400 > tiers.due_after THEN 'DUE'
            ELSE 'FRESH'
        END
    END AS freshness_state_by_data_date
FROM dated
LEFT JOIN metrics.update_frequencies AS tiers ON tiers.code = dated.update_frequency
