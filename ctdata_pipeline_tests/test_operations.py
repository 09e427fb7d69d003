"""Operating the pipeline: failure alerts without code changes, recomputing a range of nights,
two portals harvested side by side into one DuckDB file, and a past-night harvest refused with
its reason in the run."""

import json
import subprocess
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from click.testing import CliRunner

from ctdata_pipeline.alerts import run_failure_alert
from ctdata_pipeline.cli import main
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline_tests.support import (
    CTDATA,
    Pipeline,
    portal_entry,
    query,
    serve,
    socrata_catalog,
    write_portal_file,
)


class Webhook:
    """A loopback webhook that records what it is sent and answers with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def failed_run(tmp_path, instance, night):
    """A real failed nightly run: a live portal asked for a past night."""
    with serve("socrata", socrata_catalog(5)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        [result] = pipeline.run(instance, night - timedelta(days=1), "ct")
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [failure] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return run, failure.dagster_event


def alert_context(instance, run, event):
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=event,
    ).for_run_failure()


def test_a_failed_run_is_posted_to_the_configured_webhook(tmp_path, instance, today, monkeypatch):
    run, event = failed_run(tmp_path, instance, today)
    webhook = Webhook()
    monkeypatch.setenv("CTDATA_ALERT_WEBHOOK", webhook.url)
    monkeypatch.setenv("CTDATA_DAGSTER_URL", "http://dagster.example:3000/")
    try:
        run_failure_alert(alert_context(instance, run, event))
    finally:
        webhook.close()
    [payload] = webhook.received
    night = today - timedelta(days=1)
    assert payload["job"] == "nightly_job" and payload["run_id"] == run.run_id
    assert payload["partition"] == f"{night}|ct"
    assert payload["link"] == f"http://dagster.example:3000/runs/{run.run_id}"
    assert payload["text"].startswith(
        f"ctdata_pipeline: nightly_job for {night}|ct failed: ct: is a live portal"
    )


def test_without_a_webhook_the_failure_is_only_logged(tmp_path, instance, today, capfd):
    run, event = failed_run(tmp_path, instance, today)
    capfd.readouterr()
    run_failure_alert(alert_context(instance, run, event))  # nothing to post to: no error
    logged = capfd.readouterr().err
    assert "ERROR - ctdata_pipeline: nightly_job for" in logged and "is a live portal" in logged


def test_a_webhook_that_fails_fails_the_sensor_tick_visibly(tmp_path, instance, today, monkeypatch):
    run, event = failed_run(tmp_path, instance, today)
    webhook = Webhook(status=404)
    monkeypatch.setenv("CTDATA_ALERT_WEBHOOK", webhook.url)
    try:
        with pytest.raises(Exception, match="404"):
            run_failure_alert(alert_context(instance, run, event))
    finally:
        webhook.close()


def test_a_past_night_harvest_in_a_backfill_is_refused_with_its_reason(tmp_path, instance, today):
    run, _ = failed_run(tmp_path, instance, today)
    [step_failure] = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    description = step_failure.dagster_event.step_failure_data.user_failure_data.description
    assert description.startswith(
        f"ct: is a live portal, so it can only be harvested for today ({today}"
    )
    assert "`ctdata import`" in description


def test_recompute_a_range_of_nights(tmp_path, instance, today, monkeypatch):
    yesterday = today - timedelta(days=1)
    with serve("socrata", socrata_catalog(30)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        for night in (yesterday, today):
            pipeline.run_ok(instance, night, "ct")
    before = query(pipeline.db_path, "SELECT * FROM board.plan_metrics ORDER BY ALL")
    monkeypatch.setenv("CTDATA_PORTALS", str(pipeline.portals_file))
    monkeypatch.setenv("CTDATA_DB", str(pipeline.db_path))
    monkeypatch.setenv("CTDATA_REPORT_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(main, ["recompute", "--from", str(yesterday), "--to", str(today)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{yesterday} ct: ok",
        f"{today} ct: ok",
        f"{yesterday} report: ok",
        f"{today} report: ok",
    ]
    assert query(pipeline.db_path, "SELECT * FROM board.plan_metrics ORDER BY ALL") == before
    assert (tmp_path / "reports" / str(yesterday) / "report.html").exists()
    assert (tmp_path / "reports" / "latest" / "board.xlsx").exists()
    nothing = CliRunner().invoke(main, ["recompute", "--from", "2021-01-01"])
    assert nothing.exit_code == 1 and "no stored snapshot of ct from 2021-01-01" in nothing.output


def test_two_portals_side_by_side_into_one_database(tmp_path):
    """Two `ctdata nightly` processes, one per portal, at the same time: the DuckDB writers take
    turns (the duckdb pool, and the warehouse waiting for the file's lock), and both land."""
    with (
        serve("socrata", socrata_catalog(400)) as first,
        serve("socrata", socrata_catalog(300, start=500)) as second,
    ):
        portals = write_portal_file(
            tmp_path, [portal_entry("one", first), portal_entry("two", second)]
        )
        home = tmp_path / "home"
        home.mkdir()
        environment = {
            "CTDATA_PORTALS": str(portals),
            "DAGSTER_HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        }
        processes = [
            subprocess.Popen(
                [str(CTDATA), "nightly", "--portal", name],
                cwd=tmp_path,
                env=environment,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("one", "two")
        ]
        outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-2000:]
    assert query(
        tmp_path / "data" / "ctdata.duckdb",
        "SELECT portal, assets_total FROM catalog.snapshots ORDER BY portal",
    ) == [("one", 400), ("two", 300)]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert sum(run.job_name == "nightly_job" for run in runs) == 2
        assert all(run.is_success for run in runs)
        nightly = {run.tags["dagster/partition"] for run in runs if run.job_name == "nightly_job"}
    tonight = today_in_new_york()
    assert nightly == {f"{tonight}|one", f"{tonight}|two"}
