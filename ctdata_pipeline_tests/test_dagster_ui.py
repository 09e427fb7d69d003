"""The data engineers' Dagster: the webserver started on loopback loads the code location and
lists every asset, check, job, schedule and sensor; the asset graph opens in Chromium; a portal
added to the portal file becomes a partition after a reload, with no code change."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml
from playwright.sync_api import sync_playwright

from ctdata_pipeline.cli import DAGSTER_YAML
from ctdata_pipeline_tests.support import ASSET_GROUPS, REPO_ROOT
from ctdata_pipeline_tests.test_report import CHROMIUM, CHROMIUM_ARGS

CHECKS = {
    ("catalog_snapshot", "asset_ids_unique"),
    ("catalog_snapshot", "in_scope_within_band"),
    ("dataset_assessments", "one_row_per_dataset"),
    ("plan_metrics", "values_in_range"),
    ("plan_metrics", "night_to_night_moves"),
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
    def __init__(self, folder: Path) -> None:
        self.portals = folder / "portals.yaml"
        self.portals.write_text(yaml.safe_dump({"portals": PORTALS}))
        home = folder / "home"
        home.mkdir()
        (home / "dagster.yaml").write_text(DAGSTER_YAML)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "CTDATA_PORTALS": str(self.portals),
            "CTDATA_DB": str(folder / "data" / "ctdata.duckdb"),
        }
        environment.pop("CTDATA_DEPLOYMENT", None)
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
            env=environment,
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
    server = Webserver(tmp_path_factory.mktemp("ui"))
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
    assert {"nightly_job", "recompute_job", "report_job"} <= {j["name"] for j in repository["jobs"]}
    assert repository["schedules"] == [
        {
            "name": "nightly_schedule",
            "cronSchedule": "0 2 * * *",
            "executionTimezone": "America/New_York",
            "scheduleState": {"status": "RUNNING"},
        }
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
        for group in ("harvest", "catalog", "metrics", "board", "report"):
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
