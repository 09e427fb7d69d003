"""Every asset check judges the stored night it names, and can fail on it: real Dagster runs
against the history's DuckDB file, whose stored rows are corrupted between runs the way a hand
edit, an import or an older version of the pipeline would leave them. The blocking checks stop
what is downstream of them."""

from datetime import date
from typing import Any

import dagster as dg
import duckdb
import pytest

from ctdata_pipeline.jobs import RECOMPUTE_JOB
from ctdata_pipeline.metrics import compute
from ctdata_pipeline.partitions import night_key
from ctdata_pipeline.runs import failure_reason
from ctdata_pipeline_tests.support import (
    GOOD_ASSETS,
    History,
    Pipeline,
    database_contents,
    portal_entry,
    serve,
    socrata_catalog,
)

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
IDS_UNIQUE = ("catalog_snapshot", "asset_ids_unique")
IN_SCOPE_BAND = ("catalog_snapshot", "in_scope_within_band")
ONE_ROW = ("dataset_assessments", "one_row_per_dataset")
VALUES = ("plan_metrics", "values_in_range")
MOVES = ("plan_metrics", "night_to_night_moves")
BLOCKING = {IDS_UNIQUE, ONE_ROW, VALUES}
JUDGE_JOB = "judge_stored_night"
JUDGED_METRIC_ASSETS = ("dataset_assessments", "plan_metrics")
CT_NIGHT = "snapshot_date = $night AND portal = 'ct'"
WHOLE_PORTAL = f"{CT_NIGHT} AND agency IS NULL"
FIRST_DATASET = (
    f"(SELECT min(asset_id) FROM metrics.datasets WHERE {CT_NIGHT})"  # an in-scope dataset
)

# (check that must fail, its severity, what its description must say, the corruption)
CORRUPTIONS = {
    "duplicated asset id": (
        IDS_UNIQUE,
        ERROR,
        "1 asset ids stored more than once: ",
        f"""INSERT INTO catalog.snapshot_assets
            SELECT * FROM catalog.snapshot_assets WHERE {CT_NIGHT} ORDER BY asset_id LIMIT 1""",
    ),
    "in-scope count far from the night before": (
        IN_SCOPE_BAND,
        WARN,
        "56 in-scope datasets against 41 on ",
        # the night before imported with 15 fewer in-scope datasets than last night's 56
        f"""INSERT INTO catalog.snapshots
            SELECT * REPLACE (snapshot_date - 1 AS snapshot_date) FROM catalog.snapshots
            WHERE {CT_NIGHT};
        INSERT INTO catalog.snapshot_assets
            SELECT * REPLACE (snapshot_date - 1 AS snapshot_date) FROM catalog.snapshot_assets
            WHERE {CT_NIGHT} AND asset_id NOT IN (
                SELECT asset_id FROM catalog.assets WHERE {CT_NIGHT} AND in_scope
                ORDER BY asset_id LIMIT 15)""",
    ),
    "dataset assessed twice": (
        ONE_ROW,
        ERROR,
        "1 datasets wrongly assessed: ",
        f"""INSERT INTO metrics.datasets
            SELECT * FROM metrics.datasets WHERE {CT_NIGHT} AND asset_id = {FIRST_DATASET}""",
    ),
    "dataset not assessed": (
        ONE_ROW,
        ERROR,
        " not assessed",
        f"DELETE FROM metrics.datasets WHERE {CT_NIGHT} AND asset_id = {FIRST_DATASET}",
    ),
    "assessment of no in-scope dataset": (
        ONE_ROW,
        ERROR,
        "zzzz-zzzz assessed but no in-scope dataset of the snapshot",
        f"""UPDATE metrics.datasets SET asset_id = 'zzzz-zzzz'
            WHERE {CT_NIGHT} AND asset_id = {FIRST_DATASET}""",
    ),
    "percentage above 100": (
        VALUES,
        ERROR,
        "pct_missing_metadata (whole portal): percentage 150.0 outside 0-100",
        f"""UPDATE board.plan_metrics SET value = 150
            WHERE {WHOLE_PORTAL} AND metric = 'pct_missing_metadata'""",
    ),
    "numerator above denominator": (
        VALUES,
        ERROR,
        "pct_stale (whole portal): numerator ",
        f"""UPDATE board.plan_metrics SET numerator = denominator + 1
            WHERE {WHOLE_PORTAL} AND metric = 'pct_stale'""",
    ),
    "negative count": (
        VALUES,
        ERROR,
        "datasets_in_scope (whole portal): negative count",
        f"""UPDATE board.plan_metrics SET numerator = -1
            WHERE {WHOLE_PORTAL} AND metric = 'datasets_in_scope'""",
    ),
    "metric stored twice": (
        VALUES,
        ERROR,
        "pct_stale (whole portal): 2 rows for one metric and agency",
        f"""INSERT INTO board.plan_metrics
            SELECT * FROM board.plan_metrics WHERE {WHOLE_PORTAL} AND metric = 'pct_stale'""",
    ),
    "metric missing": (
        VALUES,
        ERROR,
        "MD-1 (whole portal): no whole-portal value stored",
        f"DELETE FROM board.plan_metrics WHERE {WHOLE_PORTAL} AND metric_id = 'MD-1'",
    ),
    "no value and no reason": (
        VALUES,
        ERROR,
        "pct_stale (whole portal): no value and no reason",
        f"""UPDATE board.plan_metrics SET value = NULL, note = NULL
            WHERE {WHOLE_PORTAL} AND metric = 'pct_stale'""",
    ),
    "percentage far from the night before": (
        MOVES,
        WARN,
        "pct_missing_metadata (whole portal) moved from ",
        f"""INSERT INTO board.plan_metrics
            SELECT * REPLACE (snapshot_date - 1 AS snapshot_date,
                CASE WHEN value > 50 THEN value - 40 ELSE value + 40 END AS value)
            FROM board.plan_metrics WHERE {WHOLE_PORTAL} AND metric = 'pct_missing_metadata'""",
    ),
}


