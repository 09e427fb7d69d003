"""Metrics v2 on hand-counted fixtures: a night stored through the catalog's own write path,
its nightly metrics computed, probe targets and results inserted by hand as the probes stage
writes them, then compute_probe_metrics. Every expected value is counted in the comments."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from statistics import mean, pstdev
from typing import Any

import duckdb
import pytest

from ctdata_pipeline.metrics.compute import MetricsInvalid, compute_night, ensure_schema
from ctdata_pipeline.metrics.probed import compute_probe_metrics
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    dcat_dataset,
    load_realdata,
    metrics_of,
    socrata_record,
    store_night,
)

NIGHT = date(2026, 3, 2)
SNAPSHOT = night_instant(NIGHT)  # 2026-03-02 07:00 UTC (02:00 in New York)
CT = Portal(
    name="ct",
    kind="socrata",
    url="https://data.ct.gov",
    domain="data.ct.gov",
    custom_fields=CT_CUSTOM_FIELDS,
)
HUB = Portal(name="hub", kind="dcat", url="https://hub.example/data.json")


def at(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_targets(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    night: date,
    rows: list[tuple[str, str, str]],
) -> None:
    """(asset_id, probe, target) rows of probes.targets, as the probes stage writes them."""
    ensure_schema(conn)
    conn.executemany(
        "INSERT INTO probes.targets VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (portal.name, night, asset_id, probe, target, target, ["d1", "d2"])
            for asset_id, probe, target in rows
        ],
    )


def add_result(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    probe: str,
    target: str,
    probed_at: datetime,
    outcome: str = "ok",
    *,
    status: int | None = None,
    observed: list[tuple[str, str | None]] = (),  # type: ignore[assignment]
    night: date | None = None,
) -> None:
    """One row of probes.results; `night` defaults to the night whose probe run made it."""
    ensure_schema(conn)
    conn.execute(
        """
        INSERT INTO probes.results
            (portal, probe, target, snapshot_date, probed_at, request, outcome, status_code,
             observed, detail, elapsed_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?,
                from_json(?, '[{"name": "VARCHAR", "at": "TIMESTAMPTZ"}]'), '', 10)
        """,
        [
            portal.name,
            probe,
            target,
            night or (probed_at - timedelta(hours=7)).date(),
            probed_at,
            f"GET {target}",
            outcome,
            status if status is not None else (200 if outcome == "ok" else None),
            json.dumps([{"name": name, "at": value} for name, value in observed]),
        ],
    )


def night_rows(conn: duckdb.DuckDBPyConnection, table: str, portal: str) -> list[dict[str, Any]]:
    cursor = conn.execute(
        f"SELECT * FROM {table} WHERE portal = ? AND snapshot_date = ? ORDER BY ALL",
        [portal, NIGHT],
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def versions(conn: duckdb.DuckDBPyConnection, portal: str) -> dict[str, int]:
    return dict(
        conn.execute(
            "SELECT DISTINCT metric_id, metric_version FROM board.plan_metrics "
            "WHERE portal = ? AND snapshot_date = ? AND metric_id IN ('FR-5', 'FR-8', 'AC-1')",
            [portal, NIGHT],
        ).fetchall()
    )


# --- a Socrata night: FR-5 and AC-1 -----------------------------------------------------------

PROBE_RUN = SNAPSHOT + timedelta(hours=1)  # tonight's probes, 03:00 New York


@pytest.fixture
def socrata_night(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Seven in-scope datasets of agencies A and B and one link asset of agency C.
    FR-1 at 2026-03-02 07:00 UTC: monthly (f 30: DUE after 30, OVERDUE 44, DELINQUENT 60),
    weekly (f 7: DUE after 7, OVERDUE 14)."""
    records = [
        # a1 A monthly, data 2026-02-20 (10.3 d): FRESH
        socrata_record("aaaa-0001", agency="A", frequency="Monthly",
                       data_updated_at="2026-02-20T00:00:00.000Z"),
        # a2 A monthly, FRESH
        socrata_record("aaaa-0002", agency="A", frequency="Monthly",
                       data_updated_at="2026-02-20T00:00:00.000Z"),
        # a3 B weekly, data 2026-02-21 (9.3 d): DUE
        socrata_record("aaaa-0003", agency="B", frequency="Weekly",
                       data_updated_at="2026-02-21T00:00:00.000Z"),
        # a4 B monthly, data 2025-10-01 (152 d): DELINQUENT
        socrata_record("aaaa-0004", agency="B", frequency="Monthly",
                       data_updated_at="2025-10-01T00:00:00.000Z"),
        # a5 B monthly, FRESH
        socrata_record("aaaa-0005", agency="B", frequency="Monthly",
                       data_updated_at="2026-02-25T00:00:00.000Z"),
        # a6 A monthly, FRESH
        socrata_record("aaaa-0006", agency="A", frequency="Monthly",
                       data_updated_at="2026-02-25T00:00:00.000Z"),
        # a7 A monthly, FRESH, no date column
        socrata_record("aaaa-0007", agency="A", frequency="Monthly",
                       data_updated_at="2026-02-25T00:00:00.000Z"),
        # h1 C: a link asset (not an in-scope dataset)
        socrata_record("hhhh-0001", agency="C", type="href"),
    ]  # fmt: skip
    store_night(conn, CT, NIGHT, records)
    compute_night(conn, CT, NIGHT)
    # content_date targets: a1..a6 have date columns; link targets u1..u7
    add_targets(
        conn,
        CT,
        NIGHT,
        [(f"aaaa-000{i}", "content_date", f"aaaa-000{i}") for i in range(1, 7)]
        + [
            ("aaaa-0001", "link", "https://u1.example/"),
            ("aaaa-0001", "link", "https://u2.example/"),
            ("aaaa-0002", "link", "https://u2.example/"),
            ("aaaa-0002", "link", "https://u3.example/"),
            ("aaaa-0003", "link", "https://u4.example/"),
            ("aaaa-0003", "link", "https://u5.example/"),
            ("aaaa-0004", "link", "https://u6.example/"),
            ("hhhh-0001", "link", "https://u7.example/"),
        ],
    )
    content = "content_date"
    # fmt: off
    # a1: d1 max 2025-06-01 (274 d > 3 x 30: silently stale), d2 all null
    add_result(conn, CT, content, "aaaa-0001", PROBE_RUN,
               observed=[("d1", "2025-06-01T00:00:00Z"), ("d2", None)])
    # a2: d1 2026-02-25 (5.3 d), d2 in 2027 (after snapshot + 1 day: ignored) -> not stale
    add_result(conn, CT, content, "aaaa-0002", PROBE_RUN,
               observed=[("d1", "2026-02-25T00:00:00Z"), ("d2", "2027-01-01T00:00:00Z")])
    # a3 (DUE, weekly): 2026-02-01 (29.3 d > 21): silently stale; an older result said
    # otherwise, the latest counts
    add_result(conn, CT, content, "aaaa-0003", PROBE_RUN - timedelta(days=7),
               observed=[("d1", "2026-02-20T00:00:00Z")])
    add_result(conn, CT, content, "aaaa-0003", PROBE_RUN,
               observed=[("d1", "2026-02-01T00:00:00Z")])
    # a4 (DELINQUENT): a content date, but not FRESH or DUE: outside pct_silently_stale
    add_result(conn, CT, content, "aaaa-0004", PROBE_RUN,
               observed=[("d1", "2024-01-01T00:00:00Z")])
    # a5: the SoQL query failed with 400: no content date
    add_result(conn, CT, content, "aaaa-0005", PROBE_RUN, "http_error", status=400)
    # a6: its only real result is 15 days old (window 2 x 7 = 14 days), then not_checked
    add_result(conn, CT, content, "aaaa-0006", SNAPSHOT - timedelta(days=15),
               observed=[("d1", "2025-01-01T00:00:00Z")])
    add_result(conn, CT, content, "aaaa-0006", PROBE_RUN, "not_checked", status=None)

    link = "link"
    # u1: failed 3 nights ago, OK tonight -> OK
    add_result(conn, CT, link, "https://u1.example/", PROBE_RUN - timedelta(days=3),
               "http_error", status=500)
    add_result(conn, CT, link, "https://u1.example/", PROBE_RUN)
    # u2: 404 two nights ago and tonight (48 h apart) -> broken since two nights ago
    add_result(conn, CT, link, "https://u2.example/", PROBE_RUN - timedelta(days=2),
               "http_error", status=404)
    add_result(conn, CT, link, "https://u2.example/", PROBE_RUN, "http_error", status=404)
    # u3: one timeout -> failing, not broken
    add_result(conn, CT, link, "https://u3.example/", PROBE_RUN, "timeout")
    # u4: OK, then two failures 2 hours apart -> failing, not broken
    add_result(conn, CT, link, "https://u4.example/", PROBE_RUN - timedelta(days=1))
    add_result(conn, CT, link, "https://u4.example/", PROBE_RUN - timedelta(hours=2), "refused")
    add_result(conn, CT, link, "https://u4.example/", PROBE_RUN, "refused")
    # u5: robots.txt disallows it: not_checked only -> not checked
    add_result(conn, CT, link, "https://u5.example/", PROBE_RUN, "not_checked", status=None)
    # u6: never probed -> not checked
    # u7: DNS failure 3 nights ago and tonight -> broken
    add_result(conn, CT, link, "https://u7.example/", PROBE_RUN - timedelta(days=3), "dns")
    add_result(conn, CT, link, "https://u7.example/", PROBE_RUN, "dns")
    # a result of a later night's run is not seen by tonight's metrics
    add_result(conn, CT, link, "https://u2.example/", PROBE_RUN + timedelta(days=1),
               night=NIGHT + timedelta(days=1))
    # fmt: on
    return conn


