"""A whole night in one run (`ctdata nightly --one-run`, whole_night_job): the same tables as the
per-portal runs, each portal failing alone and shown on its own partitions, harvests side by
side but one at a time per host."""

import re
import threading
import time
from collections import Counter
from contextlib import ExitStack

import dagster as dg

from ctdata_pipeline.board.whole_night import EVERY_PORTAL_STORED, WHOLE_NIGHT
from ctdata_pipeline.demo.server import Reply
from ctdata_pipeline.harvest.resources import LivePortalClient
from ctdata_pipeline.harvest.side_by_side import harvest_side_by_side
from ctdata_pipeline.harvest.staging import StagingArea
from ctdata_pipeline.partitions import night_key, today_in_new_york
from ctdata_pipeline.portals import load_portal_file
from ctdata_pipeline_tests.support import (
    database_contents,
    portal_entry,
    query,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)

FEED = {"dataset": [{"identifier": f"d{n}", "title": f"Dataset {n}"} for n in range(12)]}


def _answer(reply: Reply):
    return lambda _request: reply


def test_one_run_night_equals_the_per_portal_runs_and_each_portal_fails_alone(tmp_path):
    with ExitStack() as servers:
        ct = servers.enter_context(serve("socrata", socrata_catalog(60)))
        hub = servers.enter_context(serve("dcat", FEED))
        broken = servers.enter_context(serve("dcat", FEED, hook=_answer(Reply(status=503))))
        empty = servers.enter_context(serve("dcat", FEED, hook=_answer(Reply(body=b""))))
        garbled = servers.enter_context(serve("dcat", FEED, hook=_answer(Reply(body=b'{"da'))))
        # Asked "as of" the night, so both nights stand at the same instant (their ages agree).
        entries = [
            portal_entry("ct", ct, as_of=True),
            portal_entry("hub", hub, as_of=True),
            portal_entry("broken", broken, max_retries=0),
            portal_entry("empty", empty),
            portal_entry("garbled", garbled),
        ]
        completed = {}
        for mode in ("one-run", "per-portal"):
            folder = tmp_path / mode
            folder.mkdir()
            portals = write_portal_file(folder, entries)
            completed[mode] = run_ctdata(
                folder,
                "nightly",
                *(["--one-run"] if mode == "one-run" else []),
                CTDATA_PORTALS=str(portals),
                DAGSTER_HOME=str(folder / "home"),
                CTDATA_HARVEST_RETRIES="0",
            )
    one, each = completed["one-run"], completed["per-portal"]
    assert one.returncode == each.returncode == 1, one.stderr[-3000:]
    tonight = today_in_new_york()

    def portal_lines(stdout: str) -> list[str]:
        # (Portals with probes off have no probe run in one run: it records what theirs would.)
        return sorted(
            line
            for line in stdout.splitlines()
            if line.startswith(f"{tonight} ") and not line.endswith(" probes: ok")
        )

    # The same line per portal, the same failures in the same words, the same last line.
    assert portal_lines(one.stdout) == portal_lines(each.stdout)
    assert f"{tonight} ct: ok" in one.stdout.splitlines()
    assert f"{tonight} hub: ok" in one.stdout.splitlines()
    assert f"{tonight} report: ok" in one.stdout.splitlines()
    for name in ("broken", "empty", "garbled"):
        assert re.search(rf"^{tonight} {name}: FAILED: \S", one.stdout, re.M), name
    assert "the answer was empty: 0 bytes" in one.stdout
    assert one.stderr.strip().splitlines()[-1] == each.stderr.strip().splitlines()[-1]

    # A progress line per portal, in finishing order, counting the failures.
    progress = [line for line in one.stdout.splitlines() if line.startswith("progress:")]
    assert len(progress) == 5
    assert [re.match(r"progress: (\d)/5 portals done", line)[1] for line in progress] == list(
        "12345"
    )
    assert progress[-1].startswith("progress: 5/5 portals done, 3 failed, ")

    # What the Board reads is the same, row for row.
    one_tables = database_contents(tmp_path / "one-run" / "data" / "ctdata.duckdb")
    each_tables = database_contents(tmp_path / "per-portal" / "data" / "ctdata.duckdb")
    compared = [table for table in each_tables if table.startswith(("board.", "metrics."))]
    assert len(compared) > 5
    for table in compared:
        assert one_tables[table] == each_tables[table], table
    stored = "SELECT portal FROM catalog.snapshots ORDER BY portal"
    assert query(tmp_path / "one-run" / "data" / "ctdata.duckdb", stored) == [("ct",), ("hub",)]

    # The report names each failed portal and why, as it does for per-portal runs.
    report = (tmp_path / "one-run" / "reports" / "latest" / "report.html").read_text()
    for name in ("broken", "empty", "garbled"):
        assert name in report
    assert report.count("its harvest failed") >= 3

    with dg.DagsterInstance.from_config(str(tmp_path / "one-run" / "home")) as instance:
        assert Counter(run.job_name for run in instance.get_runs()) == {
            "whole_night_job": 1,
            "report_job": 1,
        }
        # Each portal's status under the per-portal assets' (night, portal) partitions.
        for asset in ("harvested_catalog", "catalog_snapshot", "plan_metrics", "stale_datasets"):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == {
                str(night_key(tonight, "ct")),
                str(night_key(tonight, "hub")),
            }, asset
        evaluations = [
            record.asset_check_evaluation
            for record in instance.all_logs(
                instance.get_runs(filters=dg.RunsFilter(job_name="whole_night_job"))[0].run_id,
                of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
            )
        ]
        by_check = {(e.check_name, e.partition): e.passed for e in evaluations if e is not None}
        ct_key = str(night_key(tonight, "ct"))
        assert by_check[("asset_ids_unique", ct_key)] is True
        assert by_check[("values_in_range", ct_key)] is True
        assert by_check[(EVERY_PORTAL_STORED, None)] is False
        failed_check = next(e for e in evaluations if e.check_name == EVERY_PORTAL_STORED)
        assert failed_check.description.startswith("3 of 5 portals not stored: broken: ")
        assert dg.AssetKey(WHOLE_NIGHT) in {e.asset_key for e in evaluations}


