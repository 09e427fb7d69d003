"""`ctdata demo` and `ctdata nightly` as a newcomer and the nightly cron run them: the installed
console script, in a fresh working folder, against loopback portals."""

import email
import re
import shutil
from email import policy
from pathlib import Path

import dagster as dg
import duckdb

from ctdata_pipeline.delivery.deliver import DRY_RUN_FROM
from ctdata_pipeline.delivery.model import Period
from ctdata_pipeline.delivery.recipients import load_recipients
from ctdata_pipeline.demo.generator import DEMO_NIGHTS
from ctdata_pipeline.demo.portals import demo_portal_file
from ctdata_pipeline.demo.recipients import DEMO_RECIPIENTS_FILE
from ctdata_pipeline.metrics.definitions import METRICS
from ctdata_pipeline.metrics.targets import judge, movement
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline_tests.support import (
    portal_entry,
    query,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)


def snapshots(db_path: Path) -> list[tuple]:
    return query(
        db_path,
        "SELECT snapshot_date, portal, assets_total, datasets_in_scope FROM catalog.snapshots "
        "ORDER BY snapshot_date, portal",
    )


def test_ctdata_demo_end_to_end_in_a_fresh_folder(demo_run):
    tmp_path, completed = demo_run.folder, demo_run.completed
    db_path = tmp_path / "data" / "ctdata.duckdb"
    assert f"DuckDB file:   {db_path}" in completed.stdout

    rows = snapshots(db_path)
    nights = sorted({row[0] for row in rows})
    assert len(nights) == DEMO_NIGHTS and nights[-1] == today_in_new_york()
    assert {row[1] for row in rows} == {"demo.data.ct.gov", "demo.geodata.ct.gov"}
    assert len(rows) == 2 * DEMO_NIGHTS
    socrata_totals = [row[2] for row in rows if row[1] == "demo.data.ct.gov"]
    assert len(set(socrata_totals)) > 3  # the catalog changed from night to night
    for snapshot_date, _, total, _ in rows:  # the printed table says the same
        assert str(snapshot_date) in completed.stdout and f"{total} assets" in completed.stdout

    # every board table is filled for every simulated night (catalog_changes from the second)
    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        for table in ("plan_metrics", "missing_metadata", "stale_datasets", "agency_scorecard"):
            filled = conn.execute(
                f"SELECT count(DISTINCT (snapshot_date, portal)) FROM board.{table}"
            ).fetchall()[0][0]
            expected = DEMO_NIGHTS * (1 if table == "stale_datasets" else 2)
            assert filled >= expected, table
        changed_nights = conn.execute(
            "SELECT count(DISTINCT snapshot_date) FROM board.catalog_changes "
            "WHERE portal = 'demo.data.ct.gov'"
        ).fetchall()[0][0]
        headline = conn.execute(
            "SELECT portal, value FROM board.plan_metrics WHERE agency IS NULL "
            "AND metric = 'pct_missing_metadata' AND snapshot_date = ? ORDER BY portal",
            [nights[-1]],
        ).fetchall()
        night_before = dict(
            conn.execute(
                "SELECT portal, value FROM board.plan_metrics WHERE agency IS NULL "
                "AND metric = 'pct_missing_metadata' AND snapshot_date = ?",
                [nights[-2]],
            ).fetchall()
        )
    finally:
        conn.close()
    assert changed_nights >= DEMO_NIGHTS - 2
    target = demo_portal_file().targets["MD-1"]
    for portal, value in headline:
        assert f"{portal:<22} MD-1  missing metadata" in completed.stdout
        assert f"-> {value:6.1f}%" in completed.stdout
        # judged against the demo's target, in the report's words
        assert judge(target, value, "percent").words in completed.stdout
        moved = movement("MD-1", value, night_before[portal], nights[-2], "percent", target)
        assert moved in completed.stdout

    home = tmp_path / "dagster_home"
    assert (home / "dagster.yaml").exists()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
    assert all(run.is_success for run in runs)
    nightly = [run for run in runs if run.job_name == "nightly_job"]
    probes = [run for run in runs if run.job_name == "probe_job"]
    reports = [run for run in runs if run.job_name == "report_job"]
    # Each night: two portals' nightly runs, then their probe runs; the reports after, and
    # last the Board's and the agencies' digests of the periods holding the last night.
    assert len(nightly) == len(probes) == 2 * DEMO_NIGHTS
    assert len(runs) == len(nightly) + len(probes) + DEMO_NIGHTS + 2
    assert f"({len(runs)} runs recorded)" in completed.stdout
    # get_runs lists newest first.
    assert [run.job_name for run in runs[:2]] == ["agency_digest_job", "board_digest_job"]
    assert [run.tags["dagster/partition"] for run in runs[:2]] == [
        Period.containing("weekly", nights[-1]).key,
        Period.containing("monthly", nights[-1]).key,
    ]
    # A report a night, every one after every night is stored.
    assert [run.tags["dagster/partition"] for run in reports] == [
        night.isoformat() for night in reversed(nights)
    ]
    assert [run.run_id for run in runs[2 : 2 + DEMO_NIGHTS]] == [run.run_id for run in reports]
    assert {run.tags["dagster/partition/portal"] for run in nightly} == {
        "demo.data.ct.gov",
        "demo.geodata.ct.gov",
    }


