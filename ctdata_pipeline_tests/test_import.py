"""`ctdata import`: real archived catalogs (FCC's two data.json snapshots) become past nights with
their metrics; malformed or mismatched files are refused and change nothing."""

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ctdata_pipeline.cli import main
from ctdata_pipeline.partitions import night_instant, today_in_new_york
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
        (date(2025, 1, 31), "datasets_removed", None),
        (date(2025, 1, 31), "datasets_renamed", None),
        (date(2025, 2, 4), "datasets_added", 0.0),
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
    assert len(runs) == 2 and all(run.is_success for run in runs)
    assert {run.job_name for run in runs} == {"recompute_job"}
    assert sorted(r.partition_key for r in imported) == [
        "2025-01-31|opendata.fcc.gov",
        "2025-02-04|opendata.fcc.gov",
    ]


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
            "2019-12-31",
            lambda d: write(d, "x.json", {"results": [], "resultSetSize": 0}),
            "2019-12-31 is before the first night kept (2020-01-01)",
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
    from ctdata_pipeline.catalog.store import ensure_schema, stage_records, write_snapshot
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
