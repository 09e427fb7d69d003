"""`ctdata import`: real archived catalogs (FCC's two data.json snapshots) become past nights with
their metrics; malformed or mismatched files are refused and change nothing."""

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ctdata_pipeline.cli import main
from ctdata_pipeline.code_location import live_definitions
from ctdata_pipeline.partitions import night_instant, today_in_new_york
from ctdata_pipeline.portals import DEFAULT_PORTALS_FILE
from ctdata_pipeline.settings import Settings
from ctdata_pipeline_tests.support import database_contents, query, realdata, socrata_catalog

FCC = "dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-{}.json"
NYC_PAGE = "socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json"
PORTALS = """
portals:
  - name: opendata.fcc.gov
    kind: dcat
    url: https://opendata.fcc.gov/data.json
  - name: ct
    kind: socrata
    url: https://data.ct.gov
    custom_fields: {agency: Agency_Agency, update_frequency: Details_Update-Frequency}
"""


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    (tmp_path / "portals.yaml").write_text(PORTALS)
    monkeypatch.setenv("CTDATA_PORTALS", str(tmp_path / "portals.yaml"))
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "data" / "ctdata.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_import_round_trip_through_the_console_script(workspace):
    ctdata = Path(sys.executable).with_name("ctdata")
    environment = {**os.environ}
    for night in ("01-31", "02-04"):
        completed = subprocess.run(
            [
                str(ctdata),
                "import",
                "--portal",
                "opendata.fcc.gov",
                "--date",
                f"2025-{night}",
                str(realdata(FCC.format(night))),
            ],
            cwd=workspace,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        assert (
            f"opendata.fcc.gov 2025-{night}: imported 59 assets (59 in scope)" in completed.stdout
        )
    db = workspace / "data" / "ctdata.duckdb"
    assert query(
        db,
        "SELECT snapshot_date, origin, assets_total, snapshot_time FROM catalog.snapshots "
        "ORDER BY 1",
    ) == [
        (date(2025, 1, 31), "import", 59, night_instant(date(2025, 1, 31))),
        (date(2025, 2, 4), "import", 59, night_instant(date(2025, 2, 4))),
    ]
    inv2 = query(
        db,
        "SELECT snapshot_date, metric, value FROM board.plan_metrics WHERE metric_id = 'INV-2' "
        "AND agency IS NULL ORDER BY 1, 2",
    )
    assert inv2 == [
        (date(2025, 1, 31), "datasets_added", None),
        (date(2025, 1, 31), "datasets_rekeyed", None),
        (date(2025, 1, 31), "datasets_removed", None),
        (date(2025, 1, 31), "datasets_renamed", None),
        (date(2025, 2, 4), "datasets_added", 0.0),
        (date(2025, 2, 4), "datasets_rekeyed", 0.0),
        (date(2025, 2, 4), "datasets_removed", 0.0),
        (date(2025, 2, 4), "datasets_renamed", 0.0),
    ]
    assert query(db, "SELECT DISTINCT snapshot_date FROM board.missing_metadata ORDER BY 1") == [
        (date(2025, 1, 31),),
        (date(2025, 2, 4),),
    ]
    with dg.DagsterInstance.from_config(str(workspace / "home")) as instance:
        runs = instance.get_runs()
        imported = instance.fetch_materializations(
            dg.AssetKey("catalog_snapshot"), limit=10
        ).records
        taken = instance.fetch_materializations(dg.AssetKey("harvested_catalog"), limit=10)
    assert len(runs) == 2 and all(run.is_success for run in runs)
    assert {run.job_name for run in runs} == {"recompute_job"}
    assert sorted(r.partition_key for r in imported) == [
        "2025-01-31|opendata.fcc.gov",
        "2025-02-04|opendata.fcc.gov",
    ]
    # No run can harvest a past night of a live portal: the archive fills that partition.
    assert sorted(r.partition_key for r in taken.records) == [
        "2025-01-31|opendata.fcc.gov",
        "2025-02-04|opendata.fcc.gov",
    ]
    for record in taken.records:
        materialization = record.asset_materialization
        assert materialization.metadata["origin"].value == "import"
        assert materialization.metadata["dagster/row_count"].value == 59
        assert materialization.description.startswith("Not harvested: taken from the archived")


def test_importing_a_night_between_two_recomputes_the_next_one(workspace):
    runner = CliRunner()
    for night in ("02-04", "01-31"):  # the earlier archive arrives second
        result = runner.invoke(
            main,
            [
                "import",
                "--portal",
                "opendata.fcc.gov",
                "--date",
                f"2025-{night}",
                str(realdata(FCC.format(night))),
            ],
        )
        assert result.exit_code == 0, result.output
    assert "2025-02-04 opendata.fcc.gov: metrics and board tables ok" in result.output
    db = workspace / "data" / "ctdata.duckdb"
    # 2025-02-04 now has a previous snapshot: its INV-2 is counted, no longer "first snapshot"
    assert query(
        db,
        "SELECT value, note FROM board.plan_metrics WHERE snapshot_date = '2025-02-04' "
        "AND metric = 'datasets_added' AND agency IS NULL",
    ) == [(0.0, None)]


def test_re_importing_a_night_replaces_it(workspace):
    runner = CliRunner()
    arguments = [
        "import",
        "--portal",
        "opendata.fcc.gov",
        "--date",
        "2025-01-31",
        str(realdata(FCC.format("01-31"))),
    ]
    assert runner.invoke(main, arguments).exit_code == 0
    db = workspace / "data" / "ctdata.duckdb"
    first = database_contents(db)
    assert runner.invoke(main, arguments).exit_code == 0
    assert database_contents(db) == first


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


@pytest.mark.parametrize(
    ("portal", "night", "make_file", "message"),
    [
        (
            "opendata.fcc.gov",
            "2025-01-31",
            lambda d: write(d, "cut.json", '{"dataset": [{'),
            "cut.json: not valid JSON",
        ),
        (
            "opendata.fcc.gov",
            "2025-01-31",
            lambda d: realdata(NYC_PAGE),
            "not a DCAT-US catalog with a 'dataset' list (it looks like a Socrata Discovery API "
            "response)",
        ),
        (
            "ct",
            "2025-04-27",
            lambda d: realdata(FCC.format("01-31")),
            "not a Discovery API response (an object with a 'results' list, or a list of them) "
            "(it looks like a data.json feed); ct is a socrata portal",
        ),
        (
            "ct",
            "2025-04-27",
            lambda d: realdata(NYC_PAGE),
            "holds assets of data.cityofnewyork.us (7), not of ct's domain(s) data.ct.gov",
        ),
        (
            "ct",
            "2025-04-27",
            lambda d: write(d, "partial.json", {"results": socrata_catalog(5), "resultSetSize": 9}),
            "partial.json: holds 5 of the 9 assets its resultSetSize declares; an incomplete "
            "catalog cannot stand for the night",
        ),
        (
            "ct",
            "2024-12-31",
            lambda d: write(d, "x.json", {"results": [], "resultSetSize": 0}),
            "2024-12-31 is before the first night (2025-01-01); to import it, set first_night",
        ),
        (
            "ct",
            str(today_in_new_york() + timedelta(days=1)),
            lambda d: write(d, "x.json", {"results": [], "resultSetSize": 0}),
            "is in the future",
        ),
        ("opendata.fcc.gov", "2025-01-31", lambda d: d / "missing.json", "cannot be read"),
    ],
)
def test_a_malformed_or_mismatched_file_changes_nothing(
    workspace, portal, night, make_file, message
):
    runner = CliRunner()
    good = [
        "import",
        "--portal",
        "opendata.fcc.gov",
        "--date",
        "2025-02-04",
        str(realdata(FCC.format("02-04"))),
    ]
    assert runner.invoke(main, good).exit_code == 0
    db = workspace / "data" / "ctdata.duckdb"
    before = database_contents(db)
    result = runner.invoke(
        main, ["import", "--portal", portal, "--date", night, str(make_file(workspace))]
    )
    assert result.exit_code == 1
    assert message in result.output
    assert result.output.strip().count("\n") == 0  # one line
    assert database_contents(db) == before


def test_an_import_never_replaces_a_harvested_night(workspace):
    from ctdata_pipeline.catalog.schema import ensure_schema
    from ctdata_pipeline.catalog.stage import stage_records
    from ctdata_pipeline.catalog.write import write_snapshot
    from ctdata_pipeline.harvest.staging import HarvestSummary
    from ctdata_pipeline.portals import load_portal_file
    from ctdata_pipeline.warehouse import connect

    portal = load_portal_file(workspace / "portals.yaml").get("opendata.fcc.gov")
    conn = connect(workspace / "data" / "ctdata.duckdb")
    ensure_schema(conn)
    feed = json.loads(realdata(FCC.format("01-31")).read_text())["dataset"]
    report = stage_records(conn, portal, ((str(i), d) for i, d in enumerate(feed)))
    summary = HarvestSummary(
        portal=portal.name,
        kind="dcat",
        snapshot_date=date(2025, 1, 31),
        snapshot_time=night_instant(date(2025, 1, 31)),
        source_url="x",
        assets=59,
        result_set_size=None,
        pages=1,
        paging="feed",
        duplicates_dropped=0,
        seconds=1.0,
    )
    write_snapshot(conn, portal, summary, report, origin="harvest", min_ratio=None)
    conn.close()
    result = CliRunner().invoke(
        main,
        [
            "import",
            "--portal",
            "opendata.fcc.gov",
            "--date",
            "2025-01-31",
            str(realdata(FCC.format("01-31"))),
        ],
    )
    assert result.exit_code == 1
    assert "already has a harvested snapshot for 2025-01-31" in result.output


def test_an_unknown_portal_or_a_bad_date_is_a_usage_error(workspace):
    runner = CliRunner()
    unknown = runner.invoke(main, ["import", "--portal", "nope", "--date", "2025-01-31", "x.json"])
    assert unknown.exit_code == 2 and "no portal named 'nope'" in unknown.output
    bad_date = runner.invoke(main, ["import", "--portal", "ct", "--date", "31/01/2025", "x.json"])
    assert bad_date.exit_code == 2 and "--date '31/01/2025' is not a date" in bad_date.output


def harvest_statuses(workspace: Path) -> Counter[str]:
    """The harvest's partitions by status, as the UI counts them, for the portal file's nights."""
    defs = live_definitions(Settings.from_env())
    harvest = defs.resolve_asset_graph().get(dg.AssetKey("harvested_catalog"))
    keys = harvest.partitions_def.get_partition_keys()
    with dg.DagsterInstance.from_config(str(workspace / "home")) as instance:
        statuses = instance.get_status_by_partition(harvest.key, keys, harvest.partitions_def)
    return Counter(
        f"{key.split('|')[0]} {status.value}" if status else "MISSING"
        for key, status in statuses.items()
    )


def test_a_night_before_the_first_night_says_how_to_move_it(workspace, today):
    portal_file = workspace / "portals.yaml"
    archive = str(realdata(FCC.format("01-31")))
    runner = CliRunner()
    command = ["import", "--portal", "opendata.fcc.gov", "--date", "2024-06-01", archive]
    refused = runner.invoke(main, command)
    assert refused.exit_code == 1
    assert refused.output == (
        "ctdata import: 2024-06-01 is before the first night (2025-01-01); to import it, set "
        f"first_night: 2024-06-01 (or earlier) in {portal_file}\n"
    )
    assert not (workspace / "data" / "ctdata.duckdb").exists()

    # Done as it says, the night is a partition, imported, and its harvest partition filled.
    portal_file.write_text(f"first_night: 2024-06-01\n{PORTALS}", encoding="utf-8")
    imported = runner.invoke(main, command)
    assert imported.exit_code == 0, imported.output
    assert "opendata.fcc.gov 2024-06-01: imported 59 assets" in imported.output
    nights = (today - date(2024, 6, 1)).days + 1
    assert harvest_statuses(workspace) == {
        "2024-06-01 MATERIALIZED": 1,  # opendata.fcc.gov; ct's first night is still missing
        "MISSING": nights * 2 - 1,
    }


def test_the_shipped_portal_file_is_moved_through_a_copy(workspace, monkeypatch):
    monkeypatch.delenv("CTDATA_PORTALS")
    archive = write(workspace, "x.json", {"results": [], "resultSetSize": 0})
    refused = CliRunner().invoke(
        main, ["import", "--portal", "data.ct.gov", "--date", "2024-12-31", str(archive)]
    )
    assert refused.exit_code == 1
    assert refused.output == (
        "ctdata import: 2024-12-31 is before the first night (2025-01-01); to import it, set "
        f"first_night: 2024-12-31 (or earlier) in a copy of {DEFAULT_PORTALS_FILE} and point "
        "CTDATA_PORTALS at the copy\n"
    )


def test_a_night_stored_before_a_first_night_moved_later_is_not_recomputed(workspace):
    portal_file = workspace / "portals.yaml"
    runner = CliRunner()
    imported = runner.invoke(
        main,
        [
            "import",
            "--portal",
            "opendata.fcc.gov",
            "--date",
            "2025-01-31",
            str(realdata(FCC.format("01-31"))),
        ],
    )
    assert imported.exit_code == 0, imported.output
    portal_file.write_text(f"first_night: 2025-02-01\n{PORTALS}", encoding="utf-8")
    db = workspace / "data" / "ctdata.duckdb"
    before = database_contents(db)
    refused = runner.invoke(main, ["recompute", "--from", "2025-01-01", "--to", "2025-03-01"])
    assert refused.exit_code == 2
    assert refused.output == (
        "ctdata recompute: 2025-01-31 is stored but before the first night (2025-02-01); to "
        f"recompute it, set first_night: 2025-01-31 (or earlier) in {portal_file}, or start "
        "--from at the first night\n"
    )
    assert database_contents(db) == before