def test_ctdata_demo_writes_the_digests_as_eml_files_a_mail_client_opens(demo_run):
    folder, stdout = demo_run.folder, demo_run.completed.stdout
    last_night = today_in_new_york()
    month = Period.containing("monthly", last_night)
    board_eml = folder / "outbox" / "board" / month.key / "board.eml"
    assert f"Board digest:  {board_eml} (a dry run: not sent)" in stdout
    recipients = load_recipients(folder / "data" / DEMO_RECIPIENTS_FILE)
    assert f"Recipients:    {folder / 'data' / DEMO_RECIPIENTS_FILE}" in stdout

    board = email.message_from_bytes(board_eml.read_bytes(), policy=policy.default)
    assert board["To"] == ", ".join(recipients.board)
    assert board["From"] == DRY_RUN_FROM
    assert board["Subject"].startswith(f"Connecticut's open data portals (demo), {month.words}:")
    assert {part.get_filename() for part in board.iter_attachments()} >= {"board.xlsx"}
    for kind in ("plain", "html"):
        assert board.get_body((kind,)) is not None

    # One agency digest per demo agency with something to fix, or asking to hear anyway.
    week = Period.containing("weekly", last_night)
    agency_folder = folder / "outbox" / "agency" / week.key
    emls = sorted(agency_folder.glob("*.eml"))
    assert f"Agencies':     {agency_folder} ({len(emls)} .eml files, one each)" in stdout
    assert len(emls) >= 10
    addresses = set()
    for path in emls:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        # "<agency>, week of 30 November 2026: 3 datasets to fix", on one line.
        assert f", {week.words.removeprefix('the ')}: " in message["Subject"]
        assert not message["Subject"].startswith(" ")
        assert message["To"].endswith("@example.org")
        [attachment] = list(message.iter_attachments())
        assert attachment.get_filename() == f"{path.stem}.csv"
        addresses.add(message["To"])
    assert len(addresses) == len(emls)
    # Nothing was sent, so nothing is recorded as sent.
    assert query(
        folder / "data" / "ctdata.duckdb",
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'delivery'",
    ) == [(0,)]


def test_ctdata_demo_honours_ctdata_db(tmp_path):
    db_path = tmp_path / "elsewhere" / "demo.duckdb"
    completed = run_ctdata(tmp_path, "demo", "--nights", "2", CTDATA_DB=str(db_path))
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(snapshots(db_path)) == 4
    assert not (tmp_path / "data" / "ctdata.duckdb").exists()