def test_fr5_silently_stale_per_portal_and_agency(socrata_night):
    conn = socrata_night
    stored = compute_probe_metrics(conn, CT, NIGHT)
    whole = metrics_of(conn, "ct", NIGHT)
    # date columns: a1..a6 = 6; content dates: a1, a2, a3, a4 = 4 (a5 failed, a6 too old)
    assert whole["content_date_coverage"][:3] == (4, 6, pytest.approx(100 * 4 / 6))
    # FRESH or DUE with a content date: a1, a2, a3 = 3; silently stale: a1, a3 = 2
    assert whole["pct_silently_stale"][:3] == (2, 3, pytest.approx(100 * 2 / 3))
    agency_a = metrics_of(conn, "ct", NIGHT, "A")
    # A: a1, a2, a6 with date columns, a1, a2 with content dates; a1 stale of a1, a2
    assert agency_a["content_date_coverage"][:2] == (2, 3)
    assert agency_a["pct_silently_stale"][:3] == (1, 2, 50.0)
    agency_b = metrics_of(conn, "ct", NIGHT, "B")
    # B: a3, a4, a5 with date columns; a3, a4 with content dates; a3 (DUE) stale of a3
    assert agency_b["content_date_coverage"][:2] == (2, 3)
    assert agency_b["pct_silently_stale"][:3] == (1, 1, 100.0)
    assert versions(conn, "ct") == {"FR-5": 2, "FR-8": 2, "AC-1": 2}

    rows = night_rows(conn, "board.silently_stale", "ct")
    assert [r["asset_id"] for r in rows] == ["aaaa-0001", "aaaa-0003"]
    a1 = rows[0]
    assert a1["content_date"] == at("2025-06-01T00:00:00Z")
    # 2025-06-01 00:00 to 2026-03-02 07:00 UTC: 274 days and 7 hours
    assert a1["content_age_days"] == pytest.approx(274 + 7 / 24)
    assert (a1["agency"], a1["update_frequency"], a1["period_days"]) == ("A", "monthly", 30)
    assert a1["data_updated_at"] == at("2026-02-20T00:00:00Z")
    assert a1["permalink"] == "https://data.ct.gov/d/aaaa-0001"
    assert rows[1]["freshness_state"] == "DUE"
    assert stored.silently_stale == 2
    # a2's 2027 maximum is in the future: its content date is d1's
    probed = {r["asset_id"]: r for r in night_rows(conn, "metrics.probed_datasets", "ct")}
    assert probed["aaaa-0002"]["content_date"] == at("2026-02-25T00:00:00Z")
    assert probed["aaaa-0002"]["silently_stale"] is False
    assert probed["aaaa-0004"]["silently_stale"] is None  # DELINQUENT: not judged
    assert probed["aaaa-0007"]["has_date_column"] is False
    # this portal is Socrata: FR-8 says why it has no value
    assert whole["layer_date_coverage"][2] is None
    assert "DCAT" in whole["layer_date_coverage"][3]


