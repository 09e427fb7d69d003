"""MD-3 as clarified in metrics.md v2: `fill_rate:<field>` counts a value that is not empty,
whatever its form; `valid_rate:<field>` counts the values that are also well-formed, for the
fields with a form. Hand-counted fixtures through the real catalog write and metrics step."""

from datetime import date

import pytest

from ctdata_pipeline.metrics.compute import compute_night
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    dcat_dataset,
    metrics_of,
    socrata_record,
    store_night,
)

NIGHT = date(2025, 6, 1)
FEED = Portal(name="feed", kind="dcat", url="https://feed.example/data.json")
DISCLAIMER = (
    "The information provided on this site is for reference purposes only. Carver County does "
    "not guarantee the accuracy of the information contained herein (public domain maps aside)."
)


def dataset(number, publisher, email, modified, access, license):
    return dcat_dataset(
        f"https://feed.example/datasets/{number}",
        title=f"Dataset number {number}",
        publisher={"name": publisher},
        contactPoint={"fn": "GIS office", "hasEmail": email},
        modified=modified,
        accessLevel=access,
        license=license,
    )


# hasEmail / modified / accessLevel / license, and what each counts for (F filled, V valid)
DATASETS = [
    # 1: every field well-formed                                        F+V on all four
    dataset(
        1,
        "Parks",
        "mailto:gis@example.org",
        "2024-05-01T10:00:00.000Z",
        "public",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    # 2: filled, none well-formed but the licence (a known name)        F x4, V license
    dataset(
        2,
        "Parks",
        "gis@example.org",
        "May 1, 2024",
        "Public Access",
        "Creative Commons Attribution 4.0",
    ),
    # 3: Hub template leftovers are empty; a disclaimer is no licence    F license only
    dataset(3, "Roads", "{{orgContactEmail}}", "{{modified}}", None, DISCLAIMER),
    # 4: no address; a date that does not exist; two valid values        F modified, access,
    #                                                                    license; V access, license
    dataset(4, "Roads", None, "2024-13-45", "non-public", "ODbL"),
    # 5: epoch seconds are a date the catalog reads, but not ISO 8601     F modified only
    dataset(5, "Roads", None, 1714557600, None, None),
]


def test_fill_counts_non_empty_and_valid_counts_well_formed(tmp_path):
    conn = connect(tmp_path / "ctdata.duckdb")
    store_night(conn, FEED, NIGHT, DATASETS)
    compute_night(conn, FEED, NIGHT)
    portal = metrics_of(conn, "feed", NIGHT)
    # (numerator, denominator) counted from the comments above
    assert {
        m: portal[m][:2]
        for m in portal
        if m.split(":")[0] in ("fill_rate", "valid_rate")
        and m.split(":")[1] in ("contactPoint.hasEmail", "modified", "accessLevel", "license")
    } == {
        "fill_rate:contactPoint.hasEmail": (2, 5),
        "valid_rate:contactPoint.hasEmail": (1, 5),
        "fill_rate:modified": (4, 5),
        "valid_rate:modified": (1, 5),
        "fill_rate:accessLevel": (3, 5),
        "valid_rate:accessLevel": (2, 5),
        "fill_rate:license": (4, 5),
        "valid_rate:license": (3, 5),
    }
    assert portal["valid_rate:license"][2] == pytest.approx(60.0)
    # only the fields with a form have a valid_rate
    assert sorted(m for m in portal if m.startswith("valid_rate:")) == [
        "valid_rate:accessLevel",
        "valid_rate:contactPoint.hasEmail",
        "valid_rate:license",
        "valid_rate:modified",
    ]
    parks, roads = (
        metrics_of(conn, "feed", NIGHT, "Parks"),
        metrics_of(conn, "feed", NIGHT, "Roads"),
    )
    assert parks["fill_rate:contactPoint.hasEmail"][:2] == (2, 2)
    assert parks["valid_rate:contactPoint.hasEmail"][:2] == (1, 2)
    assert roads["fill_rate:modified"][:2] == (2, 3)  # 4 and 5; 3 is a template
    assert roads["valid_rate:modified"][:2] == (0, 3)
    assert roads["valid_rate:accessLevel"][:2] == (1, 3)
    versions = conn.execute(
        "SELECT DISTINCT metric_version FROM board.plan_metrics WHERE metric_id = 'MD-3'"
    ).fetchall()
    assert versions == [(2,)]
    # MD-1 keeps v1's validity: 2's address without mailto: and its accessLevel are missing
    md1 = dict(
        conn.execute(
            "SELECT asset_id, md1_missing FROM metrics.datasets WHERE snapshot_date = ?", [NIGHT]
        ).fetchall()
    )
    assert {"contactPoint.hasEmail", "accessLevel"} <= set(md1["https://feed.example/datasets/2"])
    conn.close()


def test_a_socrata_licence_is_valid_by_name(tmp_path):
    portal = Portal(
        name="ct", kind="socrata", url="https://data.ct.gov", custom_fields=CT_CUSTOM_FIELDS
    )
    records = [
        socrata_record("aaaa-0001", license="Public Domain"),
        socrata_record("aaaa-0002", license="Creative Commons Attribution 4.0 International"),
        socrata_record("aaaa-0003", license="See Terms of Use"),
        socrata_record("aaaa-0004", license=None),
    ]
    conn = connect(tmp_path / "ctdata.duckdb")
    store_night(conn, portal, NIGHT, records)
    compute_night(conn, portal, NIGHT)
    metrics = metrics_of(conn, "ct", NIGHT)
    assert metrics["fill_rate:license"][:2] == (3, 4)
    assert metrics["valid_rate:license"][:2] == (2, 4)
    conn.close()
