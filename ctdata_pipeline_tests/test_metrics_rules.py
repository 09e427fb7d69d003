"""Every rule of metrics.md v1 on hand-built records (real Discovery API results and a real
data.json dataset with the fields each rule reads set by hand), computed by the real SQL in a
real DuckDB file. Expected values are worked out by hand in each test."""

from datetime import date, timedelta

import duckdb
import pytest

from ctdata_pipeline.board.publish import publish_night
from ctdata_pipeline.metrics.compute import MetricsInvalid, check_night, compute_night
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    assessed,
    dcat_dataset,
    metrics_of,
    socrata_record,
    store_night,
)

NIGHT = date(2026, 3, 2)
SNAPSHOT = night_instant(NIGHT)  # 2026-03-02 07:00 UTC
CT = Portal(
    name="ct",
    kind="socrata",
    url="https://data.ct.gov",
    domain="data.ct.gov",
    custom_fields={"agency": "Agency_Agency", "update_frequency": "Details_Update-Frequency"},
)
HUB = Portal(name="hub", kind="dcat", url="https://hub.example/data.json")


def night_of(conn, records, portal=CT, night=NIGHT):
    """Store the records as a night, compute its metrics and board tables; return the per-dataset
    rows and the whole-portal metrics."""
    store_night(conn, portal, night, records)
    compute_night(conn, portal, night)
    publish_night(conn, portal.name, night)
    return assessed(conn, portal.name, night), metrics_of(conn, portal.name, night)