def test_ac1_links_per_portal_and_agency(socrata_night):
    conn = socrata_night
    compute_probe_metrics(conn, CT, NIGHT)
    whole = metrics_of(conn, "ct", NIGHT)
    # URLs u1..u7; with a result u1, u2, u3, u4, u7 = 5; OK: u1 (its latest) = 1
    assert whole["pct_links_ok"][:3] == (1, 5, 20.0)
    # not checked: u5 (not_checked only), u6 (no result) = 2
    assert whole["links_not_checked"][:3] == (2, None, 2)
    # datasets with a URL with a result: a1, a2, a3, h1 = 4; with a broken URL (u2 of a1 and
    # a2, u7 of h1) = 3
    assert whole["pct_datasets_with_broken_link"][:3] == (3, 4, 75.0)
    agency_a = metrics_of(conn, "ct", NIGHT, "A")
    # A: u1, u2, u3 (u2 counted once though a1 and a2 both list it); OK u1
    assert agency_a["pct_links_ok"][:2] == (1, 3)
    assert agency_a["links_not_checked"][2] == 0
    assert agency_a["pct_datasets_with_broken_link"][:2] == (2, 2)
    agency_b = metrics_of(conn, "ct", NIGHT, "B")
    # B: u4 (failing), u5, u6 (not checked)
    assert agency_b["pct_links_ok"][:3] == (0, 1, 0.0)
    assert agency_b["links_not_checked"][2] == 2
    assert agency_b["pct_datasets_with_broken_link"][:3] == (0, 1, 0.0)
    agency_c = metrics_of(conn, "ct", NIGHT, "C")
    assert agency_c["pct_datasets_with_broken_link"][:2] == (1, 1)

    rows = night_rows(conn, "board.broken_links", "ct")
    assert [(r["asset_id"], r["url"], r["status"], r["agency"]) for r in rows] == [
        ("aaaa-0001", "https://u2.example/", "404", "A"),
        ("aaaa-0002", "https://u2.example/", "404", "A"),
        ("hhhh-0001", "https://u7.example/", "dns", "C"),
    ]
    assert rows[0]["first_failed"] == PROBE_RUN - timedelta(days=2)
    assert rows[0]["last_checked"] == PROBE_RUN
    assert rows[2]["first_failed"] == PROBE_RUN - timedelta(days=3)