def history_pipeline(history: History) -> Pipeline:
    """The history's folder and portal file ("ct" and "hub"); judging a stored night never
    reaches a portal, so the portals' addresses lead nowhere."""
    socrata = portal_entry("ct", _Nowhere("socrata"), as_of=True)
    hub = portal_entry("hub", _Nowhere("dcat"), as_of=True)
    return Pipeline(history.folder, [socrata, hub])


class _Nowhere:
    url = "http://127.0.0.1:9/"

    def __init__(self, kind: str) -> None:
        self.kind = kind


def judge(
    pipeline: Pipeline, instance: dg.DagsterInstance, night: date, portal: str
) -> tuple[dg.ExecuteInProcessResult, dict[tuple[str, str], Any]]:
    """Run every asset check, and nothing else, on a stored night, as the UI's "Execute" on a
    check's partition does: a run tagged with the partition it judges."""
    # The per-portal checks (whole_night's own check is part of its step, a night's alone).
    checks = dg.AssetSelection.checks_for_assets("catalog_snapshot", *JUDGED_METRIC_ASSETS)
    job = dg.define_asset_job(JUDGE_JOB, selection=checks)
    defs = dg.Definitions.merge(pipeline.defs, dg.Definitions(jobs=[job]))
    result = defs.resolve_job_def(JUDGE_JOB).execute_in_process(
        instance=instance,
        tags={"dagster/partition": night_key(night, portal)},
        raise_on_error=False,
    )
    return result, evaluations(result)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], Any]:
    return {
        (check.asset_key.to_user_string(), check.check_name): check
        for check in result.get_asset_check_evaluations()
    }


def corrupt(history: History, statements: str) -> None:
    conn = duckdb.connect(str(history.db_path))
    try:
        for statement in statements.split(";"):
            conn.execute(statement, {"night": history.last_night})
    finally:
        conn.close()