def test_ctdata_nightly_harvests_tonight_and_records_the_runs(tmp_path):
    with (
        serve("socrata", socrata_catalog(40)) as socrata,
        serve(
            "dcat",
            {"dataset": [{"identifier": "a", "title": "A"}, {"identifier": "b", "title": "B"}]},
        ) as hub,
    ):
        portals = write_portal_file(
            tmp_path, [portal_entry("ct", socrata), portal_entry("hub", hub)]
        )
        home = tmp_path / "home"
        completed = run_ctdata(
            tmp_path, "nightly", CTDATA_PORTALS=str(portals), DAGSTER_HOME=str(home)
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    tonight = today_in_new_york()
    # A line as each portal's night finishes, before the summary.
    progress = [
        re.sub(r"\d+:\d\d elapsed", "M:SS elapsed", line)
        for line in completed.stdout.splitlines()
        if line.startswith("progress:")
    ]
    assert progress == [
        "progress: 1/2 portals done, 0 failed, M:SS elapsed (ct: ok)",
        "progress: 2/2 portals done, 0 failed, M:SS elapsed (hub: ok)",
    ]
    assert completed.stdout.splitlines()[-7:] == [
        f"{tonight} ct: ok",
        f"{tonight} hub: ok",
        f"{tonight} ct probes: ok",
        f"{tonight} hub probes: ok",
        f"{tonight} report: ok",
        f"Report:        {tmp_path / 'reports' / tonight.isoformat() / 'report.html'}",
        f"Readers' copy: {tmp_path / 'data' / 'published' / 'ctdata_board.duckdb'}",
    ]
    assert (tmp_path / "reports" / "latest" / "report.html").exists()
    assert snapshots(tmp_path / "data" / "ctdata.duckdb") == [
        (
            tonight,
            "ct",
            40,
            40 - sum(r["resource"]["type"] != "dataset" for r in socrata_catalog(40)),
        ),
        (tonight, "hub", 2, 2),
    ]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert sorted(run.job_name for run in instance.get_runs()) == [
            "nightly_job",
            "nightly_job",
            "probe_job",
            "probe_job",
            "report_job",
        ]


def test_ctdata_nightly_says_in_one_line_which_portal_failed(tmp_path):
    with serve("socrata", socrata_catalog(10)) as socrata, serve("dcat", {"dataset": []}) as hub:
        down = {"name": "down", "kind": "dcat", "url": f"{hub.base_url}/gone.json"}
        portals = write_portal_file(tmp_path, [portal_entry("ct", socrata), down])
        completed = run_ctdata(
            tmp_path, "nightly", CTDATA_PORTALS=str(portals), CTDATA_HARVEST_RETRIES="0"
        )
    assert completed.returncode == 1
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ctdata nightly: down: HTTP 404 from http://127.0.0.1:")
    assert "down: FAILED: HTTP 404 from" in completed.stdout
    assert re.search(
        r"^progress: 2/2 portals done, 1 failed, \d+:\d\d elapsed \(down: FAILED\)$",
        completed.stdout,
        re.M,
    )
    database = tmp_path / "data" / "ctdata.duckdb"
    assert [row[1] for row in snapshots(database)] == ["ct"]
    # The portal that answered is complete: every metric for the night, and its report.
    portal_wide = query(
        database,
        "SELECT portal, count(DISTINCT metric_id) FROM board.plan_metrics "
        "WHERE agency IS NULL GROUP BY portal",
    )
    assert portal_wide == [("ct", len(METRICS))]
    assert f"{today_in_new_york()} ct: ok" in completed.stdout.splitlines()
    assert (tmp_path / "reports" / "latest" / "report.html").exists()
    assert (tmp_path / "dagster_home" / "dagster.yaml").exists()  # created: DAGSTER_HOME unset


def test_a_failing_night_prints_one_line_per_failed_portal_and_keeps_the_logs_in_its_runs(
    tmp_path,
):
    """What cron mails when two of three portals fail: their two lines, nothing else; the run's
    logs (the step's stack trace included) stay in the Dagster instance, and --log-level info
    prints them too."""
    with serve("socrata", socrata_catalog(10)) as socrata, serve("dcat", {"dataset": []}) as hub:
        portals = write_portal_file(
            tmp_path,
            [
                portal_entry("ct", socrata),
                {"name": "down", "kind": "dcat", "url": f"{hub.base_url}/gone.json"},
                {"name": "empty", "kind": "dcat", "url": f"{hub.base_url}/data.json"},
            ],
        )
        environment = {"CTDATA_PORTALS": str(portals), "CTDATA_HARVEST_RETRIES": "0"}
        quiet = run_ctdata(tmp_path, "nightly", **environment)
        verbose = run_ctdata(tmp_path, "nightly", "--log-level", "info", **environment)

    assert quiet.returncode == 1
    down, empty = quiet.stderr.splitlines()
    assert down.startswith("ctdata nightly: down: HTTP 404 from http://127.0.0.1:")
    assert empty.startswith("ctdata nightly: empty: refused: the catalog for ")
    assert "holds no assets at all" in empty
    assert quiet.stderr.endswith("\n") and "Traceback" not in quiet.stderr

    home = tmp_path / "dagster_home"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        down_run = next(  # the first of the two nightlies: the quiet one
            run
            for run in reversed(instance.get_runs(filters=dg.RunsFilter(job_name="nightly_job")))
            if run.tags.get("dagster/partition/portal") == "down"
        )
        logged = instance.all_logs(down_run.run_id)
    failures = [
        record for record in logged if record.dagster_event and record.dagster_event.is_step_failure
    ]
    # The stack trace is kept in the run, not printed.
    assert failures[0].dagster_event.step_failure_data.error.stack
    assert "Stack Trace" not in quiet.stderr
    assert any("Dependencies for step catalog_snapshot failed" in r.user_message for r in logged)

    assert verbose.returncode == 1
    assert " - dagster - INFO - nightly_job - " in verbose.stderr
    assert verbose.stderr.splitlines()[-1].startswith("ctdata nightly: empty: ")


def test_a_first_night_that_fails_says_there_is_nothing_to_report(tmp_path):
    with serve("dcat", {"dataset": []}) as hub:
        down = {"name": "down", "kind": "dcat", "url": f"{hub.base_url}/gone.json"}
        portals = write_portal_file(tmp_path, [down])
        completed = run_ctdata(
            tmp_path, "nightly", CTDATA_PORTALS=str(portals), CTDATA_HARVEST_RETRIES="0"
        )
    assert completed.returncode == 1
    database = tmp_path / "data" / "ctdata.duckdb"
    down_line, report_line = completed.stderr.strip().splitlines()
    assert down_line.startswith("ctdata nightly: down: HTTP 404 from http://127.0.0.1:")
    assert report_line == (
        f"ctdata nightly: report: no night is stored in {database} yet: nothing to report "
        "(see the portals' runs for why)"
    )
    assert not (tmp_path / "reports" / "latest").exists()


def test_ctdata_nightly_with_a_bad_portal_file(tmp_path):
    portals = tmp_path / "portals.yaml"
    portals.write_text("portals:\n  - {name: ct, kind: socrata, url: data.ct.gov}\n")
    completed = run_ctdata(tmp_path, "nightly", CTDATA_PORTALS=str(portals))
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"ctdata nightly: portal file {portals}: portals[0] (ct): url: 'data.ct.gov' must start "
        "with http:// or https:// and name a host"
    )
    assert not (tmp_path / "data").exists()