def test_two_failures_make_a_broken_link_only_across_nights(conn):
    """One failure is failing; a second one 24 hours later makes it broken; an OK clears it."""
    store_night(conn, CT, NIGHT, [socrata_record("aaaa-0001")])
    compute_night(conn, CT, NIGHT)
    nights = [NIGHT + timedelta(days=n) for n in range(3)]
    url = "https://gone.example/file.csv"
    seen = []
    for n, night in enumerate(nights):
        if n:
            store_night(conn, CT, night, [socrata_record("aaaa-0001")])
            compute_night(conn, CT, night)
        add_targets(conn, CT, night, [("aaaa-0001", "link", url)])
        outcome = ("http_error", "http_error", "ok")[n]
        add_result(conn, CT, "link", url, night_instant(night) + timedelta(hours=1), outcome,
                   status=(410, 410, 200)[n], night=night)  # fmt: skip
        compute_probe_metrics(conn, CT, night)
        seen.append(metrics_of(conn, "ct", night)["pct_datasets_with_broken_link"][:2])
    assert seen == [(0, 1), (1, 1), (0, 1)]
    broken = conn.execute(
        "SELECT snapshot_date, status FROM board.broken_links ORDER BY ALL"
    ).fetchall()
    assert broken == [(nights[1], "410")]


def test_a_rerun_replaces_the_night_and_leaves_v1_rows_alone(socrata_night):
    conn = socrata_night
    v1 = conn.execute("SELECT * FROM board.plan_metrics ORDER BY ALL").fetchall()
    first = compute_probe_metrics(conn, CT, NIGHT)
    compute_probe_metrics(conn, CT, NIGHT)
    total = conn.execute("SELECT count(*) FROM board.plan_metrics").fetchone()[0]
    assert total == len(v1) + first.metric_rows
    assert conn.execute("SELECT count(*) FROM board.broken_links").fetchone()[0] == 3
    # a recompute of the nightly metrics keeps the probe metrics' rows
    compute_night(conn, CT, NIGHT)
    assert conn.execute("SELECT count(*) FROM board.plan_metrics").fetchone()[0] == total
    probe_rows = conn.execute(
        "SELECT count(*) FROM board.plan_metrics WHERE metric_id IN ('FR-5', 'FR-8', 'AC-1')"
    ).fetchone()[0]
    assert probe_rows > 0 and first.metric_rows >= probe_rows


def test_not_yet_probed_says_so(conn):
    store_night(conn, CT, NIGHT, [socrata_record("aaaa-0001")])
    compute_night(conn, CT, NIGHT)
    add_targets(conn, CT, NIGHT, [("aaaa-0001", "content_date", "aaaa-0001"),
                                  ("aaaa-0001", "link", "https://x.example/")])  # fmt: skip
    compute_probe_metrics(conn, CT, NIGHT)
    whole = metrics_of(conn, "ct", NIGHT)
    assert whole["pct_silently_stale"][2:] == (None, "not yet probed")
    assert whole["pct_links_ok"][2:] == (None, "not yet probed")
    assert whole["links_not_checked"][2] == 1


def test_needs_the_nightly_metrics_first(conn):
    store_night(conn, CT, NIGHT, [socrata_record("aaaa-0001")])
    with pytest.raises(MetricsInvalid, match="not computed yet"):
        compute_probe_metrics(conn, CT, NIGHT)


