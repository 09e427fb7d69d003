-- Discovery API records (tonight's staged_assets that staged_new lists: no stored version has
-- them) -> catalog.asset_versions columns.
-- Rules of the product spec and metrics.md: the in-scope test, the agency rule (custom field,
-- then attribution, then owner), FR-0 frequency codes, column counts without system columns,
-- timestamps as UTC; a value empty by the metric conventions is NULL. The night's counters
-- were taken out of the record when it was staged.
WITH parsed AS (
    SELECT asset_id, record_hash, json_transform(record, '{record_structure}') AS r
    FROM staged_new JOIN staged_assets USING (asset_id, record_hash)
),
fields AS (
    SELECT
        asset_id,
        record_hash,
        r.resource AS resource,
        r.classification AS classification,
        r.metadata AS metadata,
        -- custom fields: a list of {key, value}; the portal file names each standard field's key
        CASE WHEN json_type(r.classification.domain_metadata) = 'ARRAY'
            THEN json_transform(
                r.classification.domain_metadata, '[{"key": "VARCHAR", "value": "JSON"}]'
            )
        END AS custom,
        coalesce(clean_json_text(r.resource."type"), 'unknown') AS asset_type,
        clean_json_text(r.metadata.domain) AS source_domain,
        clean_json_text(r.resource.provenance) AS provenance,
        clean_json_list(r.resource.parent_fxf) AS parent_ids,
        coalesce(
            clean_json_text(r.owner.display_name), clean_json_text(r.owner.displayName)
        ) AS owner_name,
        clean_json_text(r.resource.attribution) AS attribution,
        clean_json_text(r.resource.description) AS description_text,
        -- column lists as text (an item that is not text counts as its JSON text)
        CASE WHEN json_type(r.resource.columns_field_name) = 'ARRAY'
            THEN json_transform(r.resource.columns_field_name, '["VARCHAR"]')
        END AS column_fields,
        CASE WHEN json_type(r.resource.columns_name) = 'ARRAY'
            THEN list_transform(
                json_transform(r.resource.columns_name, '["VARCHAR"]'),
                name -> lower(coalesce(clean_text(name), ''))
            ) ELSE []
        END AS column_names,
        CASE WHEN json_type(r.resource.columns_description) = 'ARRAY'
            THEN list_transform(
                json_transform(r.resource.columns_description, '["VARCHAR"]'),
                description -> lower(clean_text(description))
            ) ELSE []
        END AS column_descriptions,
        coalesce(clean_json_text(r.permalink), clean_json_text(r.link)) AS url
    FROM parsed
),
custom_fields AS (
    SELECT
        *,
        custom_field(custom, $agency_key) AS custom_agency,
        custom_field(custom, $frequency_key) AS custom_frequency,
        custom_field(custom, $geographic_unit_key) AS custom_geographic_unit,
        custom_field(custom, $temporal_coverage_key) AS custom_temporal_coverage,
        custom_field(custom, $row_label_key) AS custom_row_label,
        custom_field(custom, $contact_email_key) AS custom_contact_email,
        custom_field(custom, $source_link_key) AS custom_source_link,
        -- system columns (field names starting with ':') are not the dataset's columns
        list_filter(
            range(1, len(column_fields) + 1),
            i -> NOT coalesce(starts_with(column_fields[i], ':'), false)
        ) AS data_columns
    FROM fields
),
scoped AS (
    SELECT
        *,
        -- NULL when the asset is an in-scope dataset, else why it is counted in the inventory only
        CASE
            WHEN asset_type <> 'dataset' THEN 'not a dataset (' || asset_type || ')'
            WHEN source_domain IS DISTINCT FROM $domain
                THEN 'federated from ' || coalesce(source_domain, 'an unknown domain')
            WHEN provenance IS NOT NULL AND provenance <> 'official' THEN provenance || ' asset'
            WHEN len(parent_ids) > 0 THEN 'derived view'
        END AS scope_note
    FROM custom_fields
)
SELECT
    asset_id,
    record_hash,
    asset_type,
    scope_note IS NULL AS in_scope,
    scope_note,
    clean_json_text(resource.name) AS title,
    CASE WHEN description_text IS NOT NULL THEN json_text(resource.description) END AS description,
    description_text,
    coalesce(custom_agency, attribution, owner_name) AS agency,
    CASE
        WHEN custom_agency IS NOT NULL THEN 'custom_field'
        WHEN attribution IS NOT NULL THEN 'attribution'
        WHEN owner_name IS NOT NULL THEN 'owner'
    END AS agency_rule,
    clean_json_text(classification.domain_category) AS category,
    clean_json_list(classification.domain_tags) AS tags,
    clean_json_text(metadata.license) AS license,
    custom_frequency AS update_frequency_raw,
    coalesce(ctdata_frequency_code(custom_frequency), 'unknown') AS update_frequency,
    custom_geographic_unit AS geographic_unit,
    custom_temporal_coverage AS temporal_coverage,
    custom_row_label AS row_label,
    NULL AS contact_name,
    coalesce(custom_contact_email, clean_json_text(resource.contact_email)) AS contact_email,
    custom_source_link AS source_link,
    attribution,
    owner_name,
    provenance,
    source_domain,
    parent_ids,
    parse_timestamp(resource.createdAt) AS created_at,
    parse_timestamp(resource.publication_date) AS published_at,
    parse_timestamp(resource.updatedAt) AS updated_at,
    parse_timestamp(resource.data_updated_at) AS data_updated_at,
    parse_timestamp(resource.metadata_updated_at) AS metadata_updated_at,
    len(data_columns) AS columns_total,
    -- a column is described when its description is not empty and not just its name again
    len(list_filter(
        data_columns,
        i -> column_descriptions[i] IS NOT NULL
            AND column_descriptions[i] IS DISTINCT FROM coalesce(column_names[i], '')
    )) AS columns_described,
    url,
    clean_json_text(resource.id) AS identifier,
    NULL AS access_level,
    list_filter(
        [CASE WHEN has_template(resource.description) THEN 'description' END,
         CASE WHEN has_template(resource.name) THEN 'name' END],
        field -> field IS NOT NULL
    ) AS template_fields,
    NULL AS described_by,
    NULL AS schema_valid,  -- DCAT-US validity applies to DCAT feeds
    []::VARCHAR[] AS schema_errors
FROM scoped