def iso_days_before(days: float) -> str:
    return (SNAPSHOT - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_only_official_own_non_derived_datasets_are_in_scope(conn):
    records = [
        socrata_record("in00-0001"),
        socrata_record("chrt-0001", type="chart"),
        socrata_record("derv-0001", parent_fxf=["in00-0001"]),
        socrata_record("comm-0001", provenance="community"),
        socrata_record("fedr-0001"),
    ]
    records[4]["metadata"]["domain"] = "data.hartford.gov"
    datasets, metrics = night_of(conn, records)
    assert set(datasets) == {"in00-0001"}
    assert metrics["assets_total"][2] == 5  # INV-1 counts every asset
    assert metrics["datasets_in_scope"][2] == 1
    assert metrics["assets_total:dataset"][2] == 4
    assert metrics["assets_total:chart"][2] == 1


def test_md1_socrata_is_cts_site_analytics_test(conn):
    records = [
        socrata_record("good-0001"),
        socrata_record("html-0001", description="<p>&nbsp;</p><div><br/></div>"),
        socrata_record("tmpl-0001", description="{{description}}"),
        socrata_record("nofr-0001", frequency=None),
        socrata_record("othr-0001", frequency="Other"),  # not empty: passes MD-1, fails MD-2
        socrata_record("notg-0001", tags=[]),
        socrata_record("blnk-0001", tags=["", "  "]),
    ]
    datasets, metrics = night_of(conn, records)
    assert {i: d["md1_missing"] for i, d in datasets.items()} == {
        "good-0001": [],
        "html-0001": ["description"],
        "tmpl-0001": ["description"],
        "nofr-0001": ["update_frequency"],
        "othr-0001": [],
        "notg-0001": ["tags"],
        "blnk-0001": ["tags"],
    }
    assert metrics["pct_missing_metadata"][:3] == (5, 7, pytest.approx(100 * 5 / 7))
    assert datasets["othr-0001"]["md2_missing"] == ["update_frequency"]
    assert datasets["othr-0001"]["freshness_state"] == "UNKNOWN"


def test_md2_requires_cts_category_a_named_agency_and_a_licence(conn):
    records = [
        socrata_record("good-0001"),
        socrata_record("catg-0001", category="Health"),  # not one of CT's ten
        socrata_record("nocat-0001", category=None),
        socrata_record("attr-0001", agency=None, attribution="CT Department of Public Health"),
        socrata_record("ownr-0001", agency=None, attribution=None),
        socrata_record("nolc-0001", license=None),
        socrata_record("titl-0001", title="{{name}}"),
    ]
    datasets, metrics = night_of(conn, records)
    assert {i: d["md2_missing"] for i, d in datasets.items()} == {
        "good-0001": [],
        "catg-0001": ["category"],
        "nocat-0001": ["category"],
        "attr-0001": ["agency"],  # CT maps an agency field: attribution does not stand for it
        "ownr-0001": ["agency"],
        "nolc-0001": ["license"],
        "titl-0001": ["title"],
    }
    assert metrics["pct_meets_ct_standard"][:3] == (1, 7, pytest.approx(100 / 7))
    # The agency of the row is still found, and kept by the spec's rule.
    assert datasets["attr-0001"]["agency"] == "CT Department of Public Health"
    assert datasets["ownr-0001"]["agency"] == "NYC OpenData"  # the owner's display name


def test_md2_on_a_portal_without_an_agency_field_accepts_the_attribution(conn):
    portal = CT.model_copy(
        update={"custom_fields": {"update_frequency": "Details_Update-Frequency"}}
    )
    records = [
        socrata_record("attr-0001", attribution="Department of Labor"),
        socrata_record("ownr-0001", attribution=None),
    ]
    datasets, _ = night_of(conn, records, portal=portal)
    assert datasets["attr-0001"]["md2_missing"] == []
    assert datasets["ownr-0001"]["md2_missing"] == ["agency"]


def test_md1_and_md2_for_dcat_are_dcat_us_required_fields(conn):
    records = [
        dcat_dataset("https://x.gov/api/views/good-0001"),
        dcat_dataset(
            "https://x.gov/api/views/mail-0001",
            contactPoint={"fn": "Data Team", "hasEmail": "data@x.gov"},
        ),
        dcat_dataset(
            "https://x.gov/api/views/tmpl-0001",
            contactPoint={"fn": "hub_owner", "hasEmail": "{{orgContactEmail}}"},
        ),
        dcat_dataset("https://x.gov/api/views/acss-0001", accessLevel="open"),
        dcat_dataset("https://x.gov/api/views/modf-0001", modified="{{modified:toISO}}"),
        dcat_dataset("https://x.gov/api/views/kwrd-0001", keyword=[]),
        dcat_dataset("https://x.gov/api/views/publ-0001", publisher={"name": "   "}),
        dcat_dataset(
            "https://x.gov/api/views/nofn-0001", contactPoint={"hasEmail": "mailto:a@x.gov"}
        ),
        dcat_dataset(None, landingPage="https://x.gov/d/noid-0001"),
        dcat_dataset("https://x.gov/api/views/nlic-0001", license=None),
    ]
    datasets, metrics = night_of(conn, records, portal=HUB)
    assert {i: d["md1_missing"] for i, d in datasets.items()} == {
        "good-0001": [],
        "mail-0001": ["contactPoint.hasEmail"],  # an address, but not a mailto: one
        "tmpl-0001": ["contactPoint.hasEmail"],
        "acss-0001": ["accessLevel"],
        "modf-0001": ["modified"],
        "kwrd-0001": ["keyword"],
        "publ-0001": ["publisher.name"],
        "nofn-0001": ["contactPoint.fn"],
        "https://x.gov/d/noid-0001": ["identifier"],
        "nlic-0001": [],
    }
    assert datasets["nlic-0001"]["md2_missing"] == ["license"]
    assert datasets["mail-0001"]["md2_missing"] == ["contactPoint.hasEmail"]
    assert metrics["pct_missing_metadata"][:2] == (8, 10)
    assert metrics["pct_meets_ct_standard"][:2] == (1, 10)
    assert datasets["publ-0001"]["agency"] == "(no agency)"


def test_md3_fill_rates_by_field(conn):
    records = [
        socrata_record("a000-0001"),
        socrata_record("b000-0001", tags=[], license=None),
        socrata_record("c000-0001", description="", category=None, frequency=None),
        socrata_record("d000-0001", agency=None, attribution=None, license=None),
    ]
    _, metrics = night_of(conn, records)
    rates = {m: v[:2] for m, v in metrics.items() if m.startswith("fill_rate:")}
    assert rates == {
        "fill_rate:title": (4, 4),
        "fill_rate:description": (3, 4),
        "fill_rate:category": (3, 4),
        "fill_rate:agency": (3, 4),
        "fill_rate:tags": (3, 4),
        "fill_rate:update_frequency": (3, 4),
        "fill_rate:license": (2, 4),
    }  # CT maps no geographic-unit field here, so it gets no fill rate


FULL_PORTAL = CT.model_copy(
    update={
        "custom_fields": {
            "agency": "Agency_Agency",
            "update_frequency": "Details_Update-Frequency",
            "geographic_unit": "Details_Geographic-Unit",
            "temporal_coverage": "Details_Temporal-Coverage",
            "row_label": "Details_Row-Label",
            "contact_email": "Details_Contact-Email",
        }
    }
)


def complete_record(asset_id: str, **overrides) -> dict:
    record = socrata_record(asset_id, **overrides)
    record["classification"]["domain_metadata"] += [
        {"key": "Details_Geographic-Unit", "value": "Municipality"},
        {"key": "Details_Temporal-Coverage", "value": "2015-2025"},
        {"key": "Details_Row-Label", "value": "Death"},
        {"key": "Details_Contact-Email", "value": "dph.data@ct.gov"},
    ]
    resource = record["resource"]
    resource["columns_field_name"] = ["town", "year", "deaths"]
    resource["columns_name"] = ["Town", "Year", "Deaths"]
    resource["columns_description"] = ["Town of residence", "Year of death", "Number of deaths"]
    return record


@pytest.mark.parametrize(
    ("title", "quality"),
    [
        ("Births by Town", True),
        ("Births", False),  # one word
        ("BIRTHS BY TOWN", False),  # all capitals
        ("births_by_town data", False),  # a machine name
        ("Births by Town.csv", False),  # a file name
    ],
)
def test_md4_title_quality(conn, title, quality):
    datasets, _ = night_of(conn, [complete_record("a000-0001", title=title)], portal=FULL_PORTAL)
    assert datasets["a000-0001"]["findability"] == (35 if quality else 30)


def test_md4_scores_and_bands(conn):
    records = [
        complete_record("full-0001"),  # every point: 35 + 30 + 25 + 10
        complete_record("nolc-0001", license=None),  # -10 present, -5 open: 85
        complete_record("ncol-0001", license="Creative Commons Attribution-NonCommercial 4.0"),
        socrata_record(
            "bare-0001",
            description="",
            tags=[],
            category=None,
            agency=None,
            attribution=None,
            frequency=None,
            license=None,
            title="x",
        ),
    ]
    datasets, metrics = night_of(conn, records, portal=FULL_PORTAL)
    full = datasets["full-0001"]
    assert (
        full["findability"],
        full["reusability"],
        full["context"],
        full["interoperability"],
    ) == (35, 30, 25, 10)
    assert {i: (d["metadata_score"], d["score_band"]) for i, d in datasets.items()} == {
        "full-0001": (100, "excellent"),
        "nolc-0001": (85, "good"),  # 85 < 86.7
        "ncol-0001": (95, "excellent"),  # a licence, but not an open one
        # Socrata's open API (10); geographic unit and row label are absent from the template
        # record's custom fields; its template columns are 23 of which 10 are described (< 80%).
        "bare-0001": (10, "bad"),
    }
    assert metrics["mean_metadata_score"][:3] == (290, 4, pytest.approx(72.5))
    assert metrics["pct_band:excellent"][:2] == (2, 4)
    assert metrics["pct_band:good"][:2] == (1, 4)
    assert metrics["pct_band:sufficient"][:2] == (0, 4)
    assert metrics["pct_band:bad"][:2] == (1, 4)


def test_md4_interoperability_is_dcat_us_validity(conn):
    datasets, _ = night_of(
        conn,
        [
            dcat_dataset("https://x.gov/api/views/good-0001"),
            dcat_dataset("https://x.gov/api/views/html-0001", license="<p>Terms of use</p>"),
        ],
        portal=HUB,
    )
    assert datasets["good-0001"]["interoperability"] == 10
    assert datasets["html-0001"]["interoperability"] == 0  # licence is not a URL


def test_md5_data_dictionaries(conn):
    def with_columns(asset_id, names, fields, descriptions):
        record = socrata_record(asset_id)
        record["resource"].update(
            columns_name=names, columns_field_name=fields, columns_description=descriptions
        )
        return record

    records = [
        # a system column is left out; both real columns described: full
        with_columns(
            "full-0001",
            ["Town", "Region", "Count"],
            ["town", ":@computed_region", "n"],
            ["Town name", "", "How many"],
        ),
        # a description that only repeats the name does not count: 1 of 2
        with_columns("half-0001", ["Town", "Count"], ["town", "count"], ["town", "How many"]),
        # no columns: never a full dictionary
        with_columns("none-0001", [], [], []),
    ]
    datasets, metrics = night_of(conn, records)
    assert {
        i: (d["columns_total"], d["columns_described"], d["full_data_dictionary"])
        for i, d in datasets.items()
    } == {
        "full-0001": (2, 2, True),
        "half-0001": (2, 1, False),
        "none-0001": (0, 0, False),
    }
    assert metrics["pct_full_data_dictionary"][:2] == (1, 3)
    assert metrics["column_doc_coverage"][:3] == (3, 4, 75.0)


def test_md5_is_not_measurable_from_a_dcat_feed(conn):
    _, metrics = night_of(conn, [dcat_dataset("https://x.gov/api/views/a000-0001")], portal=HUB)
    assert metrics["pct_full_data_dictionary"] == (
        0,
        0,
        None,
        "this portal's catalog publishes no column information",
    )


def test_md6_substantive_descriptions(conn):
    records = [
        socrata_record("c100-0001", description="x" * 100),
        socrata_record("c099-0001", description="x" * 99),
        socrata_record("html-0001", description="<p>" + "y" * 99 + "</p>"),  # 99 after stripping
        socrata_record("same-0001", title="t" * 120, description="T" * 120),  # the title again
        socrata_record("plch-0001", description="TBD."),
    ]
    datasets, metrics = night_of(conn, records)
    assert {i: d["description_substantive"] for i, d in datasets.items()} == {
        "c100-0001": True,
        "c099-0001": False,
        "html-0001": False,
        "same-0001": False,
        "plch-0001": False,
    }
    assert metrics["pct_description_substantive"][:2] == (1, 5)


@pytest.mark.parametrize(
    ("license", "present", "open_"),
    [
        ("Public Domain", True, True),
        ("https://creativecommons.org/licenses/by/4.0/", True, True),
        ("Creative Commons Attribution-ShareAlike 4.0 International", True, True),
        ("http://creativecommons.org/publicdomain/zero/1.0/legalcode", True, True),
        ("Open Data Commons Open Database License (ODbL)", True, True),
        ("Open Government Licence v3.0", True, True),
        ("Creative Commons Attribution-NonCommercial 4.0", True, False),
        ("CC BY-NC-ND", True, False),
        ("See Terms of Use", True, False),
        (None, False, False),
    ],
)
def test_md8_licences(conn, license, present, open_):
    datasets, _ = night_of(conn, [socrata_record("a000-0001", license=license)])
    row = datasets["a000-0001"]
    assert (row["license_present"], row["license_open"]) == (present, open_)


# FR-0 rows: (data.ct.gov wording, due, overdue, delinquent)
TIERS = [
    ("Daily", 1, 2, 3),
    ("Every weekday", 3, 4, 5),
    ("Weekly", 7, 14, 21),
    ("Bi-weekly", 14, 21, 28),
    ("Monthly", 30, 44, 60),
    ("Bi-monthly", 60, 84, 108),
    ("Quarterly", 90, 120, 150),
    ("Bi-annually", 180, 210, 240),
    ("Annually", 365, 425, 455),
]
EPSILON = 0.001  # days: 86 seconds


def test_fr1_every_frequency_row_and_every_boundary_on_both_sides(conn):
    records, expected = [], {}
    for row, (wording, due, overdue, delinquent) in enumerate(TIERS):
        for column, (age, state) in enumerate(
            [
                (due, "FRESH"),
                (due + EPSILON, "DUE"),
                (overdue, "DUE"),
                (overdue + EPSILON, "OVERDUE"),
                (delinquent, "OVERDUE"),
                (delinquent + EPSILON, "DELINQUENT"),
            ]
        ):
            asset_id = f"t{row:03d}-{column:04d}"
            records.append(
                socrata_record(asset_id, frequency=wording, data_updated_at=iso_days_before(age))
            )
            expected[asset_id] = state
    datasets, metrics = night_of(conn, records)
    assert {i: d["freshness_state"] for i, d in datasets.items()} == expected
    for asset_id, row in datasets.items():
        assert row["age_days"] == pytest.approx(
            (SNAPSHOT - _parse(records, asset_id)).total_seconds() / 86400, abs=1e-9
        )
    counts = {m.split(":")[1]: v[2] for m, v in metrics.items() if m.startswith("freshness_state:")}
    assert counts == {
        "FRESH": 9,
        "DUE": 18,
        "OVERDUE": 18,
        "DELINQUENT": 9,
        "NOT_SCHEDULED": 0,
        "STATIC": 0,
        "UNKNOWN": 0,
    }


def _parse(records, asset_id):
    from ctdata_pipeline.catalog.normalize import parse_timestamp

    record = next(r for r in records if r["resource"]["id"] == asset_id)
    return parse_timestamp(record["resource"]["data_updated_at"])


def test_fr1_unscheduled_states_and_timestamp_fallbacks(conn):
    records = [
        socrata_record("asnd-0001", frequency="As needed", data_updated_at=iso_days_before(900)),
        socrata_record("hist-0001", frequency="Not updated (historical data)"),
        socrata_record("unkn-0001", frequency=None),
        socrata_record("othr-0001", frequency="Other"),
        socrata_record("futr-0001", frequency="Daily", data_updated_at=iso_days_before(-2)),
        # data_updated_at moves only with data; updatedAt (a metadata edit) is never used
        socrata_record(
            "meta-0001",
            frequency="Weekly",
            data_updated_at=iso_days_before(30),
            updatedAt=iso_days_before(1),
        ),
        socrata_record(
            "publ-0001",
            frequency="Weekly",
            data_updated_at=None,
            publication_date=iso_days_before(3),
        ),
        socrata_record(
            "crtd-0001",
            frequency="Weekly",
            data_updated_at=None,
            publication_date=None,
            createdAt=iso_days_before(10),
        ),
        socrata_record(
            "none-0001",
            frequency="Weekly",
            data_updated_at=None,
            publication_date=None,
            createdAt=None,
        ),
    ]
    datasets, _ = night_of(conn, records)
    assert {i: (d["freshness_state"], d["timestamp_source"]) for i, d in datasets.items()} == {
        "asnd-0001": ("NOT_SCHEDULED", "data_updated_at"),
        "hist-0001": ("STATIC", "data_updated_at"),
        "unkn-0001": ("UNKNOWN", "data_updated_at"),
        "othr-0001": ("UNKNOWN", "data_updated_at"),
        "futr-0001": ("UNKNOWN", "data_updated_at"),
        "meta-0001": ("DELINQUENT", "data_updated_at"),
        "publ-0001": ("FRESH", "publication_date"),
        "crtd-0001": ("DUE", "created_at"),
        "none-0001": ("UNKNOWN", None),
    }


def test_fr2_fr2s_fr3_fr4_from_states_and_ages(conn):
    records = [
        socrata_record("fres-0001", frequency="Monthly", data_updated_at=iso_days_before(10)),
        socrata_record("due0-0001", frequency="Monthly", data_updated_at=iso_days_before(40)),
        socrata_record("ovrd-0001", frequency="Monthly", data_updated_at=iso_days_before(50)),
        socrata_record("deln-0001", frequency="Monthly", data_updated_at=iso_days_before(70)),
        socrata_record("unkn-0001", frequency=None),
        socrata_record("stat-0001", frequency="Not updated (historical data)"),
    ]
    datasets, metrics = night_of(conn, records)
    assert metrics["pct_stale"][:3] == (2, 4, 50.0)  # (OVERDUE + DELINQUENT) / 4 scheduled
    assert metrics["pct_stale_strict"][:3] == (3, 4, 75.0)
    assert metrics["pct_freshness_unknown"][:3] == (1, 6, pytest.approx(100 / 6))
    # days overdue: age - 30 = 20 and 40
    assert datasets["ovrd-0001"]["days_overdue"] == pytest.approx(20)
    assert metrics["median_days_overdue"][1:3] == (2, pytest.approx(30))
    assert metrics["p90_days_overdue"][1:3] == (2, pytest.approx(38))  # 20 + 0.9 x 20


def test_fr7_metadata_reviewed_within_365_days(conn):
    def reviewed(days):
        record = socrata_record(f"r{int(days):03d}-000{int(days * 10) % 10}")
        record["resource"]["metadata_updated_at"] = iso_days_before(days)
        return record

    datasets, metrics = night_of(conn, [reviewed(365), reviewed(365.1), reviewed(10)])
    assert sorted(d["metadata_reviewed_12m"] for d in datasets.values()) == [False, True, True]
    assert metrics["pct_metadata_reviewed_12m"][:2] == (2, 3)


def test_fr9_stale_but_popular_is_stale_and_in_the_top_quartile_of_views(conn):
    def viewed(asset_id, views, age):
        record = socrata_record(asset_id, frequency="Weekly", data_updated_at=iso_days_before(age))
        record["resource"]["page_views"]["page_views_last_month"] = views
        return record

    records = [
        viewed("popl-0001", 1000, 30),  # top quartile, delinquent
        viewed("popl-0002", 900, 1),  # top quartile, fresh
        viewed("lowv-0001", 10, 30),  # stale but rarely viewed
        viewed("lowv-0002", 5, 30),
        viewed("zero-0001", 0, 30),
        viewed("zero-0002", 0, 1),
        viewed("zero-0003", 0, 1),
        viewed("zero-0004", 0, 1),
    ]
    datasets, metrics = night_of(conn, records)
    # quartile 0.75 of [0,0,0,0,5,10,900,1000] = 10 + 0.25 x 890 = 232.5
    assert {i for i, d in datasets.items() if d["popular"]} == {"popl-0001", "popl-0002"}
    assert {i for i, d in datasets.items() if d["stale_but_popular"]} == {"popl-0001"}
    assert metrics["stale_but_popular"][2] == 1
    assert metrics["pct_unused"][:2] == (4, 8)  # US-2


def test_us1_sums_views_and_downloads_of_in_scope_datasets(conn):
    records = [
        socrata_record("a000-0001"),
        socrata_record("b000-0001"),
        socrata_record("chrt-0001", type="chart"),
    ]
    views = records[0]["resource"]["page_views"]
    _, metrics = night_of(conn, records)
    assert metrics["views_last_month"][2] == 2 * views["page_views_last_month"]
    assert metrics["views_total"][2] == 2 * views["page_views_total"]
    assert metrics["downloads_total"][2] == 2 * records[0]["resource"]["download_count"]


def test_usage_is_not_published_by_dcat_feeds(conn):
    _, metrics = night_of(conn, [dcat_dataset("https://x.gov/api/views/a000-0001")], portal=HUB)
    assert metrics["views_last_month"][2:] == (
        None,
        "this portal publishes no view or download counts",
    )
    assert metrics["pct_unused"][2:] == (None, "this portal publishes no view counts")


def test_gv2_duplicate_titles_ignore_case_punctuation_years_and_archive(conn):
    records = [
        socrata_record("crsh-0001", title="State Police Crashes 2019"),
        socrata_record("crsh-0002", title="State police crashes - 2020"),
        socrata_record("crsh-0003", title="State Police Crashes (Archive)"),
        socrata_record(
            "crsh-0004", title="STATE POLICE CRASHES!", agency="Department of Correction"
        ),
        socrata_record("othr-0001", title="State Police Crash Reports"),
        socrata_record("brth-0001", title="Births 2019"),
        socrata_record("brth-0002", title="Births 2020"),
    ]
    datasets, metrics = night_of(conn, records)
    assert datasets["crsh-0002"]["title_key"] == "state police crashes"
    assert metrics["duplicate_title_groups"][2] == 2  # crashes (4), births (2)
    # per agency: only groups within the agency's own datasets
    dph = metrics_of(conn, "ct", NIGHT, "Department of Public Health")
    assert dph["duplicate_title_groups"][2] == 2  # crashes (3 of DPH), births (2)
    doc = metrics_of(conn, "ct", NIGHT, "Department of Correction")
    assert doc["duplicate_title_groups"][2] == 0


def test_inv2_changes_against_the_previous_snapshot(conn):
    before = [
        socrata_record("keep-0001"),
        socrata_record("renm-0001", title="Old Title"),
        socrata_record("gone-0001"),
        socrata_record("chrt-0001", type="chart"),
    ]
    after = [
        socrata_record("keep-0001"),
        socrata_record("renm-0001", title="New Title"),
        socrata_record("new0-0001"),
        socrata_record("chrt-0002", type="chart"),
    ]
    _, first = night_of(conn, before, night=NIGHT - timedelta(days=3))
    assert first["datasets_added"] == (
        None,
        None,
        None,
        "first snapshot of this portal: nothing to compare with",
    )
    _, metrics = night_of(conn, after)
    assert {
        m: metrics[m][2] for m in ("datasets_added", "datasets_removed", "datasets_renamed")
    } == {
        "datasets_added": 1,
        "datasets_removed": 1,
        "datasets_renamed": 1,
    }  # charts are not in scope, so their comings and goings do not count
    changes = conn.execute(
        "SELECT change, asset_id, title, previous_title, previous_date FROM board.catalog_changes "
        "WHERE snapshot_date = ? ORDER BY change",
        [NIGHT],
    ).fetchall()
    assert changes == [
        (
            "added",
            "new0-0001",
            "Accidental Drug Related Deaths by Town",
            None,
            NIGHT - timedelta(days=3),
        ),
        (
            "removed",
            "gone-0001",
            "Accidental Drug Related Deaths by Town",
            "Accidental Drug Related Deaths by Town",
            NIGHT - timedelta(days=3),
        ),
        ("renamed", "renm-0001", "New Title", "Old Title", NIGHT - timedelta(days=3)),
    ]


def test_fr6_needs_30_nights_then_compares_declared_and_observed_cadence(conn):
    first = NIGHT - timedelta(days=30)

    def night_records(night):
        day = (night - first).days
        return [
            # declared daily, delivers every 5 days: observed 5 > 2 x 1
            socrata_record(
                "slow-0001",
                frequency="Daily",
                data_updated_at=f"{first + timedelta(days=day - day % 5)}T12:00:00.000Z",
            ),
            # declared weekly, delivers weekly: fine
            socrata_record(
                "wkly-0001",
                frequency="Weekly",
                data_updated_at=f"{first + timedelta(days=day - day % 7)}T12:00:00.000Z",
            ),
            # declared historical, but its data changed once
            socrata_record(
                "hist-0001",
                frequency="Not updated (historical data)",
                data_updated_at="2026-01-01T00:00:00.000Z"
                if day < 20
                else "2026-02-20T00:00:00.000Z",
            ),
        ]

    for offset in range(31):  # 31 nights, the last being NIGHT
        night = first + timedelta(days=offset)
        store_night(conn, CT, night, night_records(night))
    # 29 nights of history: no guess
    compute_night(conn, CT, first + timedelta(days=28))
    assert metrics_of(conn, "ct", first + timedelta(days=28))[
        "cadence_mismatch:under_delivering"
    ] == (None, None, None, "insufficient history: 29 of 30 nights")
    assert {
        d["cadence_flag"] for d in assessed(conn, "ct", first + timedelta(days=28)).values()
    } == {"insufficient history"}
    compute_night(conn, CT, NIGHT)
    datasets = assessed(conn, "ct", NIGHT)
    assert {i: d["cadence_flag"] for i, d in datasets.items()} == {
        "slow-0001": "under_delivering",
        "wkly-0001": None,
        "hist-0001": "misdeclared_static",
    }
    assert datasets["slow-0001"]["observed_interval_days"] == pytest.approx(5)
    metrics = metrics_of(conn, "ct", NIGHT)
    assert metrics["cadence_mismatch:under_delivering"][2] == 1
    assert metrics["cadence_mismatch:misdeclared_static"][2] == 1


def test_every_agency_gets_its_rows_even_with_one_dataset(conn):
    records = [socrata_record(f"dph0-000{i}") for i in range(5)] + [
        socrata_record("lone-0001", agency="Department of Banking"),
        socrata_record("none-0001", agency=None, attribution=None),
    ]
    records[-1]["owner"]["display_name"] = " "  # no owner name either: no agency at all
    night_of(conn, records)
    banking = metrics_of(conn, "ct", NIGHT, "Department of Banking")
    assert banking["datasets_in_scope"][2] == 1 and banking["pct_missing_metadata"][:2] == (0, 1)
    assert metrics_of(conn, "ct", NIGHT, "(no agency)")["datasets_in_scope"][2] == 1
    scorecard = dict(
        conn.execute(
            "SELECT agency, (datasets, ranked, rank) FROM board.agency_scorecard"
        ).fetchall()
    )
    assert scorecard["Department of Public Health"] == (5, True, 1)
    assert scorecard["Department of Banking"] == (1, False, None)


def test_a_night_with_an_impossible_number_writes_nothing(conn):
    store_night(conn, CT, NIGHT, [socrata_record("a000-0001")])
    compute_night(conn, CT, NIGHT)
    before = conn.execute("SELECT count(*) FROM board.plan_metrics").fetchall()
    conn.execute("UPDATE night_metrics SET value = 150 WHERE metric = 'pct_missing_metadata'")
    with pytest.raises(
        MetricsInvalid, match=r"pct_missing_metadata \(whole portal\): percentage 150"
    ):
        check_night(conn, "ct", NIGHT)
    conn.execute(
        "UPDATE night_metrics SET value = 50, numerator = 3, denominator = 2 "
        "WHERE metric = 'pct_missing_metadata'"
    )
    with pytest.raises(MetricsInvalid, match=r"numerator 3\.0 above denominator 2\.0"):
        check_night(conn, "ct", NIGHT)
    assert conn.execute("SELECT count(*) FROM board.plan_metrics").fetchall() == before


def test_the_metric_definitions_cover_every_metric_written(conn):
    from ctdata_pipeline.metrics.definitions import metric_for

    night_of(conn, [socrata_record("a000-0001")])
    written = {
        row[0] for row in conn.execute("SELECT DISTINCT metric FROM board.plan_metrics").fetchall()
    }
    ids = {metric_for(name).metric_id for name in written}
    assert ids == {
        "INV-1",
        "INV-2",
        "MD-1",
        "MD-2",
        "MD-3",
        "MD-4",
        "MD-5",
        "MD-6",
        "MD-8",
        "FR-1",
        "FR-2",
        "FR-2s",
        "FR-3",
        "FR-4",
        "FR-6",
        "FR-7",
        "FR-9",
        "US-1",
        "US-2",
        "AC-2",
        "GV-1",
        "GV-2",
    }
    versions = dict(
        conn.execute(
            "SELECT DISTINCT metric_id, metric_version FROM board.plan_metrics ORDER BY ALL"
        ).fetchall()
    )
    # Version 2 is every metric the spec's clarifications touch (identity, FR-0, MD-3), and
    # the new metrics of the nightly step (AC-2, GV-1).
    assert {metric_id for metric_id, version in versions.items() if version == 2} == {
        "AC-2",
        "GV-1",
        "INV-2",
        "MD-3",
        "FR-1",
        "FR-2",
        "FR-2s",
        "FR-3",
        "FR-4",
        "FR-6",
        "FR-9",
    }
    assert set(versions.values()) == {1, 2}
    assert isinstance(conn, duckdb.DuckDBPyConnection)