# --- a DCAT night: FR-8 and FR-1/FR-2 by data date ---------------------------------------------


@pytest.fixture
def dcat_night(conn: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    def dataset(identifier: str, publisher: str, frequency: str | None, modified: str):
        return dcat_dataset(
            identifier,
            title=f"Layer {identifier}",
            publisher={"@type": "org:Organization", "name": publisher},
            accrualPeriodicity=frequency,
            modified=modified,
        )

    records = [
        dataset("h1", "P", "R/P1M", "2026-02-25"),
        dataset("h2", "P", "R/P1M", "2026-02-20"),
        dataset("h3", "Q", "R/P1W", "2026-02-28"),
        dataset("h4", "Q", "R/P1Y", "2020-01-01"),
        dataset("h5", "Q", None, "2025-06-01"),
        dataset("h6", "P", "R/P1M", "2025-12-01"),
    ]
    store_night(conn, HUB, NIGHT, records)
    compute_night(conn, HUB, NIGHT)
    layer = "https://services.example/arcgis/rest/services/{}/FeatureServer/0"
    add_targets(
        conn, HUB, NIGHT, [(f"h{i}", "layer_date", layer.format(i)) for i in (1, 2, 3, 4, 6)]
    )
    probe = "layer_date"
    # fmt: off
    # h1: dataLastEditDate 2024-01-01 (and an older lastEditDate, not used)
    add_result(conn, HUB, probe, layer.format(1), PROBE_RUN,
               observed=[("dataLastEditDate", "2024-01-01T00:00:00Z"),
                         ("lastEditDate", "2023-01-01T00:00:00Z")])
    # h2: only lastEditDate, 2026-02-19 (modified 2026-02-20 is exactly 1 day after: not more)
    add_result(conn, HUB, probe, layer.format(2), PROBE_RUN,
               observed=[("lastEditDate", "2026-02-19T00:00:00Z")])
    # h3: the layer states neither date
    add_result(conn, HUB, probe, layer.format(3), PROBE_RUN)
    # h4: an error JSON with HTTP 200
    add_result(conn, HUB, probe, layer.format(4), PROBE_RUN, "bad_answer", status=200)
    # h6: the data changed 2026-02-27, after modified 2025-12-01
    add_result(conn, HUB, probe, layer.format(6), PROBE_RUN,
               observed=[("dataLastEditDate", "2026-02-27T00:00:00Z")])
    # fmt: on
    return conn


def test_fr8_layer_dates_per_portal_and_agency(dcat_night):
    conn = dcat_night
    compute_probe_metrics(conn, HUB, NIGHT)
    probed = {r["asset_id"]: r for r in night_rows(conn, "metrics.probed_datasets", "hub")}
    # data dates: h1, h2, h6 from their layers, h3 and h4 from modified; h5 has no layer
    assert {i: (r["data_date_source"], r["layer_date_source"]) for i, r in probed.items()} == {
        "h1": ("layer", "dataLastEditDate"),
        "h2": ("layer", "lastEditDate"),
        "h3": ("modified", None),
        "h4": ("modified", None),
        "h5": ("modified", None),
        "h6": ("layer", "dataLastEditDate"),
    }
    # ages at 2026-03-02 07:00 UTC: h3 2.29, h6 3.29, h2 11.29, h1 791.29, h4 2252.29 days
    hours = 7 / 24
    assert probed["h1"]["data_age_days"] == pytest.approx(791 + hours)
    assert probed["h4"]["data_age_days"] == pytest.approx(2252 + hours)
    whole = metrics_of(conn, "hub", NIGHT)
    assert whole["median_data_age_days"][1:3] == (5, pytest.approx(11 + hours))
    assert whole["pct_data_older_than_1y"][:3] == (2, 5, 40.0)  # h1, h4
    assert whole["pct_data_older_than_3y"][:3] == (1, 5, 20.0)  # h4
    assert whole["layer_date_coverage"][:3] == (3, 5, 60.0)  # h1, h2, h6 of five layers
    # modified more than 1 day after the layer date: h1 only, of h1, h2, h6
    assert whole["pct_modified_after_data_edit"][:3] == (1, 3, pytest.approx(100 / 3))
    agency_p = metrics_of(conn, "hub", NIGHT, "P")  # h1, h2, h6
    assert agency_p["layer_date_coverage"][:3] == (3, 3, 100.0)
    assert agency_p["median_data_age_days"][2] == pytest.approx(11 + hours)
    assert agency_p["pct_data_older_than_3y"][:2] == (0, 3)
    agency_q = metrics_of(conn, "hub", NIGHT, "Q")  # h3, h4 with layers; h5 without
    assert agency_q["layer_date_coverage"][:3] == (0, 2, 0.0)
    assert agency_q["median_data_age_days"][2] == pytest.approx((2 + 2252) / 2 + hours)
    assert agency_q["pct_modified_after_data_edit"][2:] == (None, "no layer date")
    assert versions(conn, "hub") == {"FR-5": 2, "FR-8": 2, "AC-1": 2}
    # this portal is DCAT: FR-5 says why it has no value
    assert whole["pct_silently_stale"][2] is None and "Socrata" in whole["pct_silently_stale"][3]


def test_fr1_by_data_date_for_dcat(dcat_night):
    conn = dcat_night
    compute_probe_metrics(conn, HUB, NIGHT)
    probed = {r["asset_id"]: r for r in night_rows(conn, "metrics.probed_datasets", "hub")}
    v1 = {
        asset_id: state
        for asset_id, state in conn.execute(
            "SELECT asset_id, freshness_state FROM metrics.datasets WHERE portal = 'hub'"
        ).fetchall()
    }
    # v1 by modified: h1 FRESH (5.3 d), h6 DELINQUENT (91.3 d > 60); by the data date h1 is
    # DELINQUENT (791 d) and h6 FRESH (3.3 d); h5 has no known frequency: not judged
    assert (v1["h1"], v1["h6"]) == ("FRESH", "DELINQUENT")
    assert {i: r["freshness_state_by_data_date"] for i, r in probed.items()} == {
        "h1": "DELINQUENT",
        "h2": "FRESH",
        "h3": "FRESH",
        "h4": "DELINQUENT",
        "h5": None,
        "h6": "FRESH",
    }
    whole = metrics_of(conn, "hub", NIGHT)
    assert whole["freshness_state_by_data_date:FRESH"][2] == 3
    assert whole["freshness_state_by_data_date:DELINQUENT"][2] == 2
    assert whole["freshness_state_by_data_date:UNKNOWN"][2] == 0
    assert whole["pct_stale_by_data_date"][:3] == (2, 5, 40.0)
    agency_q = metrics_of(conn, "hub", NIGHT, "Q")  # h3 FRESH, h4 DELINQUENT
    assert agency_q["pct_stale_by_data_date"][:3] == (1, 2, 50.0)
    metric_ids = dict(
        conn.execute(
            "SELECT DISTINCT metric, metric_id FROM board.plan_metrics "
            "WHERE metric LIKE '%by_data_date%'"
        ).fetchall()
    )
    assert set(metric_ids.values()) == {"FR-1", "FR-2"}


# --- AC-2 and GV-1, in the nightly compute ----------------------------------------------------


def test_ac2_machine_readable_by_media_type_then_format_then_url(conn):
    def dataset(identifier: str, publisher: str, distribution: Any):
        return dcat_dataset(
            identifier,
            publisher={"@type": "org:Organization", "name": publisher},
            distribution=distribution,
        )

    hub_page = {"mediaType": "text/html", "format": "Web Page", "accessURL": "https://h/p"}
    records = [
        # m1 P: the Hub page and its GeoService (application/json): json
        dataset("m1", "P", [hub_page, {"mediaType": "application/json",
                                       "format": "ArcGIS GeoServices REST API",
                                       "accessURL": "https://s/rest/services/A/FeatureServer/0"}]),
        # m2 P: octet-stream names no format; the format field says GEOJSON
        dataset("m2", "P", [{"mediaType": "application/octet-stream", "format": "GEOJSON",
                             "downloadURL": "https://d/m2"}]),
        # m3 P: a zip that says nothing more, and a web page: not machine-readable
        dataset("m3", "P", [{"mediaType": "application/zip", "format": "ZIP",
                             "downloadURL": "https://d/m3.zip"}, hub_page]),
        # m4 P: only the URL's extension: .xlsx (machine-readable, not open)
        dataset("m4", "P", [{"downloadURL": "https://d/m4.xlsx?download=1"}]),
        # m5 Q: an ArcGIS REST layer URL without mediaType or format
        dataset("m5", "Q", [{"accessURL": "https://s/arcgis/rest/services/B/MapServer/2"}]),
        # m6 Q: mediaType PDF decides, whatever the URL says
        dataset("m6", "Q", [{"mediaType": "application/pdf", "downloadURL": "https://d/m6.csv"}]),
        # m7 Q: no distribution at all
        dataset("m7", "Q", None),
        # m8 Q: one distribution given as an object, not a list: CSV
        dataset("m8", "Q", {"mediaType": "text/csv", "downloadURL": "https://d/m8"}),
    ]  # fmt: skip
    store_night(conn, HUB, NIGHT, records)
    compute_night(conn, HUB, NIGHT)
    whole = metrics_of(conn, "hub", NIGHT)
    # machine-readable: m1, m2, m4, m5, m8 of 8
    assert whole["pct_machine_readable"][:3] == (5, 8, 62.5)
    assert metrics_of(conn, "hub", NIGHT, "P")["pct_machine_readable"][:3] == (3, 4, 75.0)
    assert metrics_of(conn, "hub", NIGHT, "Q")["pct_machine_readable"][:3] == (2, 4, 50.0)
    practice = {
        asset_id: (formats, readable, open_)
        for asset_id, formats, readable, open_ in conn.execute(
            "SELECT asset_id, formats, machine_readable, machine_readable_open "
            "FROM metrics.dataset_practice WHERE portal = 'hub'"
        ).fetchall()
    }
    assert practice == {
        "m1": (["json", "other"], True, True),
        "m2": (["geojson"], True, True),
        "m3": (["other"], False, False),
        "m4": (["xlsx"], True, False),
        "m5": (["arcgis_rest"], True, True),
        "m6": (["other"], False, False),
        "m7": ([], False, False),
        "m8": (["csv"], True, True),
    }
    version = conn.execute(
        "SELECT DISTINCT metric_version FROM board.plan_metrics WHERE metric_id = 'AC-2'"
    ).fetchall()
    assert version == [(2,)]


def test_ac2_socrata_tabular_datasets_count(socrata_night):
    # seven in-scope datasets, all tabular; the link asset is not in scope
    whole = metrics_of(socrata_night, "ct", NIGHT)
    assert whole["pct_machine_readable"][:3] == (7, 7, 100.0)


def test_gv1_automation_inferred_from_the_portals_snapshots(conn):
    """28 weekly snapshots (189 days). g1 weekly, its data updated every week: automated.
    g2 weekly, updated at intervals of 7 then 21 days (CV 0.5): not. g3 monthly, updated every
    42 days (4 times in 180 days): not. g4 annual, g6 as needed: not judged (f > 90 or none);
    g5 weekly but held only 8 weeks: not judged."""
    start = NIGHT - timedelta(days=7 * 27)
    nights = [start + timedelta(days=7 * k) for k in range(28)]
    g2_changes = [k for k in range(28) if k % 4 in (0, 1)]  # intervals 7, 21, 7, 21 ...

    def updated(night: date) -> str:
        return f"{(night - timedelta(days=1)).isoformat()}T12:00:00.000Z"

    for k, night in enumerate(nights):
        last_g2 = nights[max(c for c in g2_changes if c <= k)]
        last_g3 = nights[k - k % 6]
        records = [
            socrata_record("gggg-0001", agency="A", frequency="Weekly",
                           data_updated_at=updated(night)),
            socrata_record("gggg-0002", agency="A", frequency="Weekly",
                           data_updated_at=updated(last_g2)),
            socrata_record("gggg-0003", agency="B", frequency="Monthly",
                           data_updated_at=updated(last_g3)),
            socrata_record("gggg-0004", agency="B", frequency="Annually",
                           data_updated_at=updated(night)),
            socrata_record("gggg-0006", agency="B", frequency="As needed",
                           data_updated_at=updated(night)),
        ]  # fmt: skip
        if k >= 19:
            records.append(
                socrata_record(
                    "gggg-0005", agency="B", frequency="Weekly", data_updated_at=updated(night)
                )
            )
        store_night(conn, CT, night, records)
    compute_night(conn, CT, NIGHT)
    whole = metrics_of(conn, "ct", NIGHT)
    # judged: g1, g2, g3; automated: g1
    assert whole["automation_share_inferred"][:3] == (1, 3, pytest.approx(100 / 3))
    assert metrics_of(conn, "ct", NIGHT, "A")["automation_share_inferred"][:3] == (1, 2, 50.0)
    assert metrics_of(conn, "ct", NIGHT, "B")["automation_share_inferred"][:3] == (0, 1, 0.0)
    practice = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT asset_id, automation_judged, data_changes, interval_cv, automated_inferred "
            "FROM metrics.dataset_practice WHERE portal = 'ct' AND snapshot_date = ?",
            [NIGHT],
        ).fetchall()
    }
    # g1: updates on the 26 nights within 180 days of the snapshot, 7 days apart (CV 0)
    assert practice["gggg-0001"][:2] == (True, 26)
    assert practice["gggg-0001"][2] == pytest.approx(0, abs=1e-9)
    assert practice["gggg-0001"][3] is True
    # g2: the updates of weeks 4, 5, 8, 9, ... 24, 25 (12) fall within 180 days (week 1's is
    # 182.8 days before the snapshot); their 11 intervals: 6 of 7 days and 5 of 21
    intervals = [7, 21] * 5 + [7]
    assert practice["gggg-0002"][:2] == (True, 12)
    assert practice["gggg-0002"][2] == pytest.approx(pstdev(intervals) / mean(intervals))
    assert practice["gggg-0002"][3] is False
    # g3: the updates of weeks 6, 12, 18, 24
    assert practice["gggg-0003"][:2] == (True, 4) and practice["gggg-0003"][3] is False
    assert [practice[g][0] for g in ("gggg-0004", "gggg-0005", "gggg-0006")] == [False] * 3


