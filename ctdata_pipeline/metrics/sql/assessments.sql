-- One row per in-scope dataset of one portal's night, with every per-dataset input of the plan
-- metrics (shared/spec/metrics.md, version 1). FR-6's columns are filled by cadence.sql. The
-- agency is the canonical name of the portal file's agency_aliases: (metrics/agencies.py).
CREATE OR REPLACE TEMP TABLE night_datasets AS
WITH dcat_modified AS (
    -- MD-3: DCAT's `modified` as written (the catalog keeps it parsed, NULL when unparseable),
    -- empty by the v1 convention (blank, or only a template leftover such as {{modified}})
    SELECT asset_id,
        nullif(trim(regexp_replace(json_extract_string(record, '$.modified'),
                                   '\{\{[^{}]*\}\}', '', 'g')), '') AS modified_text
    FROM catalog.raw_assets
    WHERE $kind = 'dcat' AND snapshot_date = $snapshot_date AND portal = $portal
),

night AS (
    SELECT a.*, s.kind, m.modified_text
    FROM catalog.assets AS a
    JOIN catalog.snapshots AS s USING (snapshot_date, portal)
    LEFT JOIN dcat_modified AS m USING (asset_id)
    WHERE a.snapshot_date = $snapshot_date AND a.portal = $portal AND a.in_scope
),

checked AS (
    SELECT
        night.*,
        -- The dataset names its agency: Socrata by the agency field (or, on a portal that maps
        -- none, by attribution; an owner account does not count), DCAT by publisher.name.
        CASE kind
            WHEN 'socrata' THEN agency_rule = 'custom_field'
                OR (NOT $agency_field AND agency_rule = 'attribution')
            ELSE agency IS NOT NULL
        END AS agency_named,
        coalesce(regexp_matches(contact_email, '^(mailto:)?[^@\s]+@[^@\s]+\.[^@\s]+$'), false)
            AS contact_valid,
        coalesce(regexp_matches(contact_email, '^mailto:[^@\s]+@[^@\s]+\.[^@\s]+$'), false)
            AS has_email_mailto,
        coalesce(access_level IN ('public', 'restricted public', 'non-public'), false)
            AS access_level_valid,
        -- MD-3 valid_rate: modified an ISO 8601 date or date-time (a real one), license a URL
        -- or a known licence name
        coalesce(
            regexp_full_match(modified_text,
                '\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?')
            AND try_cast(left(modified_text, 10) AS DATE) IS NOT NULL,
            false
        ) AS modified_valid,
        coalesce(
            regexp_full_match(license, 'https?://\S+')
            OR (length(license) <= $known_license_chars
                AND regexp_matches(lower(license), $known_license)),
            false
        ) AS license_valid,
        -- MD-6: at least 100 characters, not the title again, not a placeholder
        coalesce(
            length(description_text) >= $substantive_chars
            AND lower(description_text) <> lower(coalesce(title, ''))
            AND NOT list_contains($placeholders, regexp_replace(lower(description_text), '[^a-z/]', '', 'g')),
            false
        ) AS description_substantive,
        -- MD-8
        license IS NOT NULL AS license_present,
        coalesce(
            regexp_matches(lower(license), $open_license)
            AND NOT regexp_matches(lower(license), $not_open_license),
            false
        ) AS license_open,
        -- MD-4 title quality: two words and ten characters or more, not all capitals, no
        -- underscores, no file extension
        coalesce(
            length(title) >= 10 AND title LIKE '% %' AND title <> upper(title)
            AND position('_' IN title) = 0
            AND NOT regexp_matches(lower(title), '\.(csv|xlsx?|json|geojson|shp|zip|kml|txt|pdf)$'),
            false
        ) AS title_quality,
        -- MD-4 data dictionary: at least 80% of columns described (DCAT: a describedBy link)
        CASE kind
            WHEN 'socrata' THEN coalesce(columns_total > 0 AND columns_described >= 0.8 * columns_total, false)
            ELSE described_by IS NOT NULL
        END AS dictionary_80,
        -- FR-1: the last data update, and which timestamp gave it
        CASE
            WHEN data_updated_at IS NOT NULL THEN data_updated_at
            WHEN kind = 'socrata' THEN coalesce(published_at, created_at)
        END AS last_data_update,
        CASE
            WHEN data_updated_at IS NOT NULL THEN if(kind = 'socrata', 'data_updated_at', 'modified')
            WHEN kind = 'socrata' AND published_at IS NOT NULL THEN 'publication_date'
            WHEN kind = 'socrata' AND created_at IS NOT NULL THEN 'created_at'
        END AS timestamp_source
    FROM night
),