def test_a_good_stored_night_passes_every_check_and_each_result_names_its_night(history, instance):
    pipeline = history_pipeline(history)
    for portal in ("ct", "hub"):
        result, checks = judge(pipeline, instance, history.last_night, portal)
        assert result.success
        assert set(checks) == {IDS_UNIQUE, IN_SCOPE_BAND, ONE_ROW, VALUES, MOVES}
        for key, check in checks.items():
            assert check.passed, (key, check.description)
            assert check.partition == f"{history.last_night}|{portal}"
            assert check.description.startswith(f"{portal} {history.last_night}: ")
            assert check.metadata["night"].value == history.last_night.isoformat()
            assert check.metadata["portal"].value == portal
            assert check.blocking == (key in BLOCKING)
    history.assert_nothing_lost()  # judging writes nothing


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_each_check_fails_on_stored_rows_that_break_it(history, instance, corruption):
    failing, severity, said, statements = CORRUPTIONS[corruption]
    corrupt(history, statements)
    result, checks = judge(history_pipeline(history), instance, history.last_night, "ct")

    assert {key for key, check in checks.items() if not check.passed} == {failing}
    check = checks[failing]
    assert check.severity == severity
    assert check.description.startswith(f"ct {history.last_night}: ")
    assert said in check.description, check.description
    assert check.metadata["night"].value == history.last_night.isoformat()
    assert check.metadata["portal"].value == "ct"
    # what the UI shows: the check's execution, recorded for the night and portal it judged
    [execution] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(failing[0]), failing[1]), limit=1
    )
    assert execution.partition == f"{history.last_night}|ct"
    assert execution.status.value == "FAILED"
    # a failing blocking check fails its run; a warning does not
    assert result.success == (failing not in BLOCKING)
    # the other portal's night is judged on its own rows
    hub_result, hub_checks = judge(history_pipeline(history), instance, history.last_night, "hub")
    assert hub_result.success and all(c.passed for c in hub_checks.values())


def test_a_snapshot_with_a_duplicated_id_stops_the_recompute_before_its_metrics(history, instance):
    failing, _, _, statements = CORRUPTIONS["duplicated asset id"]
    corrupt(history, statements)
    pipeline = history_pipeline(history)
    result = pipeline.defs.resolve_job_def(RECOMPUTE_JOB).execute_in_process(
        partition_key=night_key(history.last_night, "ct"), instance=instance, raise_on_error=False
    )

    assert not result.success
    assert not evaluations(result)[failing].passed
    assert result.get_asset_materialization_events() == []  # no metrics, no board tables
    [line] = [failure_reason(result.all_events)]
    assert line.startswith(f"asset_ids_unique failed for ct {history.last_night}: 1 asset ids ")
    now = history_contents(history)
    for table in ("metrics.datasets", "board.plan_metrics", "board.missing_metadata"):
        assert now[table] == history.tables[table], table


def history_contents(history: History) -> dict[str, list[tuple]]:
    contents = database_contents(history.db_path)
    assert contents is not None
    return contents


@pytest.mark.parametrize(
    ("failing", "written_wrong"),
    [
        (
            VALUES,
            "UPDATE board.plan_metrics SET value = 150 "
            "WHERE snapshot_date = ? AND portal = 'ct' AND metric = 'pct_missing_metadata'",
        ),
        (
            ONE_ROW,
            "INSERT INTO metrics.datasets "
            "SELECT * FROM metrics.datasets WHERE snapshot_date = ? AND portal = 'ct' LIMIT 1",
        ),
    ],
)
def test_a_night_written_wrong_by_an_older_version_stops_before_the_board_tables(
    history, instance, today, monkeypatch, failing, written_wrong
):
    store_night = compute._store_night

    def store_like_an_older_version(conn: duckdb.DuckDBPyConnection, *night: Any) -> None:
        store_night(conn, *night)
        conn.execute(written_wrong, [today])  # and nothing refused it

    monkeypatch.setattr(compute, "_store_night", store_like_an_older_version)
    with serve("socrata", socrata_catalog(GOOD_ASSETS)) as socrata:
        pipeline = Pipeline(history.folder, [portal_entry("ct", socrata, as_of=True)])
        [tonight] = pipeline.run(instance, today, "ct")

    assert not tonight.success
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in (
            event.dagster_event.event_specific_data
            for event in instance.all_logs(
                tonight.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
        )
    }
    assert not checks[failing].passed and checks[failing].partition == f"{today}|ct"
    materialized = {
        event.dagster_event.event_specific_data.materialization.asset_key.to_user_string()
        for event in instance.all_logs(
            tonight.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
    }
    assert materialized == {
        "harvested_catalog",
        "catalog_snapshot",
        "dataset_assessments",
        "plan_metrics",
    }
    assert f"{failing[1]}" in tonight.reason
    now = history_contents(history)
    assert not [row for row in now["board.missing_metadata"] if row[0] == today]