def test_gv1_says_when_history_is_too_short(socrata_night):
    whole = metrics_of(socrata_night, "ct", NIGHT)
    assert whole["automation_share_inferred"][2:] == (
        None,
        "insufficient history: the portal's snapshots span 0 of 180 days",
    )


def test_a_night_without_probe_targets_says_so(conn):
    store_night(conn, CT, NIGHT, [socrata_record("aaaa-0001")])
    compute_night(conn, CT, NIGHT)
    stored = compute_probe_metrics(conn, CT, NIGHT)
    whole = metrics_of(conn, "ct", NIGHT)
    assert stored.targets == 0
    for metric in ("pct_silently_stale", "content_date_coverage", "pct_links_ok"):
        assert whole[metric][2:] == (None, "not yet probed: no probe targets stored for this night")
    assert "Socrata" in whole["layer_date_coverage"][3]  # not applicable says so still


def test_link_assets_take_the_canonical_agency(conn):
    """A link asset is no in-scope dataset: its agency takes the canonical name its published
    name got in tonight's metrics.datasets, or the aliases given."""
    records = [
        socrata_record("aaaa-0001", agency="Dept. of Health"),
        socrata_record("hhhh-0001", agency="Dept. of Health", type="href"),
        socrata_record("hhhh-0002", agency="DOT", type="href"),
    ]
    store_night(conn, CT, NIGHT, records)
    aliases = {"Dept. of Health": "Department of Public Health", "DOT": "Transportation"}
    compute_night(conn, CT, NIGHT, aliases)
    add_targets(conn, CT, NIGHT, [(a, "link", f"https://{a}.example/") for a in
                                  ("aaaa-0001", "hhhh-0001", "hhhh-0002")])  # fmt: skip

    def agencies():
        return dict(
            conn.execute(
                "SELECT asset_id, agency FROM metrics.probed_datasets WHERE portal = 'ct'"
            ).fetchall()
        )

    compute_probe_metrics(conn, CT, NIGHT)
    # hhhh-0002's published name appears on no in-scope dataset: without aliases it stays
    assert agencies() == {
        "aaaa-0001": "Department of Public Health",
        "hhhh-0001": "Department of Public Health",
        "hhhh-0002": "DOT",
    }
    compute_probe_metrics(conn, CT, NIGHT, aliases)
    assert agencies()["hhhh-0002"] == "Transportation"
    assert metrics_of(conn, "ct", NIGHT, "Transportation")["links_not_checked"][2] == 1


