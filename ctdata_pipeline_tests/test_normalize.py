"""From raw records to catalog rows, on real records: data.ct.gov's own story, NYC's datasets
with NYC's custom-field keys configured, GeoHive's Hub quirks, CDC's and FCC's data.json."""

import copy
from datetime import UTC, datetime, timedelta

import pytest

from ctdata_pipeline.catalog.normalize import normalizer_key, parse_timestamp
from ctdata_pipeline.catalog.text import clean_list, clean_text
from ctdata_pipeline.harvest.socrata import take_counters
from ctdata_pipeline.harvest.staging import record_hash, record_json
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    NYC_PORTAL,
    frequency_mapped,
    load_realdata,
    normalized,
    normalized_rows,
)

CT = Portal(
    name="data.ct.gov",
    kind="socrata",
    url="https://data.ct.gov",
    domain="data.ct.gov",
    custom_fields={
        "agency": "Agency_Agency",
        "update_frequency": "Details_Update-Frequency",
        "geographic_unit": "Details_Geographic-Unit",
    },
)
HUB = Portal(name="geohive", kind="dcat", url="https://geohive.ie/api/feed/dcat-us/1.1.json")


def by_id(results, asset_id):
    return next(r for r in results if r["resource"]["id"] == asset_id)


def test_the_real_data_ct_gov_record_reads_cts_keys():
    results = load_realdata(
        "socrata/catalog_v1_global_limit10_dataset-story_incl_data.ct.gov.json"
    )["results"]
    row = normalized(CT, by_id(results, "q5as-kyim"))
    assert frequency_mapped(row)
    assert row["asset_type"] == "story"
    assert not row["in_scope"] and row["scope_note"] == "not a dataset (story)"
    assert (row["agency"], row["agency_rule"]) == ("Department of Public Health", "custom_field")
    assert row["attribution"] == "CT Department of Public Health"
    assert row["update_frequency_raw"] == "Not updated (historical data)"
    assert row["update_frequency"] == "historical"
    assert row["geographic_unit"] == "State"
    assert row["category"] == "Health and Human Services"
    assert row["tags"] == ["ct", "covid-19", "ct dph"]
    assert row["license"] == "Public Domain"
    assert row["source_domain"] == "data.ct.gov"


def test_another_domains_dataset_is_federated_not_in_scope():
    results = load_realdata(
        "socrata/catalog_v1_global_limit10_dataset-story_incl_data.ct.gov.json"
    )["results"]
    row = normalized(CT, by_id(results, "9bhg-hcku"))
    assert row["asset_type"] == "dataset"
    assert not row["in_scope"]
    assert row["scope_note"] == "federated from data.cdc.gov"


def test_nyc_dataset_with_nyc_keys_configured():
    results = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")[
        "results"
    ]
    row = normalized(NYC_PORTAL, by_id(results, "8wbx-tsch"))
    assert frequency_mapped(row) and row["in_scope"] and row["scope_note"] is None
    assert row["agency"] == "Taxi and Limousine Commission (TLC)"
    assert row["agency_rule"] == "custom_field"
    assert row["update_frequency"] == "daily"
    assert row["category"] == "Transportation"
    assert row["license"] is None  # NYC sets none: the key is absent
    # 23 columns; 10 have a description that is more than the column's name again
    # ("Wheelchair Accessible" -> "Wheelchair Accessible Indicator", ...).
    assert (row["columns_total"], row["columns_described"]) == (23, 10)
    assert row["data_updated_at"] == datetime(2025, 4, 27, 19, 4, 46, tzinfo=UTC)
    assert row["created_at"] == datetime(2015, 7, 16, 17, 33, 32, tzinfo=UTC)
    assert row["url"] == "https://data.cityofnewyork.us/d/8wbx-tsch"
    assert row["description_text"].startswith("PLEASE NOTE: This dataset")  # <b> stripped


def test_without_the_custom_field_the_agency_falls_back_to_attribution_then_owner():
    results = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")[
        "results"
    ]
    record = by_id(results, "erm2-nwe9")
    unconfigured = NYC_PORTAL.model_copy(update={"custom_fields": {}})
    row = normalized(unconfigured, record)
    assert (row["agency"], row["agency_rule"]) == ("311", "attribution")
    record["resource"]["attribution"] = "  <p>&nbsp;</p> "
    row = normalized(unconfigured, record)
    assert (row["agency"], row["agency_rule"]) == ("NYC OpenData", "owner")
    assert row["update_frequency"] == "unknown"


