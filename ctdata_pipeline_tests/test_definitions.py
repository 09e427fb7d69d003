"""The code location: it loads (also through the dagster CLI, as `dagster dev` would), every asset
says what it means, and the schedule asks for the right night at 02:00 New York time, DST or not."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator  # to list the schedule's real ticks
from markdown_it import MarkdownIt

from ctdata_pipeline.code_location import definitions_from_env
from ctdata_pipeline.jobs import NIGHTLY_JOB, NIGHTLY_SCHEDULE
from ctdata_pipeline.partitions import DATE, PORTAL
from ctdata_pipeline_tests.support import ASSET_GROUPS, REPO_ROOT

NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def defs() -> dg.Definitions:
    return definitions_from_env()


def test_the_live_and_demo_locations_load(defs, monkeypatch):
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def(NIGHTLY_JOB)
    recompute = defs.resolve_job_def("recompute_job")
    assert {key.to_user_string() for key in recompute.asset_layer.executable_asset_keys} == {
        "dataset_assessments",
        "plan_metrics",
        "missing_metadata",
        "stale_datasets",
        "agency_scorecard",
        "catalog_changes",
    }
    monkeypatch.setenv("CTDATA_DEPLOYMENT", "demo")
    demo = definitions_from_env()
    dg.Definitions.validate_loadable(demo)
    portal_dimension = demo.resolve_job_def(
        NIGHTLY_JOB
    ).partitions_def.get_partitions_def_for_dimension(PORTAL)
    assert portal_dimension.get_partition_keys() == ["demo.data.ct.gov", "demo.geodata.ct.gov"]


def test_every_asset_says_what_it_means_and_who_owns_it(defs):
    specs = {spec.key.to_user_string(): spec for spec in defs.resolve_all_asset_specs()}
    groups = {key: spec.group_name for key, spec in specs.items()}
    assert groups == ASSET_GROUPS
    for spec in specs.values():
        assert len(spec.description) > 100
        assert spec.owners == ["team:opm-dapa"]
        assert spec.tags["layer"] == spec.group_name  # set once, at the root
        assert spec.kinds
    assert {"socrata", "dcat"} <= specs["harvested_catalog"].kinds
    assert "duckdb" in specs["catalog_snapshot"].kinds
    harvest = defs.resolve_assets_def("harvested_catalog")
    assert harvest.op.retry_policy.max_retries == 2
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in defs.resolve_asset_graph().asset_check_keys
    }
    assert checks == {
        ("catalog_snapshot", "asset_ids_unique"),
        ("catalog_snapshot", "in_scope_within_band"),
        ("dataset_assessments", "one_row_per_dataset"),
        ("plan_metrics", "values_in_range"),
        ("plan_metrics", "night_to_night_moves"),
        ("whole_night", "every_portal_stored"),
    }
    for spec in defs.resolve_assets_def("missing_metadata").specs:
        schema = spec.metadata["dagster/column_schema"]
        assert all(column.description for column in schema.columns)
        assert spec.metadata["dagster/table_name"] == f"board.{spec.key.to_user_string()}"


def test_every_description_reads_whole_as_markdown(defs):
    """The UI renders descriptions as markdown: a bare `<night>` would be an HTML tag it
    drops, so angle brackets belong in code spans."""
    graph = defs.resolve_asset_graph()
    repository = defs.get_repository_def()
    descriptions = {
        **{key.to_user_string(): graph.get(key).description for key in graph.get_all_asset_keys()},
        **{
            key.to_user_string(): graph.get_check_spec(key).description
            for key in graph.asset_check_keys
        },
        **{job.name: job.description for job in repository.get_all_jobs()},
        **{schedule.name: schedule.description for schedule in repository.schedule_defs},
        **{sensor.name: sensor.description for sensor in repository.sensor_defs},
    }
    assert "board_report" in descriptions and "nightly_job" in descriptions
    commonmark = MarkdownIt("commonmark")
    for name, description in descriptions.items():
        tokens = commonmark.parse(description or "")
        html = [
            token.content
            for block in tokens
            for token in [block, *(block.children or [])]
            if token.type in ("html_inline", "html_block")
        ]
        assert html == [], f"{name}: {html}"
    assert "`CTDATA_REPORT_DIR/<night>/`" in descriptions["board_report"]


def test_partitions_are_new_york_nights_by_portal(defs):
    partitions = defs.resolve_job_def(NIGHTLY_JOB).partitions_def
    nights = partitions.get_partitions_def_for_dimension(DATE)
    assert nights.timezone == "America/New_York"
    portals = partitions.get_partitions_def_for_dimension(PORTAL)
    assert portals.get_partition_keys() == ["data.ct.gov", "geodata.ct.gov"]
    today = datetime.now(NEW_YORK).date().isoformat()
    assert nights.get_last_partition_key() == today  # tonight is a partition already


def test_the_report_follows_the_nightly_runs(defs):
    report = defs.resolve_assets_def("board_report")
    assert report.partitions_def == defs.resolve_job_def(
        NIGHTLY_JOB
    ).partitions_def.get_partitions_def_for_dimension(DATE)
    upstream = {key.to_user_string() for key in report.dependency_keys}
    assert upstream == {
        "plan_metrics",
        "missing_metadata",
        "stale_datasets",
        "agency_scorecard",
        "catalog_changes",
        # and again after the night's probes (probe_job)
        "probe_plan_metrics",
        "broken_links",
        "silently_stale",
    }
    sensor = defs.resolve_sensor_def("report_automation")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_job_def("report_job")


def test_the_backup_runs_after_the_report_in_the_report_job_and_the_sensor(defs):
    backup = defs.resolve_assets_def("warehouse_backup")
    report = defs.resolve_assets_def("board_report")
    assert backup.partitions_def == report.partitions_def
    assert {key.to_user_string() for key in backup.dependency_keys} == {"board_report"}
    [spec] = backup.specs
    assert spec.group_name == "backup" and spec.automation_condition is not None
    assert backup.op.pool == "duckdb"
    after_night = {"board_report", "board_readers_copy", "warehouse_backup"}
    job = defs.resolve_job_def("report_job")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == after_night
    sensor = defs.resolve_sensor_def("report_automation")
    selected = sensor.asset_selection.resolve(defs.resolve_asset_graph())
    assert {key.to_user_string() for key in selected} == after_night


def test_the_schedule_runs_at_two_new_york_time_by_default(defs):
    schedule = defs.resolve_schedule_def(NIGHTLY_SCHEDULE)
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING


def test_ctdata_nightly_at_moves_the_schedule(monkeypatch):
    monkeypatch.setenv("CTDATA_NIGHTLY_AT", "23:45")
    schedule = definitions_from_env().resolve_schedule_def(NIGHTLY_SCHEDULE)
    assert schedule.cron_schedule == "45 23 * * *"
    assert schedule.execution_timezone == "America/New_York"
    tick = datetime(2026, 11, 30, 23, 45, tzinfo=NEW_YORK)
    requests = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=tick))
    assert {request.partition_key for request in requests.run_requests} == {
        "2026-11-30|data.ct.gov",
        "2026-11-30|geodata.ct.gov",
    }


@pytest.mark.parametrize(
    ("night", "utc_hour"),
    [
        (date(2026, 3, 7), 7),  # EST
        (date(2026, 3, 8), 7),  # spring forward: 02:00 does not exist, the tick is 03:00 EDT
        (date(2026, 3, 9), 6),  # EDT
        (date(2026, 10, 31), 6),  # EDT
        (date(2026, 11, 1), 7),  # fall back: 02:00 comes once, in EST
        (date(2026, 11, 2), 7),  # EST
    ],
)
def test_each_tick_asks_for_that_nights_partition_across_dst(defs, night, utc_hour):
    schedule = defs.resolve_schedule_def(NIGHTLY_SCHEDULE)
    midnight = datetime.combine(night, datetime.min.time(), tzinfo=NEW_YORK)
    ticks = cron_string_iterator(midnight.timestamp(), schedule.cron_schedule, "America/New_York")
    tick = next(ticks)
    local = tick.astimezone(NEW_YORK)
    assert local.date() == night
    assert (local.hour, local.minute) == ((3, 0) if night == date(2026, 3, 8) else (2, 0))
    assert tick.astimezone(UTC).hour == utc_hour

    context = dg.build_schedule_context(scheduled_execution_time=tick)
    requests = schedule.evaluate_tick(context).run_requests
    assert sorted(request.partition_key for request in requests) == [
        f"{night.isoformat()}|data.ct.gov",
        f"{night.isoformat()}|geodata.ct.gov",
    ]


def test_the_dagster_cli_loads_the_location_from_the_repository_root(tmp_path):
    environment = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    environment.pop("CTDATA_DEPLOYMENT", None)
    completed = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "ctdata_pipeline" in completed.stdout + completed.stderr
