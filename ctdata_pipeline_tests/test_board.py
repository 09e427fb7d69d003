"""Metrics and board tables through real Dagster runs of the nightly job: every table filled and
consistent, checks that guard the numbers, re-runs that replace a night, and a night whose
tables do not add up writing nothing."""

import json
from datetime import timedelta

import dagster as dg

from ctdata_pipeline.board import publish
from ctdata_pipeline.jobs import RECOMPUTE_JOB
from ctdata_pipeline.partitions import night_key
from ctdata_pipeline_tests.support import (
    Pipeline,
    load_realdata,
    nightly_source,
    portal_entry,
    query,
    serve,
    socrata_catalog,
)

GEOHIVE = "dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json"
BOARD_TABLES = ("missing_metadata", "stale_datasets", "agency_scorecard", "catalog_changes")


def checks_of(instance, run_id):
    return {
        (
            e.dagster_event.event_specific_data.asset_key.to_user_string(),
            e.dagster_event.event_specific_data.check_name,
        ): e.dagster_event.event_specific_data
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    }


def materializations_of(instance, run_id):
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    materializations = [e.dagster_event.event_specific_data.materialization for e in events]
    return {m.asset_key.to_user_string(): m for m in materializations}


def test_a_night_fills_every_board_table_and_checks_pass(tmp_path, instance, today):
    with (
        serve("socrata", socrata_catalog(120)) as socrata,
        serve("dcat", load_realdata(GEOHIVE)) as hub,
    ):
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata), portal_entry("hub", hub)])
        results = pipeline.run(instance, today, "ct", "hub")
    assert all(result.success for result in results), [r.reason for r in results]

    metrics = dict(
        query(
            pipeline.db_path,
            "SELECT portal, count(*) FROM board.plan_metrics WHERE snapshot_date = ? "
            "GROUP BY portal",
            [today],
        )
    )
    assert metrics["ct"] > 100 and metrics["hub"] > 100
    # (GeoHive declares no update frequencies, so none of its datasets can be stale)
    assert (
        query(pipeline.db_path, "SELECT count(*) FROM board.stale_datasets WHERE portal = 'ct'")[0][
            0
        ]
        > 0
    )
    for table in ("missing_metadata", "agency_scorecard"):
        rows = dict(
            query(pipeline.db_path, f"SELECT portal, count(*) FROM board.{table} GROUP BY portal")
        )
        assert rows.get("ct", 0) > 0 and rows.get("hub", 0) > 0, table
    # the first night has nothing to compare with: no changes, and INV-2 says why
    assert query(pipeline.db_path, "SELECT count(*) FROM board.catalog_changes") == [(0,)]

    ct_run = next(r for r in results if r.portal == "ct").run_id
    checks = checks_of(instance, ct_run)
    assert {key: check.passed for key, check in checks.items()} == {
        ("catalog_snapshot", "asset_ids_unique"): True,
        ("catalog_snapshot", "in_scope_within_band"): True,
        ("dataset_assessments", "one_row_per_dataset"): True,
        ("plan_metrics", "values_in_range"): True,
        ("plan_metrics", "night_to_night_moves"): True,
    }
    materialized = materializations_of(instance, ct_run)
    assert set(materialized) == {
        "harvested_catalog",
        "catalog_snapshot",
        "dataset_assessments",
        "plan_metrics",
        *BOARD_TABLES,
    }
    plan = materialized["plan_metrics"].metadata
    expected = query(
        pipeline.db_path,
        "SELECT value FROM board.plan_metrics WHERE portal = 'ct' AND agency IS NULL "
        "AND metric = 'pct_missing_metadata'",
    )[0][0]
    # a number Dagster plots, one key per portal, and the small table: rounded as the report prints
    assert plan["ct: pct_missing_metadata"].value == round(expected, 1)
    assert isinstance(plan["ct: datasets_in_scope"], dg.IntMetadataValue)
    assert f"| pct\\_missing\\_metadata | MD-1 | {expected:.1f}% |" in plan["portal_values"].value
    for table in BOARD_TABLES:
        rows = query(pipeline.db_path, f"SELECT count(*) FROM board.{table} WHERE portal = 'ct'")
        assert materialized[table].metadata["dagster/row_count"].value == rows[0][0]