def test_community_and_derived_datasets_are_inventory_only():
    results = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")[
        "results"
    ]
    record = by_id(results, "vx8i-nprf")
    record["resource"]["provenance"] = "community"
    assert normalized(NYC_PORTAL, record)["scope_note"] == "community asset"
    record["resource"]["provenance"] = None
    record["resource"]["parent_fxf"] = ["abcd-1234"]
    row = normalized(NYC_PORTAL, record)
    assert row["scope_note"] == "derived view" and row["parent_ids"] == ["abcd-1234"]


def test_system_columns_are_left_out_of_the_column_counts():
    record = {
        "resource": {
            "id": "abcd-1234",
            "type": "dataset",
            "columns_field_name": ["town", ":@computed_region_x", "year", "count"],
            "columns_name": ["Town", "Region", "Year", "Count"],
            "columns_description": ["Town name", "", "year", "<p>&nbsp;</p>"],
        },
        "metadata": {"domain": "data.ct.gov"},
    }
    row = normalized(CT, record)
    assert (row["columns_total"], row["columns_described"]) == (3, 1)


def test_counters_are_taken_out_of_the_record_and_do_not_change_its_hash():
    results = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")[
        "results"
    ]
    record = by_id(results, "8wbx-tsch")
    downloads = record["resource"]["download_count"]
    tonight = copy.deepcopy(record)
    counters = take_counters(tonight)
    assert counters == {
        "views_last_week": 10011,
        "views_last_month": 47723,
        "views_total": 3155908,
        "downloads_total": downloads,
    }
    assert "page_views" not in tonight["resource"] and "download_count" not in tonight["resource"]
    # Tomorrow's views do not make a new version of the record; a new title does.
    tomorrow = copy.deepcopy(record)
    tomorrow["resource"]["page_views"]["page_views_last_week"] += 1
    tomorrow["resource"]["download_count"] += 5
    assert take_counters(tomorrow)["downloads_total"] == downloads + 5
    assert record_hash(record_json(tomorrow)) == record_hash(record_json(tonight))
    renamed = copy.deepcopy(tonight)
    renamed["resource"]["name"] += " (Revised)"
    assert record_hash(record_json(renamed)) != record_hash(record_json(tonight))


@pytest.mark.parametrize(
    ("value", "count"),
    [(12, 12), (12.9, 12), (" 40 ", 40), (True, None), ("n/a", None), (2**70, None)],
)
def test_a_counter_is_a_whole_number_or_missing(value, count):
    record = {"resource": {"id": "abcd-1234", "download_count": value}}
    assert take_counters(record)["downloads_total"] == count


def test_the_normalizer_key_changes_with_the_rules_the_portal_configures():
    assert normalizer_key(CT) == normalizer_key(CT.model_copy())
    assert normalizer_key(CT) != normalizer_key(CT.model_copy(update={"custom_fields": {}}))
    assert normalizer_key(CT) != normalizer_key(CT.model_copy(update={"domain": "other"}))


def test_geohive_hub_quirks():
    datasets = load_realdata("dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json")["dataset"]
    first = normalized(HUB, datasets[0])
    assert first["in_scope"] and first["asset_type"] == "dataset"
    assert first["contact_email"] is None  # "{{orgContactEmail}}"
    assert first["template_fields"] == ["contactPoint.hasEmail"]
    assert first["contact_name"] == "geohive_curator"
    assert not first["description_text"].startswith("<")
    assert first["description"].startswith("<div")  # the raw HTML is kept beside the text
    assert first["data_updated_at"] == datetime(2024, 10, 4, 14, 29, 39, tzinfo=UTC)

    padded = next(d for d in datasets if d["publisher"]["name"].startswith("    "))
    row = normalized(HUB, padded)
    assert (row["agency"], row["agency_rule"]) == (
        "Sustainable Development Goals, Ireland",
        "publisher",
    )

    unresolved = next(d for d in datasets if d["title"] == "{{name}}")
    row = normalized(HUB, unresolved)
    assert row["title"] is None and row["description_text"] is None
    assert row["data_updated_at"] is None and row["agency"] is None
    assert {"title", "description", "modified", "publisher.name"} <= set(row["template_fields"])
    assert row["license"] and "<p" not in row["license"]  # an HTML licence, as text