required AS (
    SELECT
        checked.*,
        -- DCAT-US required fields, empty or invalid (MD-1 for DCAT portals)
        list_filter([
            CASE WHEN title IS NULL THEN 'title' END,
            CASE WHEN description_text IS NULL THEN 'description' END,
            CASE WHEN len(tags) = 0 THEN 'keyword' END,
            CASE WHEN data_updated_at IS NULL THEN 'modified' END,
            CASE WHEN agency IS NULL THEN 'publisher.name' END,
            CASE WHEN contact_name IS NULL THEN 'contactPoint.fn' END,
            CASE WHEN NOT has_email_mailto THEN 'contactPoint.hasEmail' END,
            CASE WHEN identifier IS NULL THEN 'identifier' END,
            CASE WHEN NOT access_level_valid THEN 'accessLevel' END
        ], lambda field: field IS NOT NULL) AS dcat_required_missing,
        (epoch(snapshot_time) - epoch(last_data_update)) / 86400 AS age_days
    FROM checked
),

assessed AS (
    SELECT
        required.*,
        required.agency AS agency_as_published,
        frequency.period_days,
        -- MD-1
        CASE kind
            WHEN 'socrata' THEN list_filter([
                CASE WHEN description_text IS NULL THEN 'description' END,
                CASE WHEN update_frequency_raw IS NULL THEN 'update_frequency' END,
                CASE WHEN len(tags) = 0 THEN 'tags' END
            ], lambda field: field IS NOT NULL)
            ELSE dcat_required_missing
        END AS md1_missing,
        -- MD-2 (for DCAT: MD-1's fields plus a licence)
        CASE kind
            WHEN 'socrata' THEN list_filter([
                CASE WHEN title IS NULL THEN 'title' END,
                CASE WHEN description_text IS NULL THEN 'description' END,
                CASE WHEN NOT coalesce(list_contains($ct_categories, category), false) THEN 'category' END,
                CASE WHEN NOT agency_named THEN 'agency' END,
                CASE WHEN len(tags) = 0 THEN 'tags' END,
                CASE WHEN update_frequency = 'unknown' THEN 'update_frequency' END,
                CASE WHEN license IS NULL THEN 'license' END
            ], lambda field: field IS NOT NULL)
            ELSE list_concat(dcat_required_missing, if(license IS NULL, ['license'], []))
        END AS md2_missing,
        -- MD-3 fill_rate: standard fields that are not empty, whatever their form
        CASE kind
            WHEN 'socrata' THEN list_filter([
                CASE WHEN title IS NOT NULL THEN 'title' END,
                CASE WHEN description_text IS NOT NULL THEN 'description' END,
                CASE WHEN category IS NOT NULL THEN 'category' END,
                CASE WHEN agency_named THEN 'agency' END,
                CASE WHEN len(tags) > 0 THEN 'tags' END,
                CASE WHEN update_frequency_raw IS NOT NULL THEN 'update_frequency' END,
                CASE WHEN license IS NOT NULL THEN 'license' END,
                CASE WHEN geographic_unit IS NOT NULL THEN 'geographic_unit' END,
                CASE WHEN temporal_coverage IS NOT NULL THEN 'temporal_coverage' END,
                CASE WHEN row_label IS NOT NULL THEN 'row_label' END,
                CASE WHEN contact_email IS NOT NULL THEN 'contact_email' END,
                CASE WHEN source_link IS NOT NULL THEN 'source_link' END
            ], lambda field: field IS NOT NULL)
            ELSE list_filter([
                CASE WHEN title IS NOT NULL THEN 'title' END,
                CASE WHEN description_text IS NOT NULL THEN 'description' END,
                CASE WHEN len(tags) > 0 THEN 'keyword' END,
                CASE WHEN modified_text IS NOT NULL THEN 'modified' END,
                CASE WHEN agency IS NOT NULL THEN 'publisher.name' END,
                CASE WHEN contact_name IS NOT NULL THEN 'contactPoint.fn' END,
                CASE WHEN contact_email IS NOT NULL THEN 'contactPoint.hasEmail' END,
                CASE WHEN identifier IS NOT NULL THEN 'identifier' END,
                CASE WHEN access_level IS NOT NULL THEN 'accessLevel' END,
                CASE WHEN license IS NOT NULL THEN 'license' END,
                CASE WHEN update_frequency_raw IS NOT NULL THEN 'accrualPeriodicity' END,
                CASE WHEN geographic_unit IS NOT NULL THEN 'spatial' END,
                CASE WHEN temporal_coverage IS NOT NULL THEN 'temporal' END
            ], lambda field: field IS NOT NULL)
        END AS filled_fields,
        -- MD-3 valid_rate: the fields with a form whose value is also well-formed
        CASE kind
            WHEN 'socrata' THEN list_filter([
                CASE WHEN license_valid THEN 'license' END,
                CASE WHEN contact_valid THEN 'contact_email' END
            ], lambda field: field IS NOT NULL)
            ELSE list_filter([
                CASE WHEN has_email_mailto THEN 'contactPoint.hasEmail' END,
                CASE WHEN modified_valid THEN 'modified' END,
                CASE WHEN access_level_valid THEN 'accessLevel' END,
                CASE WHEN license_valid THEN 'license' END
            ], lambda field: field IS NOT NULL)
        END AS valid_fields,
        -- MD-4 findability (35)
        CASE WHEN len(tags) > 0 THEN 10 ELSE 0 END
            + CASE WHEN kind = 'socrata' AND coalesce(list_contains($ct_categories, category), false)
                     OR kind <> 'socrata' AND category IS NOT NULL THEN 10 ELSE 0 END
            + CASE WHEN temporal_coverage IS NOT NULL THEN 5 ELSE 0 END
            + CASE WHEN geographic_unit IS NOT NULL THEN 5 ELSE 0 END
            + CASE WHEN title_quality THEN 5 ELSE 0 END AS findability,
        -- MD-4 reusability (30)
        CASE WHEN license_present THEN 10 ELSE 0 END
            + CASE WHEN license_open THEN 5 ELSE 0 END
            + CASE WHEN agency_named THEN 5 ELSE 0 END
            + CASE WHEN contact_valid THEN 5 ELSE 0 END
            + CASE WHEN dictionary_80 THEN 5 ELSE 0 END AS reusability,
        -- MD-4 context (25)
        CASE WHEN description_substantive THEN 10 ELSE 0 END
            + CASE WHEN update_frequency <> 'unknown' THEN 10 ELSE 0 END
            + CASE WHEN row_label IS NOT NULL THEN 5 ELSE 0 END AS context,
        -- MD-4 interoperability (10): valid DCAT-US 1.1; Socrata's open API earns it
        CASE WHEN kind = 'socrata' OR schema_valid THEN 10 ELSE 0 END AS interoperability,
        -- FR-1, by FR-0's tiers ("after" = age strictly greater than that many days)
        CASE
            WHEN update_frequency = 'historical' THEN 'STATIC'
            WHEN update_frequency = 'as_needed' THEN 'NOT_SCHEDULED'
            WHEN update_frequency = 'unknown' OR last_data_update IS NULL THEN 'UNKNOWN'
            WHEN age_days < -1 THEN 'UNKNOWN'  -- a data update dated in the future cannot be aged
            WHEN age_days > frequency.delinquent_after THEN 'DELINQUENT'
            WHEN age_days > frequency.overdue_after THEN 'OVERDUE'
            WHEN age_days > frequency.due_after THEN 'DUE'
            ELSE 'FRESH'
        END AS freshness_state,
        -- FR-9: the portal's top quartile of last-month views (and viewed at all)
        views_last_month > 0
            AND views_last_month >= quantile_cont(views_last_month, 0.75) OVER () AS popular
    FROM required
    LEFT JOIN metrics.update_frequencies AS frequency ON frequency.code = required.update_frequency
)

SELECT
    snapshot_date,
    portal,
    asset_id,
    kind,
    -- the canonical name of agency_aliases:, else the name as published
    coalesce(canonical_agency(agency, $alias_variants, $alias_canonicals), agency, $no_agency)
        AS agency,
    title,
    url,
    md1_missing,
    md2_missing,
    filled_fields,
    valid_fields,
    description_substantive,
    license_present,
    license_open,
    columns_total,
    columns_described,
    -- MD-5: a dataset with at least one column, every one described
    CASE WHEN columns_total IS NOT NULL THEN columns_total > 0 AND columns_described = columns_total END
        AS full_data_dictionary,
    findability,
    reusability,
    context,
    interoperability,
    findability + reusability + context + interoperability AS metadata_score,
    CASE
        WHEN findability + reusability + context + interoperability >= $band_excellent THEN 'excellent'
        WHEN findability + reusability + context + interoperability >= $band_good THEN 'good'
        WHEN findability + reusability + context + interoperability >= $band_sufficient THEN 'sufficient'
        ELSE 'bad'
    END AS score_band,
    update_frequency,
    period_days,
    last_data_update,
    timestamp_source,
    age_days,
    freshness_state,
    -- FR-4: days past the promised period
    CASE WHEN freshness_state IN ('OVERDUE', 'DELINQUENT') THEN age_days - period_days END AS days_overdue,
    -- FR-7: metadata updated within 365 days of the snapshot
    coalesce(metadata_updated_at >= snapshot_time - INTERVAL 365 DAY, false) AS metadata_reviewed_12m,
    views_last_month,
    views_total,
    downloads_total,
    popular,
    coalesce(popular AND freshness_state IN ('OVERDUE', 'DELINQUENT'), false) AS stale_but_popular,
    -- GV-2: the title without case, punctuation, years or the word "archive"
    trim(regexp_replace(
        regexp_replace(regexp_replace(lower(coalesce(title, '')), '\b(19|20)[0-9]{2}\b', ' ', 'g'),
                       '\barchived?\b', ' ', 'g'),
        '[^a-z0-9]+', ' ', 'g')) AS title_key,
    NULL::VARCHAR AS cadence_flag,
    NULL::DOUBLE AS observed_interval_days,
    $metric_version AS metric_version,
    agency_as_published
FROM assessed