def test_harvests_run_side_by_side_but_one_at_a_time_per_host(tmp_path):
    """Three portals on one host, three on hosts of their own: the shared host never answers
    two requests at once, while several hosts are being asked at the same moment."""
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()
    lock = threading.Lock()

    def slow(host: str):
        def hook(_request):
            with lock:
                in_flight[host] += 1
                in_flight["all"] += 1
                most[host] = max(most[host], in_flight[host])
                most["all"] = max(most["all"], in_flight["all"])
            time.sleep(0.2)
            with lock:
                in_flight[host] -= 1
                in_flight["all"] -= 1
            return None

        return hook

    with ExitStack() as servers:
        shared = servers.enter_context(serve("dcat", FEED, hook=slow("shared")))
        own = [servers.enter_context(serve("dcat", FEED, hook=slow(f"own{n}"))) for n in range(3)]
        entries = [portal_entry(f"shared{n}", shared) for n in range(3)] + [
            portal_entry(f"own{n}", server) for n, server in enumerate(own)
        ]
        portal_file = load_portal_file(write_portal_file(tmp_path, entries))
        area = StagingArea(tmp_path / "staging")
        harvested = list(
            harvest_side_by_side(
                [portal_file.get(name) for name in portal_file.names],
                LivePortalClient(),
                area,
                today_in_new_york(),
                hosts_at_once=3,
            )
        )
    assert sorted(h.portal.name for h in harvested) == sorted(portal_file.names)
    assert all(h.summary is not None and h.summary.assets == 12 for h in harvested)
    assert most["shared"] == 1
    assert 1 < most["all"] <= 3
    for h in harvested:
        assert area.summary(h.portal.name, today_in_new_york()) is not None