def test_cdc_data_json_frequency_and_date_only_modified():
    datasets = load_realdata("socrata/data_json_data.cdc.gov_2025-09-24.json")["dataset"]
    weekly = next(d for d in datasets if d["identifier"].endswith("/45cq-cw4i"))
    row = normalized(HUB, weekly)
    assert frequency_mapped(row) and row["update_frequency"] == "weekly"
    assert row["data_updated_at"] == datetime(2025, 9, 19, tzinfo=UTC)
    assert row["agency"] == "data.cdc.gov"
    assert row["title"] == "CDC Wastewater Data for RSV"


def test_fcc_empty_descriptions_are_missing():
    datasets = load_realdata("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-01-31.json")[
        "dataset"
    ]
    rows = normalized_rows(HUB, datasets)
    assert sum(row["description_text"] is None for row in rows) == 2
    assert all(row["url"].startswith("https://opendata.fcc.gov/d/") for row in rows)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("", None),
        ("   ", None),
        ("&nbsp;", None),
        ("<p><br></p>", None),
        ("<div> &nbsp; </div>", None),
        ("{{orgContactEmail}}", None),
        ("{{a}} {{b}}", None),
        ("<b>Hello</b>&nbsp;world", "Hello world"),
        ("a < b", "a < b"),
        ("<script>alert(1)</script>Visible", "Visible"),
        ("Contact {{x}} here", "Contact {{x}} here"),
        (None, None),
        (42, None),
    ],
)
def test_empty_by_the_metric_conventions(value, text):
    assert clean_text(value) == text


def test_lists_keep_only_non_empty_items():
    assert clean_list(["a", "", "&nbsp;", "{{tag}}", " b "]) == ["a", "b"]
    assert clean_list("one") == ["one"]
    assert clean_list(None) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-07-31T15:14:53.968Z", datetime(2024, 7, 31, 15, 14, 53, 968000, tzinfo=UTC)),
        ("2025-02-04", datetime(2025, 2, 4, tzinfo=UTC)),
        ("2025-02-04T10:00:00-05:00", datetime(2025, 2, 4, 15, tzinfo=UTC)),
        (1714000000, datetime(2024, 4, 24, 23, 6, 40, tzinfo=UTC)),  # /api/views epoch seconds
        (1714000000000, datetime(2024, 4, 24, 23, 6, 40, tzinfo=UTC)),  # Hub epoch ms
        ("{{modified:toISO}}", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_timestamps_become_utc(value, expected):
    assert parse_timestamp(value) == expected


TRICKY_TEXT = [
    "Plain words",
    "  padded  ",
    "two  spaces",
    "tab\there",
    "line\nbreak",
    "no\u00a0break",  # NBSP: whitespace to Python, not to RE2's \s
    "ideographic\u3000space",
    "\u2028",
    "x\x1fy",  # a separator Python's \s matches
    "<p>&nbsp;</p>",
    "A &amp; B",
    "Fish & Chips",
    "{{orgContactEmail}}",
    "Budget {{year}}",
    "{curly} braces",
    "",
    "Straße",
]


@pytest.mark.parametrize("text", TRICKY_TEXT)
def test_socrata_text_in_sql_agrees_with_clean_text(text):
    """SQL keeps a value that is already plain and hands everything else to clean_text: the two
    must never disagree, whatever whitespace, markup or braces the value holds."""
    record = {
        "resource": {"id": "abcd-1234", "type": "dataset", "name": text, "attribution": text},
        "classification": {"domain_tags": [text, "kept"]},
        "metadata": {"domain": "data.ct.gov", "license": text},
    }
    row = normalized(CT, record)
    expected = clean_text(text)
    assert (row["title"], row["attribution"], row["license"]) == (expected, expected, expected)
    assert row["tags"] == clean_list([text, "kept"])


@pytest.mark.parametrize(
    "value",
    [
        "2025-04-27T19:04:46.000Z",
        "2025-04-27T19:04:46+02:00",
        "2025-04-27 19:04:46",
        "2025-04-27",
        " 1745780686 ",
        "1745780686000",
        1745780686,
        1745780686000,
        1745780686.5,
        0,
        "1989-12-31",
        "{{modified}}",
        "not a date",
        True,
        None,
        [2025],
        1e300,
    ],
)
def test_socrata_timestamps_in_sql_agree_with_parse_timestamp(value):
    record = {
        "resource": {"id": "abcd-1234", "type": "dataset", "data_updated_at": value},
        "metadata": {"domain": "data.ct.gov"},
    }
    moment = normalized(CT, record)["data_updated_at"]
    expected = parse_timestamp(value)
    if expected is None:
        assert moment is None
    else:
        assert moment == pytest.approx(expected, abs=timedelta(milliseconds=1))