@pytest.mark.parametrize(
    ("relative", "readable", "datasets"),
    [
        # GeoHive's Hub feed: 370 datasets list their GeoService (application/json) and most a
        # CSV; 2 list only their Hub page (text/html)
        ("dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json", 370, 372),
        # FCC's Socrata data.json: 55 with CSV/JSON/RDF/XML downloads; 3 with only text/html
        # links and one with no distribution
        ("dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-02-04.json", 55, 59),
    ],
)
def test_ac2_on_real_feeds(conn, relative, readable, datasets):
    records = load_realdata(relative)["dataset"]
    # counted here from the raw JSON: a distribution with a CSV or JSON mediaType; every other
    # dataset lists web pages only (or nothing)
    with_data = [
        r
        for r in records
        if any(
            d.get("mediaType") in ("text/csv", "application/json")
            for d in r.get("distribution") or []
        )
    ]
    others = [r for r in records if r not in with_data]
    assert all(
        d.get("mediaType") == "text/html" for r in others for d in r.get("distribution") or []
    )
    assert (len(with_data), len(records)) == (readable, datasets)
    store_night(conn, HUB, NIGHT, records)
    compute_night(conn, HUB, NIGHT)
    whole = metrics_of(conn, "hub", NIGHT)
    assert whole["pct_machine_readable"][:2] == (readable, datasets)