def test_recompute_after_the_demo_works_on_its_database_and_names_a_portal_it_does_not_know(
    demo_run, tmp_path
):
    """The demo's database is recomputed like a live one when the command serves the demo's
    portal file (CTDATA_DEPLOYMENT=demo, as `dagster dev` does); without it, a demo portal's
    name is one line that says so. (It was a DagsterUnknownPartitionError stack trace.)"""
    folder = tmp_path / "demo"
    shutil.copytree(demo_run.folder, folder)
    night = today_in_new_york().isoformat()
    portal = "demo.data.ct.gov"
    live = run_ctdata(folder, "recompute", "--from", night, "--portal", portal)
    assert live.returncode == 2, live.stderr
    [line] = live.stderr.strip().splitlines()
    assert line.startswith(f"ctdata recompute: no portal named '{portal}' in "), line
    assert line.endswith("(a demo portal: run the command with CTDATA_DEPLOYMENT=demo)"), line
    demo = run_ctdata(
        folder, "recompute", "--from", night, "--portal", portal, CTDATA_DEPLOYMENT="demo"
    )
    assert demo.returncode == 0, demo.stderr
    assert f"{night} {portal}: ok" in demo.stdout
    assert f"{night} report: ok" in demo.stdout


def test_with_max_concurrent_runs_a_nights_portals_run_side_by_side_in_forked_workers(tmp_path):
    """The instance's `concurrency: runs: max_concurrent_runs` is how many runs a command
    executes at once: above 1, each in a worker process forked from ctdata. Every run still
    belongs to its job, and the night is the same as one at a time."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
        "  runs:\n    max_concurrent_runs: 2\n",
        encoding="utf-8",
    )
    with (
        serve("socrata", socrata_catalog(40)) as socrata,
        serve("socrata", socrata_catalog(30)) as other,
    ):
        portals = write_portal_file(
            tmp_path, [portal_entry("ct", socrata), portal_entry("other", other)]
        )
        completed = run_ctdata(
            tmp_path, "nightly", CTDATA_PORTALS=str(portals), DAGSTER_HOME=str(home)
        )
    assert completed.returncode == 0, completed.stderr[-3000:]
    tonight = today_in_new_york()
    assert [row[:3] for row in snapshots(tmp_path / "data" / "ctdata.duckdb")] == [
        (tonight, "ct", 40),
        (tonight, "other", 30),
    ]
    # A progress line as each finishes, whichever finishes first.
    progress = [line for line in completed.stdout.splitlines() if line.startswith("progress:")]
    assert [line.split(" elapsed ")[0].rsplit(" ", 1)[0] for line in progress] == [
        "progress: 1/2 portals done, 0 failed,",
        "progress: 2/2 portals done, 0 failed,",
    ]
    assert sorted(line.split(" elapsed ")[1] for line in progress) == ["(ct: ok)", "(other: ok)"]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        nightly = [run for run in runs if run.job_name == "nightly_job"]
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        assert {run.remote_job_origin.location_name for run in runs} == {"ctdata_pipeline"}
        first, second = (instance.get_run_stats(run.run_id) for run in nightly)
    # Side by side: each portal's run started before the other ended (one at a time, the
    # second would start after the first ended).
    assert first.start_time < second.end_time and second.start_time < first.end_time
