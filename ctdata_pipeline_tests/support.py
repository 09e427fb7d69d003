"""Test support: real catalog responses from ../shared/realdata, shaped into catalogs of any size,
loopback portals, portal files, and pipeline runs."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from ctdata_pipeline.cli import NightResult, run_nights, run_whole_night
from ctdata_pipeline.code_location import build_definitions
from ctdata_pipeline.demo.server import Hook, PortalServer
from ctdata_pipeline.harvest.resources import LivePortalClient
from ctdata_pipeline.jobs import REPORT_JOB
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.resources import PortalFileResource
from ctdata_pipeline.settings import Settings
from ctdata_pipeline.warehouse import Lake

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CTDATA_SHARED_DIR", REPO_ROOT.parent / "shared"))
REALDATA = SHARED / "realdata"

SOCRATA_DISCOVERY_FILES = (
    "socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json",
    "socrata/catalog_v1_global_limit10_dataset-story_incl_data.ct.gov.json",
    "socrata/catalog_v1_domains_chicago_ny_limit10.json",
)
# Other domains' custom-metadata keys, renamed to data.ct.gov's so one portal file reads them all.
CT_KEYS = {
    "Dataset-Information_Agency": "Agency_Agency",
    "Metadata_Data-Owner": "Agency_Agency",
    "Update_Update-Frequency": "Details_Update-Frequency",
    "Metadata_Frequency": "Details_Update-Frequency",
    "Dataset-Summary_Posting-Frequency": "Details_Update-Frequency",
}
CT_CUSTOM_FIELDS = {
    "agency": "Agency_Agency",
    "update_frequency": "Details_Update-Frequency",
    "geographic_unit": "Details_Geographic-Unit",
}

# Every asset of the location and the group that shows where it sits in the flow.
ASSET_GROUPS = {
    "harvested_catalog": "harvest",
    "catalog_snapshot": "catalog",
    "dataset_assessments": "metrics",
    "plan_metrics": "metrics",
    "missing_metadata": "board",
    "stale_datasets": "board",
    "agency_scorecard": "board",
    "catalog_changes": "board",
    "whole_night": "board",
    "content_date_probes": "probes",
    "layer_date_probes": "probes",
    "link_probes": "probes",
    "probe_plan_metrics": "metrics",
    "broken_links": "board",
    "silently_stale": "board",
    "board_readers_copy": "board",
    "board_report": "report",
    "warehouse_backup": "backup",
    "board_digest": "delivery",
    "agency_digests": "delivery",
}

# NYC Open Data: a real Socrata portal whose custom-metadata keys differ from data.ct.gov's.
NYC_PORTAL = Portal(
    name="nyc",
    kind="socrata",
    url="https://data.cityofnewyork.us",
    custom_fields={
        "agency": "Dataset-Information_Agency",
        "update_frequency": "Update_Update-Frequency",
    },
)


def realdata(relative: str) -> Path:
    path = REALDATA / relative
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the tests read real catalog responses from ../shared/realdata "
            "(or CTDATA_SHARED_DIR/realdata)"
        )
    return path


# Debian's Chromium, which the tests look at pages in (Playwright drives it).
CHROMIUM = Path(os.environ.get("CTDATA_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def load_realdata(relative: str) -> Any:
    return json.loads(realdata(relative).read_text(encoding="utf-8"))


def real_socrata_results() -> list[dict[str, Any]]:
    """The 27 real Discovery API results saved from NYC, Chicago/NY State and the global catalog."""
    results = []
    for relative in SOCRATA_DISCOVERY_FILES:
        results.extend(load_realdata(relative)["results"])
    return results


def four_by_four(number: int) -> str:
    alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
    text = ""
    for _ in range(8):
        number, digit = divmod(number, len(alphabet))
        text = alphabet[digit] + text
    return f"{text[:4]}-{text[4:]}"


def socrata_catalog(
    count: int,
    *,
    domain: str = "data.ct.gov",
    datasets_only: bool = False,
    start: int = 0,
    max_columns: int | None = None,
) -> list[dict[str, Any]]:
    """`count` real Discovery API results, cycled, each with a new id, owned by `domain`, with
    data.ct.gov's custom-metadata keys. `datasets_only` makes every one an in-scope dataset."""
    templates = real_socrata_results()
    records = []
    for index in range(start, start + count):
        record = copy.deepcopy(templates[index % len(templates)])
        resource = record["resource"]
        resource["id"] = four_by_four(index)
        if datasets_only:
            resource.update(type="dataset", provenance="official", parent_fxf=[])
        if max_columns is not None:
            for key in [k for k in resource if k.startswith("columns_")]:
                resource[key] = resource[key][:max_columns]
        record["metadata"]["domain"] = domain
        for entry in record["classification"].get("domain_metadata", []):
            entry["key"] = CT_KEYS.get(entry["key"], entry["key"])
        record["permalink"] = f"https://{domain}/d/{resource['id']}"
        records.append(record)
    return records


