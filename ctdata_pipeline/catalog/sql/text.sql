-- The metric conventions for portal text (catalog/text.py), as macros over JSON values.
-- A string that is already plain text (no markup, no braces, words separated by single spaces)
-- is its own clean text; any other string goes through catalog/text.py's clean_text itself
-- (registered as ctdata_clean_text), so the two paths cannot disagree.
CREATE OR REPLACE TEMP MACRO json_text(value) AS
    CASE WHEN json_type(value) = 'VARCHAR' THEN value ->> '$' END;

CREATE OR REPLACE TEMP MACRO clean_text(text) AS
    CASE
        WHEN text IS NULL OR text = '' THEN NULL
        WHEN regexp_full_match(text, '{plain_text}') THEN text
        ELSE ctdata_clean_text(text)
    END;

CREATE OR REPLACE TEMP MACRO clean_json_text(value) AS clean_text(json_text(value));

-- Non-empty plain-text items of a list (a lone string counts as one item).
CREATE OR REPLACE TEMP MACRO clean_json_list(value) AS
    CASE json_type(value)
        WHEN 'VARCHAR' THEN list_filter([clean_json_text(value)], item -> item IS NOT NULL)
        WHEN 'ARRAY' THEN list_filter(
            list_transform(json_extract(value, '$[*]'), item -> clean_json_text(item)),
            item -> item IS NOT NULL
        )
        ELSE []::VARCHAR[]
    END;

-- A Socrata custom field's clean value: the last {key, value} entry with that key.
CREATE OR REPLACE TEMP MACRO custom_field(entries, field_key) AS
    clean_json_text(list_filter(entries, entry -> entry.key = field_key)[-1].value);

-- An unresolved template such as {{orgContactEmail}} (what ArcGIS Hub leaves for a missing value).
CREATE OR REPLACE TEMP MACRO has_template(value) AS
    coalesce(regexp_matches(json_text(value), '\{\{[^{}]*\}\}'), false);

-- Epoch seconds, or milliseconds when the number is too large to be seconds.
CREATE OR REPLACE TEMP MACRO epoch_timestamp(number) AS
    CASE WHEN isfinite(number)
        THEN try(to_timestamp(CASE WHEN abs(number) > 1e11 THEN number / 1000 ELSE number END))
    END;

-- (try_cast throughout: DuckDB may compute an expression a CASE repeats for every row.)
-- ISO 8601 text (date, or date and time with Z, an offset or none: UTC), epoch seconds or
-- milliseconds as a number or digits; NULL for anything else and for dates before 1990, which
-- no catalog platform wrote (epoch 0 is a missing value saved as a number).
CREATE OR REPLACE TEMP MACRO any_timestamp(value) AS
    CASE
        WHEN json_type(value) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
            THEN epoch_timestamp(try_cast(value AS DOUBLE))
        WHEN json_type(value) <> 'VARCHAR' THEN NULL
        WHEN regexp_full_match(trim(value ->> '$'), '\d{9,13}')
            THEN epoch_timestamp(try_cast(trim(value ->> '$') AS DOUBLE))
        ELSE try_cast(trim(value ->> '$') AS TIMESTAMPTZ)
    END;

CREATE OR REPLACE TEMP MACRO parse_timestamp(value) AS
    list_filter([any_timestamp(value)], moment -> moment >= TIMESTAMPTZ '1990-01-01 00:00:00+00')[1];