def test_the_board_tables_agree_with_their_metrics(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(150)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    db = pipeline.db_path

    def metric(name, column="value"):
        return query(
            db,
            f"SELECT {column} FROM board.plan_metrics WHERE agency IS NULL AND metric = ?",
            [name],
        )[0][0]

    assert query(db, "SELECT count(*) FROM board.stale_datasets") == [
        (metric("pct_stale", "numerator"),)
    ]
    assert query(db, "SELECT count(*) FROM board.missing_metadata") == [
        (
            metric("pct_meets_ct_standard", "denominator")
            - metric("pct_meets_ct_standard", "numerator"),
        )
    ]
    assert query(db, "SELECT sum(datasets) FROM board.agency_scorecard") == [
        (metric("datasets_in_scope"),)
    ]
    # each work-list row links to the dataset's page
    assert query(
        db, "SELECT count(*) FROM board.missing_metadata WHERE url NOT LIKE 'https://%'"
    ) == [(0,)]
    ranks = [row[0] for row in query(db, "SELECT work_rank FROM board.stale_datasets ORDER BY 1")]
    assert ranks == list(range(1, len(ranks) + 1))


def test_moves_between_nights_raise_warnings_that_name_them(tmp_path, instance, today):
    yesterday = today - timedelta(days=1)

    def catalog_for(night):
        records = socrata_catalog(100, datasets_only=True)
        if night == today:  # 30 datasets lose their tags and 20 are gone
            for record in records[:30]:
                record["classification"]["domain_tags"] = []
            records = records[:80]
        return records

    with serve("socrata", nightly_source(catalog_for)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        pipeline.run_ok(instance, yesterday, "ct")
        [tonight] = pipeline.run(instance, today, "ct")
    assert tonight.success
    checks = checks_of(instance, tonight.run_id)
    moves_partition = checks[("plan_metrics", "night_to_night_moves")].partition
    band = checks[("catalog_snapshot", "in_scope_within_band")]
    assert not band.passed and band.severity == dg.AssetCheckSeverity.WARN
    assert band.description.startswith(
        f"ct {today}: 80 in-scope datasets against 100 on {yesterday} (-20.0%"
    )
    assert band.partition == moves_partition == f"{today}|ct"
    moves = checks[("plan_metrics", "night_to_night_moves")]
    assert not moves.passed and moves.severity == dg.AssetCheckSeverity.WARN
    assert (
        "pct_missing_metadata (" in moves.description and "moved from 0.0 to" in moves.description
    )
    assert moves.metadata["moves"].value > 10
    whole_portal = query(
        pipeline.db_path,
        "SELECT previous_value, value FROM board.metric_trends WHERE snapshot_date = ? "
        "AND agency IS NULL AND metric = 'pct_missing_metadata'",
        [today],
    )
    assert whole_portal[0][1] - whole_portal[0][0] > 10  # 30 of 80 lost their tags
    changes = query(
        pipeline.db_path, "SELECT change, count(*) FROM board.catalog_changes GROUP BY 1"
    )
    assert changes == [("removed", 20)]


def test_recomputing_a_night_replaces_its_rows(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(60)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
    tables = ("board.plan_metrics", "metrics.datasets", *(f"board.{t}" for t in BOARD_TABLES))
    counts = {t: query(pipeline.db_path, f"SELECT count(*) FROM {t}") for t in tables}
    result = pipeline.defs.resolve_job_def(RECOMPUTE_JOB).execute_in_process(
        partition_key=night_key(today, "ct"), instance=instance
    )
    assert result.success
    assert {t: query(pipeline.db_path, f"SELECT count(*) FROM {t}") for t in tables} == counts
    assert len(result.get_asset_materialization_events()) == 6  # metrics and board, no harvest


def test_a_board_table_that_does_not_add_up_writes_nothing(tmp_path, instance, today, monkeypatch):
    with serve("socrata", socrata_catalog(60)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
        before = {
            t: query(pipeline.db_path, f"SELECT * FROM board.{t} ORDER BY ALL")
            for t in BOARD_TABLES
        }
        real_sql = publish.sql

        def stale_list_that_loses_its_rows(name, folder=publish.SQL_DIR):
            text = real_sql(name, folder)
            return text.replace(
                "IN ('OVERDUE', 'DELINQUENT')", "IN ('OVERDUE', 'DELINQUENT') AND false"
            )

        monkeypatch.setattr(publish, "sql", stale_list_that_loses_its_rows)
        [result] = pipeline.run(instance, today, "ct")
    assert not result.success
    assert result.reason.startswith(
        f"ct {today}: the board tables do not add up, nothing was written: "
        "board.stale_datasets has 0 rows but FR-2's OVERDUE + DELINQUENT datasets are"
    )
    assert before["stale_datasets"]
    after = {
        t: query(pipeline.db_path, f"SELECT * FROM board.{t} ORDER BY ALL") for t in BOARD_TABLES
    }
    assert after == before


def test_unmapped_update_frequencies_are_logged_with_their_counts(tmp_path, instance, today):
    records = socrata_catalog(27, datasets_only=True)
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        [result] = pipeline.run(instance, today, "ct")
    warnings = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.level == 30 and "FR-0" in (entry.user_message or "")
    ]
    assert len(warnings) == 1
    # Chicago's and NY State's wordings in the real records that name no schedule
    frequency_values = [
        m["value"]
        for r in records
        for m in r["classification"]["domain_metadata"]
        if m["key"] == "Details_Update-Frequency"
    ]
    assert "'Twice weekly' x 1" in warnings[0]
    assert "Twice weekly" in frequency_values
    unmapped = json.loads(
        json.dumps(
            instance.get_latest_materialization_event(dg.AssetKey("catalog_snapshot"))
            .asset_materialization.metadata["unmapped_update_frequencies"]
            .value
        )
    )
    assert unmapped == {"Twice weekly": 1}