def fixed_source(payload: Any, instant: datetime | None = None) -> Callable:
    """A PortalServer source answering the same catalog for any date (a live-looking portal),
    or, for an as-of request, as of 02:00 New York on the date asked."""

    def source(as_of: date | None) -> tuple[Any, datetime]:
        if as_of is not None:
            return payload, night_instant(as_of)
        return payload, instant or datetime.now(UTC)

    return source


def nightly_source(payload_for: Callable[[date], Any]) -> Callable:
    """A PortalServer source whose catalog depends on the night asked for."""

    def source(as_of: date | None) -> tuple[Any, datetime]:
        night = as_of or datetime.now(UTC).date()
        return payload_for(night), (night_instant(night) if as_of else datetime.now(UTC))

    return source


@contextmanager
def serve(
    kind: str, payload: Any, *, as_of_enabled: bool = True, hook: Hook | None = None
) -> Iterator[PortalServer]:
    source = payload if callable(payload) else fixed_source(payload)
    with PortalServer(kind, source, as_of_enabled=as_of_enabled, hook=hook) as server:
        yield server


def portal_entry(name: str, server: PortalServer, **options: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": server.kind, "url": server.url}
    if server.kind == "socrata":
        entry.setdefault("domain", "data.ct.gov")
        entry["custom_fields"] = dict(CT_CUSTOM_FIELDS)
    # Not probed unless the test asks (`probes={...}`): real records name real hosts (their
    # attribution links), and tests never reach the internet.
    entry.update({"timeout_seconds": 10, "max_retries": 2, "probes": {"enabled": False}, **options})
    return entry


def write_portal_file(folder: Path, entries: list[dict[str, Any]], **top: Any) -> Path:
    path = folder / "portals.yaml"
    path.write_text(yaml.safe_dump({"portals": entries, **top}, sort_keys=False), encoding="utf-8")
    return path


def settings_for(folder: Path, portals_file: Path, lake: Lake | None = None) -> Settings:
    return Settings(
        db_path=folder / "data" / "ctdata.duckdb",
        report_dir=folder / "reports",
        portals_file=portals_file,
        staging_dir=folder / "data" / "staging",
        harvest_retries=0,
        harvest_retry_delay_seconds=0,
        lake=lake,
    )


class Pipeline:
    """The real definitions for a test portal file, run the way `ctdata nightly` runs them."""

    def __init__(
        self, folder: Path, entries: list[dict[str, Any]], lake: Lake | None = None, **top: Any
    ) -> None:
        self.folder = folder
        self.portals_file = write_portal_file(folder, entries, **top)
        self.settings = settings_for(folder, self.portals_file, lake)
        self.defs = build_definitions(
            self.settings,
            PortalFileResource(path=str(self.portals_file)),
            LivePortalClient(),
        )

    def run(
        self, instance: dg.DagsterInstance, night: date, *portals: str, probes: bool = False
    ) -> list[NightResult]:
        """A run per portal; `probes`: then its probe run, as `ctdata nightly` does."""
        nights = [(night, portal) for portal in portals]
        return run_nights(self.defs, nights, instance, "ERROR", probes=probes)

    def run_ok(
        self, instance: dg.DagsterInstance, night: date, *portals: str, probes: bool = False
    ) -> None:
        for result in self.run(instance, night, *portals, probes=probes):
            assert result.success, f"{result.portal} {result.snapshot_date}: {result.reason}"

    def run_whole_night_ok(self, instance: dg.DagsterInstance, night: date, *portals: str) -> None:
        """The night of `portals` in one run (`ctdata nightly --one-run`), then its report."""
        for result in run_whole_night(self.defs, night, portals, instance, "ERROR", probed=()):
            assert result.success, f"{result.portal} {result.snapshot_date}: {result.reason}"

    def report_ok(self, instance: dg.DagsterInstance, night: date) -> None:
        """The night's report job, in this process, which must succeed."""
        job = self.defs.resolve_job_def(REPORT_JOB)
        assert job.execute_in_process(partition_key=night.isoformat(), instance=instance).success

    @property
    def db_path(self) -> Path:
        return self.settings.db_path


# --- hand-built nights for the metric tests -------------------------------------------------

NYC_TEMPLATE = "socrata/catalog_v1_data.cityofnewyork.us_limit7_2025-04-27.json"
FCC_TEMPLATE = "dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-02-04.json"


def socrata_record(
    asset_id: str,
    *,
    title: str = "Accidental Drug Related Deaths by Town",
    description: str | None = None,
    tags: list[str] | None = None,
    category: str | None = "Health and Human Services",
    agency: str | None = "Department of Public Health",
    frequency: str | None = "Annually",
    license: str | None = "Public Domain",
    data_updated_at: str | None = "2026-01-01T00:00:00.000Z",
    **resource: Any,
) -> dict[str, Any]:
    """A real Discovery API result (NYC's first, re-keyed to data.ct.gov) with the fields a
    metric reads set by hand. Extra keyword arguments override `resource` fields."""
    record = copy.deepcopy(load_realdata(NYC_TEMPLATE)["results"][0])
    defaults = {
        "id": asset_id,
        "name": title,
        "description": description if description is not None else "Deaths " * 20,
        "data_updated_at": data_updated_at,
        "updatedAt": data_updated_at,
        "metadata_updated_at": "2026-01-01T00:00:00.000Z",
        "publication_date": "2020-01-01T00:00:00.000Z",
        "createdAt": "2015-01-01T00:00:00.000Z",
        "provenance": "official",
        "parent_fxf": [],
        "type": "dataset",
    }
    record["resource"].update({**defaults, **resource})
    classification = record["classification"]
    classification["domain_tags"] = ["overdose", "ct"] if tags is None else tags
    if category is None:
        classification.pop("domain_category", None)
    else:
        classification["domain_category"] = category
    custom = {"Agency_Agency": agency, "Details_Update-Frequency": frequency}
    classification["domain_metadata"] = [
        {"key": key, "value": value} for key, value in custom.items() if value is not None
    ]
    record["metadata"] = {"domain": "data.ct.gov"}
    if license is not None:
        record["metadata"]["license"] = license
    record["permalink"] = f"https://data.ct.gov/d/{asset_id}"
    return record


def dcat_dataset(identifier: str, **fields: Any) -> dict[str, Any]:
    """A real data.json dataset (FCC's first) with the fields a metric reads set by hand; a field
    given as None is removed."""
    dataset = copy.deepcopy(load_realdata(FCC_TEMPLATE)["dataset"][0])
    dataset.update(identifier=identifier, **fields)
    return {key: value for key, value in dataset.items() if value is not None}


def store_night(
    conn: Any,
    portal: Any,
    night: date,
    records: list[dict[str, Any]],
    snapshot_time: datetime | None = None,
) -> None:
    """Store hand-built records as the portal's snapshot of `night`, as the catalog step does."""
    from ctdata_pipeline.catalog.write import store_records

    store_records(conn, portal, night, records, source="test", snapshot_time=snapshot_time)


def normalized_rows(portal: Portal, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raw records through the catalog step's own staging and normalization (DuckDB, in
    memory): their rows of catalog.assets' columns, in the order given."""
    import duckdb

    from ctdata_pipeline.catalog.schema import ensure_schema
    from ctdata_pipeline.catalog.stage import STAGED, STAGED_VERSIONS, stage_records
    from ctdata_pipeline.catalog.write import record_asset_id

    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        ensure_schema(conn)
        ids = [record_asset_id(portal, record) for record in records]
        stage_records(conn, portal, zip(ids, records, strict=True))
        cursor = conn.execute(
            f"SELECT s.asset_id, v.* FROM {STAGED} AS s JOIN {STAGED_VERSIONS} AS v "
            "USING (record_hash)"
        )
        names = [column[0] for column in cursor.description]
        by_id = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
    finally:
        conn.close()
    return [by_id[asset_id] for asset_id in ids]


def normalized(portal: Portal, record: dict[str, Any]) -> dict[str, Any]:
    """One raw record's catalog row (see normalized_rows)."""
    return normalized_rows(portal, [record])[0]


def frequency_mapped(row: dict[str, Any]) -> bool:
    """False when a non-empty update frequency maps to no FR-0 code."""
    return row["update_frequency"] != "unknown" or row["update_frequency_raw"] is None


def runs_differing(db_path: Path) -> list[tuple]:
    """Where catalog.version_runs differs from a rebuild from the snapshots (none: [])."""
    import duckdb

    from ctdata_pipeline.catalog.version_runs import RUNS_DIFFER_SQL

    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return conn.execute(RUNS_DIFFER_SQL, {"portal": None}).fetchall()
    finally:
        conn.close()


def metrics_of(conn: Any, portal: str, night: date, agency: str | None = None) -> dict[str, Any]:
    """metric -> (numerator, denominator, value, note) for the whole portal or one agency."""
    rows = conn.execute(
        "SELECT metric, numerator, denominator, value, note FROM board.plan_metrics "
        "WHERE portal = ? AND snapshot_date = ? AND agency IS NOT DISTINCT FROM ?",
        [portal, night, agency],
    ).fetchall()
    return {metric: tuple(rest) for metric, *rest in rows}


def assessed(conn: Any, portal: str, night: date) -> dict[str, dict[str, Any]]:
    """asset_id -> its row of metrics.datasets."""
    cursor = conn.execute(
        "SELECT * FROM metrics.datasets WHERE portal = ? AND snapshot_date = ?", [portal, night]
    )
    columns = [column[0] for column in cursor.description]
    return {row[2]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def query(db_path: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    """Read the pipeline's DuckDB file the way another tool would: read-only, then close."""
    import duckdb

    conn = duckdb.connect(str(db_path), read_only=True)
    try:
        return conn.execute(sql, params or []).fetchall()
    finally:
        conn.close()


CTDATA = Path(sys.executable).with_name("ctdata")


def database_contents(path: Path) -> dict[str, list[tuple]] | None:
    """Every row of every table of the pipeline's DuckDB file (None if there is no file): what
    "nothing was lost" is measured against. `loaded_at` is left out: it records when a night
    was written, and a refused night writes nothing."""
    import duckdb

    if not path.exists():
        return None
    conn = duckdb.connect(str(path), read_only=True)
    try:
        return warehouse_contents(conn)
    finally:
        conn.close()


def lake_contents(lake: Lake) -> dict[str, list[tuple]]:
    """database_contents of a DuckLake."""
    from ctdata_pipeline.warehouse import connect_lake

    conn = connect_lake(lake, read_only=True)
    try:
        return warehouse_contents(conn)
    finally:
        conn.close()


def warehouse_contents(conn: Any) -> dict[str, list[tuple]]:
    """Every row of every table of the warehouse `conn` uses (not of the DuckLake's own
    catalog tables, attached beside it)."""
    tables = conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_type = 'BASE TABLE' AND table_catalog = current_database() ORDER BY ALL"
    ).fetchall()
    return {
        table: conn.execute(
            f"SELECT * {'EXCLUDE (loaded_at)' if table == 'catalog.snapshots' else ''} "
            f"FROM {table} ORDER BY ALL"
        ).fetchall()
        for (table,) in tables
    }


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below a folder (a report folder) by relative path, with its bytes."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def ctdata_environment(**env: str) -> dict[str, str]:
    """This process's environment without any ctdata, Dagster or Socrata setting, plus `env`."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CTDATA_", "DAGSTER_HOME", "SOCRATA_"))
    }
    environment.update(env)
    return environment


def run_ctdata(
    cwd: Path, *args: str, prefix: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it: a fresh environment but for `env`;
    `prefix` runs it through another command (setpriv, to run without root's overrides)."""
    return subprocess.run(
        [*prefix, str(CTDATA), *args],
        cwd=cwd,
        env=ctdata_environment(**env),
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


# --- a stored last night, for the fault tests -------------------------------------------------

GOOD_ASSETS = 60  # last night's Socrata portal "ct"
GOOD_DATASETS = 40  # last night's DCAT portal "hub"


def good_feed() -> dict[str, Any]:
    return {"dataset": [dcat_dataset(f"https://data.example/d/{n}") for n in range(GOOD_DATASETS)]}


def build_last_night(folder: Path) -> date:
    """Store last night of two portals in `folder` (snapshots, metrics, board tables, report),
    the way `ctdata nightly` would have; return that night."""
    from ctdata_pipeline.partitions import today_in_new_york

    last_night = today_in_new_york() - timedelta(days=1)
    with (
        serve("socrata", socrata_catalog(GOOD_ASSETS)) as socrata,
        serve("dcat", good_feed()) as hub,
    ):
        pipeline = Pipeline(
            folder, [portal_entry("ct", socrata, as_of=True), portal_entry("hub", hub, as_of=True)]
        )
        with dg.instance_for_test() as instance:
            pipeline.run_ok(instance, last_night, "ct", "hub")
            pipeline.report_ok(instance, last_night)
    return last_night


@dataclass
class History:
    """A folder holding a good last night, and everything it held, to compare against."""

    folder: Path
    last_night: date
    tables: dict[str, list[tuple]]
    reports: dict[str, bytes]

    @classmethod
    def copied_from(cls, template: Path, folder: Path, last_night: date) -> History:
        for part in ("data", "reports"):
            # Links kept: the readers' copy's `current` is a symlink.
            shutil.copytree(template / part, folder / part, symlinks=True)
        db_path = folder / "data" / "ctdata.duckdb"
        contents = database_contents(db_path)
        assert contents is not None
        return cls(folder, last_night, contents, files_under(folder / "reports"))

    @property
    def db_path(self) -> Path:
        return self.folder / "data" / "ctdata.duckdb"

    def tonight(
        self, instance: dg.DagsterInstance, night: date, entry: dict[str, Any]
    ) -> tuple[bool, str]:
        """Tonight's nightly job for the one portal of `entry`: (succeeded, reason)."""
        pipeline = Pipeline(self.folder, [entry])
        [result] = pipeline.run(instance, night, entry["name"])
        return result.success, result.reason

    def assert_nothing_lost(self) -> None:
        """Every row of every table and every report file exactly as before."""
        assert database_contents(self.db_path) == self.tables
        assert files_under(self.folder / "reports") == self.reports

    def assert_last_night_untouched(self) -> None:
        """Tonight may have been added; last night's rows are as they were in every table
        (tables keyed by night start with snapshot_date), and no row of the others (stored
        versions) was lost."""
        now = database_contents(self.db_path)
        assert now is not None
        for table, rows in self.tables.items():
            if table == "catalog.version_runs":
                # Derived from the snapshots (tonight extends last night's runs): they must
                # match the snapshots as stored, whatever happened tonight.
                assert runs_differing(self.db_path) == []
            elif rows and isinstance(rows[0][0], date):
                before = [row for row in rows if row[0] == self.last_night]
                assert [row for row in now[table] if row[0] == self.last_night] == before, table
            else:
                assert [row for row in rows if row not in now[table]] == [], table


def serious_accessibility_problems(page: Any, context: str | None = None) -> list[tuple]:
    """axe-core's serious and critical violations on the open page (or within `context`, a
    CSS selector), each as (rule, impact, the first three nodes); asserts axe ran its rules,
    colour contrast among them."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, context=context) if context else Axe().run(page)
    passed = {rule["id"] for rule in results.response["passes"]}
    assert passed, "axe ran no rule"
    if context is None:
        assert "color-contrast" in passed
    return [
        (v["id"], v["impact"], [node["target"] for node in v["nodes"][:3]])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
