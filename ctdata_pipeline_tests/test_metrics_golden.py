"""Golden values on the real samples in ../shared/realdata, worked out in the test itself from
the raw JSON with plain Python (not with the pipeline's own code): NYC's Discovery page with
NYC's custom-field keys, CDC's data.json, GeoHive's Hub feed, and FCC's two snapshots."""

import html
import re
from datetime import UTC, date, datetime

import pytest

from ctdata_pipeline.board.publish import publish_night
from ctdata_pipeline.metrics.compute import compute_night
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    NYC_PORTAL,
    assessed,
    load_realdata,
    metrics_of,
    store_night,
)

FEED = Portal(name="feed", kind="dcat", url="https://feed.example/data.json")


def computed(conn, portal, night, records):
    store_night(conn, portal, night, records)
    compute_night(conn, portal, night)
    publish_night(conn, portal.name, night)
    return metrics_of(conn, portal.name, night)


def plain(text) -> str:
    """Text without tags and entities, as a reader sees it."""
    if not isinstance(text, str):
        return ""
    return html.unescape(re.sub(r"<[^>]*>", " ", text)).replace("\xa0", " ").strip()


def test_nyc_discovery_page_with_nycs_keys(conn):
    results = load_realdata("socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json")[
        "results"
    ]
    night = date(2025, 4, 28)  # the morning after the page was recorded
    metrics = computed(conn, NYC_PORTAL, night, results)
    datasets = assessed(conn, "nyc", night)

    # All 7 are official datasets of the NYC domain with no parent: all in scope.
    assert metrics["assets_total"][2] == 7 and metrics["datasets_in_scope"][2] == 7
    # Every one has a description, tags and an update frequency ("Daily"): MD-1 is 0%.
    assert all(plain(r["resource"]["description"]) for r in results)
    assert metrics["pct_missing_metadata"][:3] == (0, 7, 0.0)
    # None carries a licence (metadata has only the domain), so none meets MD-2.
    assert all("license" not in r["metadata"] for r in results)
    assert metrics["pct_meets_ct_standard"][:3] == (0, 7, 0.0)
    assert {d["md2_missing"][-1] for d in datasets.values()} == {"license"}
    # NYC's categories: only "Transportation" is one of CT's ten.
    assert sum("category" in d["md2_missing"] for d in datasets.values()) == 4

    # FR-1, daily tiers, snapshot at 2025-04-28 06:00 UTC (02:00 EDT):
    # 8wbx 19:04 on the 27th (0.46 d), ic3t, dpec, xjfq also the 27th: FRESH;
    # erm2 01:32 on the 27th (1.19 d): DUE; vx8i and a9md 13:1x on the 25th (2.70 d): OVERDUE.
    assert {i: d["freshness_state"] for i, d in datasets.items()} == {
        "8wbx-tsch": "FRESH",
        "ic3t-wcy2": "FRESH",
        "dpec-ucu7": "FRESH",
        "xjfq-wh2d": "FRESH",
        "erm2-nwe9": "DUE",
        "vx8i-nprf": "OVERDUE",
        "a9md-ynri": "OVERDUE",
    }
    assert metrics["pct_stale"][:3] == (2, 7, pytest.approx(100 * 2 / 7))
    assert metrics["pct_stale_strict"][:3] == (3, 7, pytest.approx(100 * 3 / 7))
    assert metrics["pct_freshness_unknown"][:3] == (0, 7, 0.0)
    snapshot = night_instant(night)
    overdue = sorted(
        (snapshot - datetime.fromisoformat(r["resource"]["data_updated_at"])).total_seconds()
        / 86400
        - 1
        for r in results
        if r["resource"]["id"] in ("vx8i-nprf", "a9md-ynri")
    )
    assert metrics["median_days_overdue"][2] == pytest.approx(sum(overdue) / 2)

    # US-1: sums of the published counters.
    views = [r["resource"]["page_views"] for r in results]
    assert metrics["views_last_month"][2] == sum(v["page_views_last_month"] for v in views)
    assert metrics["views_total"][2] == sum(v["page_views_total"] for v in views)
    assert metrics["downloads_total"][2] == sum(r["resource"]["download_count"] for r in results)

    # MD-5: described columns (not blank, not the name again) over all non-system columns.
    described = total = 0
    for result in results:
        resource = result["resource"]
        for field, name, description in zip(
            resource["columns_field_name"],
            resource["columns_name"],
            resource["columns_description"],
            strict=True,
        ):
            if field.startswith(":"):
                continue
            total += 1
            text = " ".join(plain(description).split())
            described += bool(text) and text.lower() != name.strip().lower()
    assert metrics["column_doc_coverage"][:2] == (described, total)

    # Per agency: the custom field names four agencies.
    agencies = conn.execute(
        "SELECT agency, value FROM board.plan_metrics WHERE portal = 'nyc' "
        "AND metric = 'datasets_in_scope' AND agency IS NOT NULL ORDER BY agency"
    ).fetchall()
    assert agencies == [
        ("Department of Buildings (DOB)", 1),
        ("Department of Citywide Administrative Services (DCAS)", 2),
        ("Office of Technology and Innovation (OTI)", 1),
        ("Taxi and Limousine Commission (TLC)", 3),
    ]


