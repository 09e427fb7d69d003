"""The data engineers' Dagster: the webserver started on loopback loads the code location and
lists every asset, check, job, schedule and sensor; the asset graph opens in Chromium; a portal
added to the portal file becomes a partition after a reload, with no code change. After `ctdata
demo`, the pages a data engineer opens, read in Chromium and saved as screenshots: the nightly
job's page lists its runs, an asset's Partitions tab counts the demo's nights by portal, and a
check's history names the partition each evaluation judged."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests
import yaml
from playwright.sync_api import sync_playwright

from ctdata_pipeline.cli import DAGSTER_YAML
from ctdata_pipeline.demo.generator import DEMO_NIGHTS
from ctdata_pipeline.jobs import NIGHTLY_JOB
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline_tests.support import (
    ASSET_GROUPS,
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO_ROOT,
    ctdata_environment,
)

CHECKS = {
    ("catalog_snapshot", "asset_ids_unique"),
    ("catalog_snapshot", "in_scope_within_band"),
    ("dataset_assessments", "one_row_per_dataset"),
    ("plan_metrics", "values_in_range"),
    ("plan_metrics", "night_to_night_moves"),
    ("whole_night", "every_portal_stored"),
}
PORTALS = [
    {
        "name": "data.ct.gov",
        "kind": "socrata",
        "url": "https://data.ct.gov",
        "custom_fields": {"agency": "Agency_Agency"},
    },
    {
        "name": "geodata.ct.gov",
        "kind": "dcat",
        "url": "https://geodata.ct.gov/api/feed/dcat-us/1.1.json",
    },
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Webserver:
    """dagster-webserver on loopback, started from the repository root as `dagster dev` is,
    with the environment `env` (plus this process's, less any ctdata or Dagster setting)."""

    portals: Path | None = None  # the portal file it loads, when the test wrote one

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster-webserver")),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-w",
                "workspace.yaml",
            ],
            cwd=REPO_ROOT,
            env=ctdata_environment(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while time.monotonic() - started < 120:
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            self.stop()
            pytest.fail("dagster-webserver did not answer /server_info within 120 s")
        self.start_seconds = time.monotonic() - started

    def graphql(self, query: str) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    """The live location on a fresh instance, its portal file in the test's folder."""
    folder = tmp_path_factory.mktemp("ui")
    portals = folder / "portals.yaml"
    portals.write_text(yaml.safe_dump({"portals": PORTALS}))
    home = folder / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    server = Webserver(
        DAGSTER_HOME=str(home),
        CTDATA_PORTALS=str(portals),
        CTDATA_DB=str(folder / "data" / "ctdata.duckdb"),
    )
    server.portals = portals
    yield server
    server.stop()


REPOSITORY = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  location { name }
  jobs { name }
  schedules { name cronSchedule executionTimezone scheduleState { status } }
  sensors { name sensorState { status } }
  assetNodes { assetKey { path } groupName description kinds isPartitioned
    owners { ... on TeamAssetOwner { team } }
    internalFreshnessPolicy { __typename }
    assetChecksOrError { ... on AssetChecks { checks { name description } } } }
} } } }"""


def test_the_location_loads_and_lists_every_definition(webserver):
    info = requests.get(f"{webserver.url}/server_info", timeout=5).json()
    assert info["dagster_version"] == "1.13.27"
    statuses = webserver.graphql(
        "{ locationStatusesOrError { ... on WorkspaceLocationStatusEntries "
        "{ entries { name loadStatus } } } }"
    )["locationStatusesOrError"]["entries"]
    assert statuses == [{"name": "ctdata_pipeline", "loadStatus": "LOADED"}]

    [repository] = webserver.graphql(REPOSITORY)["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "ctdata_pipeline"
    assert {
        "nightly_job",
        "whole_night_job",
        "recompute_job",
        "report_job",
        "probe_job",
        "board_digest_job",
        "agency_digest_job",
    } <= {j["name"] for j in repository["jobs"]}
    # The digests' schedules are there, and off: the webserver has no CTDATA_RECIPIENTS.
    digest_schedule = {
        "cronSchedule": "0 8 * * 1",
        "executionTimezone": "America/New_York",
        "scheduleState": {"status": "STOPPED"},
    }
    assert sorted(repository["schedules"], key=lambda s: s["name"]) == [
        {"name": "agency_digest_schedule", **digest_schedule},
        {"name": "board_digest_schedule", **digest_schedule},
        {
            "name": "nightly_schedule",
            "cronSchedule": "0 2 * * *",
            "executionTimezone": "America/New_York",
            "scheduleState": {"status": "RUNNING"},
        },
        {
            "name": "probe_schedule",
            "cronSchedule": "0 3 * * *",
            "executionTimezone": "America/New_York",
            "scheduleState": {"status": "RUNNING"},
        },
        {
            # The same night in one run: off, a deployment turns on this or nightly_schedule.
            "name": "whole_night_schedule",
            "cronSchedule": "0 2 * * *",
            "executionTimezone": "America/New_York",
            "scheduleState": {"status": "STOPPED"},
        },
    ]
    assert {(s["name"], s["sensorState"]["status"]) for s in repository["sensors"]} == {
        ("report_automation", "RUNNING"),
        ("run_failure_alert", "RUNNING"),
    }
    nodes = {"/".join(n["assetKey"]["path"]): n for n in repository["assetNodes"]}
    assert {key: node["groupName"] for key, node in nodes.items()} == ASSET_GROUPS
    for key, node in nodes.items():
        assert node["description"] and len(node["description"]) > 80, key
        assert node["owners"] == [{"team": "opm-dapa"}] and node["kinds"], key
        assert node["isPartitioned"], key
    for key in ("harvested_catalog", "catalog_snapshot", "board_report"):
        assert nodes[key]["internalFreshnessPolicy"]["__typename"] == "CronFreshnessPolicy"
    checks = {
        (key, check["name"]): check["description"]
        for key, node in nodes.items()
        for check in node["assetChecksOrError"]["checks"]
    }
    assert set(checks) == CHECKS and all(checks.values())


def test_the_asset_graph_shows_the_groups(webserver, tmp_path):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        hosts = set()
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
        page.goto(f"{webserver.url}/asset-groups", wait_until="networkidle", timeout=90_000)
        skip = page.get_by_role("button", name="Skip")
        if skip.count():
            skip.click()  # Dagster's community sign-up dialog
        for group in ("harvest", "catalog", "metrics", "board", "report", "delivery"):
            page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "asset-graph.png"))
        browser.close()
    assert (tmp_path / "asset-graph.png").stat().st_size > 20_000
    assert hosts == {f"127.0.0.1:{webserver.port}"}


PARTITIONS = """{ assetNodeOrError(assetKey: {path: ["harvested_catalog"]}) {
  ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }"""


def test_a_portal_added_to_the_portal_file_becomes_a_partition(webserver):
    def portals():
        dimensions = webserver.graphql(PARTITIONS)["assetNodeOrError"]["partitionKeysByDimension"]
        return next(d["partitionKeys"] for d in dimensions if d["name"] == "portal")

    assert portals() == ["data.ct.gov", "geodata.ct.gov"]
    webserver.portals.write_text(
        yaml.safe_dump(
            {
                "portals": [
                    *PORTALS,
                    {
                        "name": "data.hartford.gov",
                        "kind": "socrata",
                        "url": "https://data.hartford.gov",
                    },
                ]
            }
        )
    )
    reloaded = webserver.graphql(
        'mutation { reloadRepositoryLocation(repositoryLocationName: "ctdata_pipeline") '
        "{ __typename ... on WorkspaceLocationEntry { name } } }"
    )
    assert reloaded["reloadRepositoryLocation"]["__typename"] == "WorkspaceLocationEntry"
    assert portals() == ["data.ct.gov", "geodata.ct.gov", "data.hartford.gov"]


# --- the UI after `ctdata demo`: the job's runs, an asset's partitions, a check's partition ---


@pytest.fixture(scope="module")
def demo_webserver(demo_run):
    """The webserver on the session's `ctdata demo` instance, as the README's Dagster section
    opens it (DAGSTER_HOME=dagster_home, CTDATA_DEPLOYMENT=demo)."""
    server = Webserver(
        DAGSTER_HOME=str(demo_run.folder / "dagster_home"),
        CTDATA_DEPLOYMENT="demo",
        CTDATA_DB=str(demo_run.folder / "data" / "ctdata.duckdb"),
        CTDATA_REPORT_DIR=str(demo_run.folder / "reports"),
    )
    yield server
    server.stop()


@pytest.fixture
def ui_page(demo_webserver):
    """A Chromium page on the demo's UI, without Dagster's community sign-up dialog (it would
    cover the screenshot: the UI shows it once, until `communityNux` is in local storage)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        yield page
        browser.close()


def demo_instance(demo_run) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(demo_run.folder / "dagster_home"))


