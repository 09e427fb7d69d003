"""The night dimension begins where history begins: at the portal file's `first_night`, for the
live location and the demo's, and every night the demo tells is a partition it has filled."""

from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from ctdata_pipeline.code_location import live_definitions
from ctdata_pipeline.demo.definitions import demo_definitions
from ctdata_pipeline.demo.portals import DEMO_MAX_NIGHTS
from ctdata_pipeline.demo.resources import DemoPortalClient
from ctdata_pipeline.jobs import NIGHTLY_JOB
from ctdata_pipeline.partitions import DATE
from ctdata_pipeline.portals import DEFAULT_FIRST_NIGHT, DEFAULT_PORTALS_FILE
from ctdata_pipeline.settings import Settings
from ctdata_pipeline_tests.support import run_ctdata

PORTALS = """
portals:
  - {name: a.example, kind: dcat, url: "https://a.example/data.json"}
  - {name: b.example, kind: dcat, url: "https://b.example/data.json"}
  - {name: c.example, kind: dcat, url: "https://c.example/data.json"}
"""


def definitions_for(tmp_path: Path, monkeypatch, text: str) -> dg.Definitions:
    (tmp_path / "portals.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("CTDATA_PORTALS", str(tmp_path / "portals.yaml"))
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "data" / "ctdata.duckdb"))
    return live_definitions(Settings.from_env())


def nights_from(first: date, today: date) -> int:
    return (today - first).days + 1  # tonight included


@pytest.mark.parametrize(
    ("first_line", "first_night"),
    [
        ("", DEFAULT_FIRST_NIGHT),
        ("first_night: 2026-01-15\n", date(2026, 1, 15)),
        ("first_night: '2024-02-29'\n", date(2024, 2, 29)),
    ],
)
def test_the_nights_begin_at_the_portal_files_first_night(
    tmp_path, monkeypatch, today, first_line, first_night
):
    defs = definitions_for(tmp_path, monkeypatch, first_line + PORTALS)
    nights = nights_from(first_night, today)
    for name in ("harvested_catalog", "catalog_snapshot", "plan_metrics", "catalog_changes"):
        partitions = defs.resolve_assets_def(name).partitions_def
        keys = partitions.get_partition_keys()
        assert len(keys) == nights * 3, name
        assert keys[0] == f"{first_night}|a.example"
        assert keys[-1] == f"{today}|c.example"
    for name in ("board_report", "board_readers_copy", "warehouse_backup"):
        keys = defs.resolve_assets_def(name).partitions_def.get_partition_keys()
        assert (keys[0], keys[-1], len(keys)) == (str(first_night), str(today), nights)
    job = defs.resolve_job_def(NIGHTLY_JOB)
    assert job.partitions_def.get_partitions_def_for_dimension(DATE).start.date() == first_night


def test_the_shipped_file_begins_with_the_plan_period(monkeypatch, today):
    monkeypatch.setenv("CTDATA_PORTALS", str(DEFAULT_PORTALS_FILE))
    defs = live_definitions(Settings.from_env())
    keys = defs.resolve_assets_def("board_report").partitions_def.get_partition_keys()
    assert keys[0] == "2025-01-01" == DEFAULT_FIRST_NIGHT.isoformat()
    assert len(keys) == nights_from(date(2025, 1, 1), today)
    assert "first_night: 2025-01-01" in DEFAULT_PORTALS_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize("nights", [1, 7, DEMO_MAX_NIGHTS])
def test_every_demo_night_is_a_partition(tmp_path, monkeypatch, today, nights):
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "ctdata.duckdb"))
    client = DemoPortalClient(last_night=today.isoformat(), nights=nights)
    defs = demo_definitions(Settings.from_env(), client)
    keys = defs.resolve_assets_def("board_report").partitions_def.get_partition_keys()
    story = [night.isoformat() for night in client.story().night_dates()]
    assert set(story) <= set(keys)
    # The same partitions whatever --nights was (`dagster dev` after the demo does not know).
    assert (keys[0], keys[-1]) == (str(today - timedelta(days=DEMO_MAX_NIGHTS - 1)), str(today))
    assert len(keys) == DEMO_MAX_NIGHTS


def test_after_the_demo_its_nights_are_filled_partitions_in_the_instance(tmp_path, monkeypatch):
    completed = run_ctdata(tmp_path, "demo", "--nights", "2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "data" / "ctdata.duckdb"))
    monkeypatch.setenv("CTDATA_DEPLOYMENT", "demo")
    from ctdata_pipeline.code_location import definitions_from_env

    graph = definitions_from_env().resolve_asset_graph()
    harvest = graph.get(dg.AssetKey("harvested_catalog"))
    keys = harvest.partitions_def.get_partition_keys()
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        statuses = instance.get_status_by_partition(harvest.key, keys, harvest.partitions_def)
    counts = Counter(status.value if status else "MISSING" for status in statuses.values())
    assert counts == {"MATERIALIZED": 4, "MISSING": DEMO_MAX_NIGHTS * 2 - 4}
    last_night = keys[-1].split("|")[0]
    filled = sorted(key for key, status in statuses.items() if status is not None)
    previous = (date.fromisoformat(last_night) - timedelta(days=1)).isoformat()
    assert [key.split("|")[0] for key in filled] == [previous, previous, last_night, last_night]