MAILTO = re.compile(r"^mailto:[^@\s]+@[^@\s]+\.[^@\s]+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def dcat_missing(dataset: dict) -> list[str]:
    """MD-1 for DCAT, by the words of metrics.md: required fields empty or invalid."""
    contact = dataset.get("contactPoint") or {}
    publisher = dataset.get("publisher") or {}
    checks = {
        "title": bool(plain(dataset.get("title"))) and "{{" not in dataset.get("title", ""),
        "description": bool(plain(dataset.get("description")))
        and not re.fullmatch(r"\{\{.*\}\}", plain(dataset.get("description"))),
        "keyword": any(plain(k) for k in dataset.get("keyword") or []),
        "modified": bool(ISO_DATE.match(str(dataset.get("modified") or ""))),
        "publisher.name": bool(plain(publisher.get("name")))
        and "{{" not in publisher.get("name", ""),
        "contactPoint.fn": bool(plain(contact.get("fn"))),
        # surrounding spaces are not a defect (values are trimmed, as publisher names are)
        "contactPoint.hasEmail": bool(MAILTO.match(str(contact.get("hasEmail") or "").strip())),
        "identifier": bool(plain(dataset.get("identifier"))),
        "accessLevel": dataset.get("accessLevel") in ("public", "restricted public", "non-public"),
    }
    return [field for field, ok in checks.items() if not ok]


@pytest.mark.parametrize(
    ("relative", "datasets", "missing", "by_field"),
    [
        # GeoHive: 235 unresolved {{orgContactEmail}}; the 2 {{name}}/{{modified:toISO}}
        # records and the one with an empty keyword list are among them.
        (
            "dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json",
            372,
            235,
            {"contactPoint.hasEmail": 235, "title": 2, "modified": 2, "keyword": 1},
        ),
        # FCC's data.json of 2025-02-04: six without keywords, two with empty descriptions.
        (
            "dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-02-04.json",
            59,
            6,
            {"keyword": 6, "description": 2},
        ),
    ],
)
def test_dcat_md1_on_real_feeds(conn, relative, datasets, missing, by_field):
    feed = load_realdata(relative)["dataset"]
    assert len(feed) == datasets
    by_hand = [dcat_missing(d) for d in feed]
    assert sum(bool(m) for m in by_hand) == missing
    for field, count in by_field.items():
        assert sum(field in m for m in by_hand) == count
    metrics = computed(conn, FEED, date(2025, 2, 5), feed)
    assert metrics["pct_missing_metadata"][:2] == (missing, datasets)
    stored = conn.execute(
        "SELECT field, count(*) FROM (SELECT unnest(md1_missing) AS field FROM metrics.datasets) "
        "GROUP BY field"
    ).fetchall()
    for field, count in by_field.items():
        assert dict(stored)[field] == count


# CDC's accrualPeriodicity values (../shared/realdata/socrata/data_json_data.cdc.gov_*.json), read
# one by one against FR-0's table; "unknown" for values that name no schedule.
CDC_FREQUENCIES = {
    None: "unknown",
    "irregular": "as_needed",
    "Irregular": "as_needed",
    "Weekly": "weekly",
    "Monthly": "monthly",
    "monthly": "monthly",
    "Annual": "annual",
    "annual": "annual",
    "Annually": "annual",
    "R/P1Y": "annual",
    "Annual (R/P1Y)": "annual",
    "Annual  (R/P1Y)": "annual",
    "R/P1W": "weekly",
    "R/P1D": "daily",
    "R/P3M": "quarterly",
    "R/P2W": "biweekly",
    "R/P6M": "semiannual",
    "R/P1M": "monthly",
    "R/P2M": "bimonthly",
    "R/PT1S": "daily",
    "Bi-annual": "semiannual",
    "Biweekly": "biweekly",
    "Approximately Monthly": "monthly",
    "No longer updated (dataset archived)": "historical",
    "Archived": "historical",
    "Archive": "historical",
    "Never": "historical",
    "No longer being updated": "historical",
    # No schedule named, or one longer than FR-0's longest row (annual):
    "NA": "unknown",
    "n/a": "unknown",
    "None": "unknown",
    "R/P4Y": "unknown",
    "R/P2Y": "unknown",
    "Four Weeks": "unknown",
    "On a continuous basis": "unknown",
    "Database will not be updated again.": "unknown",
    "Survey will not be updated.": "unknown",
    "Dataset will no longer be updated.": "unknown",
    "This data will no longer be updated.": "unknown",
    "None - this dataset is archived as of May 2023": "unknown",
    "Survey has ended. 2022 data will be released Summer 2024.": "unknown",
    "Annually. Dataset will no longer be updated after the 2022 release in summer 2024.": "unknown",
    # Two different periods named (FR-0 as clarified in metrics.md v2): neither of them.
    "Future funding patterns past 2024 are uncertain however, we expect yearly or biannually "
    "is reasonable R/P1Y or R/P2Y": "unknown",
}


def test_cdc_data_json_frequencies_and_freshness(conn):
    feed = load_realdata("socrata/data_json_data.cdc.gov_2025-09-24.json")["dataset"]
    night = date(2025, 9, 25)
    metrics = computed(conn, FEED, night, feed)
    datasets = assessed(conn, "feed", night)
    codes = {
        d["identifier"].rsplit("/", 1)[-1]: CDC_FREQUENCIES[d.get("accrualPeriodicity")]
        for d in feed
    }
    assert {i: row["update_frequency"] for i, row in datasets.items()} == codes
    unknown = sum(code == "unknown" for code in codes.values())
    assert metrics["pct_freshness_unknown"][:2] == (unknown, 1359)
    # A scheduled dataset is stale when modified (a date) is older than FR-0's overdue tier.
    snapshot = night_instant(night)
    overdue_after = {
        "daily": 2,
        "weekly": 14,
        "biweekly": 21,
        "monthly": 44,
        "bimonthly": 84,
        "quarterly": 120,
        "semiannual": 210,
        "annual": 425,
    }
    scheduled = stale = 0
    for dataset in feed:
        code = codes[dataset["identifier"].rsplit("/", 1)[-1]]
        if code in overdue_after:
            scheduled += 1
            modified = datetime.fromisoformat(dataset["modified"]).replace(tzinfo=UTC)
            stale += (snapshot - modified).total_seconds() / 86400 > overdue_after[code]
    assert metrics["pct_stale"][:2] == (stale, scheduled)
    assert metrics["pct_missing_metadata"][0] == sum(bool(dcat_missing(d)) for d in feed)


def test_fcc_snapshots_inv2_and_changes(conn):
    before = load_realdata("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-01-31.json")
    after = load_realdata("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-02-04.json")
    first = computed(conn, FEED, date(2025, 1, 31), before["dataset"])
    second = computed(conn, FEED, date(2025, 2, 4), after["dataset"])
    titles_before = {d["identifier"]: d["title"] for d in before["dataset"]}
    titles_after = {d["identifier"]: d["title"] for d in after["dataset"]}
    # Same 59 identifiers, same titles: no dataset added, removed or renamed, although eight
    # datasets changed (six keyword lists, two modified dates).
    assert set(titles_before) == set(titles_after)
    assert all(titles_before[i] == titles_after[i] for i in titles_before)
    changed = [
        i
        for i in titles_before
        if next(d for d in before["dataset"] if d["identifier"] == i)
        != next(d for d in after["dataset"] if d["identifier"] == i)
    ]
    assert len(changed) == 8
    assert first["datasets_added"][3] == "first snapshot of this portal: nothing to compare with"
    assert {
        m: second[m][2] for m in ("datasets_added", "datasets_removed", "datasets_renamed")
    } == {
        "datasets_added": 0,
        "datasets_removed": 0,
        "datasets_renamed": 0,
    }
    assert conn.execute("SELECT count(*) FROM board.catalog_changes").fetchall() == [(0,)]
    versions = conn.execute("SELECT count(*) FROM catalog.asset_versions").fetchall()[0][0]
    assert versions == 59 + 8  # a stored version per change, not a copy per night
    for feed, metrics in ((before, first), (after, second)):
        assert metrics["pct_missing_metadata"][:2] == (
            sum(bool(dcat_missing(d)) for d in feed["dataset"]),
            59,
        )