def test_the_nightly_job_page_lists_the_demo_runs(demo_run, demo_webserver, ui_page, tmp_path):
    """Every run of a night belongs to its job in the UI (needs runs that carry the code
    location's origin, `.dagster/repository` = `__repository__@ctdata_pipeline`)."""
    with demo_instance(demo_run) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name=NIGHTLY_JOB), limit=10)
    assert runs, "the demo recorded no nightly_job run"
    ui_page.goto(
        f"{demo_webserver.url}/locations/ctdata_pipeline/jobs/{NIGHTLY_JOB}/runs",
        wait_until="networkidle",
        timeout=90_000,
    )
    newest = runs[0].run_id[:8]  # the UI names a run by the first 8 characters of its id
    ui_page.get_by_text(re.compile(f"No runs found|{newest}")).first.wait_for(timeout=30_000)
    ui_page.screenshot(path=str(tmp_path / "nightly-job-runs.png"))
    text = ui_page.inner_text("body")
    assert "No runs found" not in text, (
        "the job page lists none of the demo's runs: they lack the code location's origin"
    )
    assert [run.run_id[:8] for run in runs if run.run_id[:8] not in text] == []
    assert "Success" in text


def test_an_assets_partitions_and_its_checks_partition(demo_run, demo_webserver, ui_page, tmp_path):
    """plan_metrics' Partitions tab counts what the demo materialized, night by portal; its
    check's execution history names the night and portal each evaluation judged."""
    night = today_in_new_york().isoformat()
    with demo_instance(demo_run) as instance:
        materialized = instance.get_materialized_partitions(dg.AssetKey("plan_metrics"))
    assert len(materialized) == 2 * DEMO_NIGHTS
    ui_page.goto(
        f"{demo_webserver.url}/assets/plan_metrics?view=partitions",
        wait_until="networkidle",
        timeout=90_000,
    )
    ui_page.get_by_text(f"Materialized ({len(materialized)})").wait_for(timeout=30_000)
    ui_page.screenshot(path=str(tmp_path / "plan-metrics-partitions.png"))
    text = ui_page.inner_text("body")
    assert "Failed (0)" in text
    assert "demo.data.ct.gov" in text and "demo.geodata.ct.gov" in text
    assert night in text

    ui_page.goto(f"{demo_webserver.url}/assets/plan_metrics?view=checks", wait_until="networkidle")
    ui_page.get_by_text("Execution history").click()
    judged = f"{night}|demo.data.ct.gov"
    ui_page.get_by_text(judged).first.wait_for(timeout=30_000)
    ui_page.screenshot(path=str(tmp_path / "check-history.png"))
    text = ui_page.inner_text("body")
    assert f"{night}|demo.geodata.ct.gov" in text
    for screenshot in ("plan-metrics-partitions.png", "check-history.png"):
        assert (tmp_path / screenshot).stat().st_size > 20_000
