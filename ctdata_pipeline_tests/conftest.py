import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from filelock import FileLock
from playwright.sync_api import Browser, sync_playwright

from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.services import Postgres, Redis, running_postgres, running_redis
from ctdata_pipeline_tests.smtp_servers import Servers
from ctdata_pipeline_tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    History,
    build_last_night,
    run_ctdata,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the configuration they set themselves."""
    for name in (
        "SOCRATA_APP_TOKEN",
        "CTDATA_DB",
        "CTDATA_REPORT_DIR",
        "CTDATA_PORTALS",
        "CTDATA_STAGING_DIR",
        "CTDATA_DEPLOYMENT",
        "CTDATA_DEMO_PEERS",
        "CTDATA_HARVEST_RETRIES",
        "CTDATA_HARVEST_RETRY_DELAY",
        "CTDATA_PUBLISH_DIR",
        "CTDATA_LOCK_WAIT_SECONDS",
        "CTDATA_BACKUP_DIR",
        "CTDATA_BACKUP_KEEP",
        "CTDATA_NIGHTLY_AT",
        "SOCRATA_API_KEY_ID",
        "SOCRATA_API_KEY_SECRET",
        "CTDATA_RECIPIENTS",
        "CTDATA_OUTBOX_DIR",
        "CTDATA_SMTP_HOST",
        "CTDATA_SMTP_PORT",
        "CTDATA_SMTP_SECURITY",
        "CTDATA_SMTP_USER",
        "CTDATA_SMTP_PASSWORD",
        "CTDATA_SMTP_TIMEOUT",
        "CTDATA_SMTP_CA_FILE",
        "CTDATA_MAIL_FROM",
        "CTDATA_WAREHOUSE",
        "CTDATA_WAREHOUSE_DATA",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per test module: what people look at is looked at in a browser."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: these tests open pages in Chromium "
            "(Debian: apt-get install -y chromium; or set CTDATA_CHROMIUM)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def today() -> date:
    return today_in_new_york()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a fresh pipeline database file, opened as the pipeline opens it."""
    connection = connect(tmp_path / "ctdata.duckdb")
    yield connection
    connection.close()


@dataclass(frozen=True)
class DemoRun:
    folder: Path
    completed: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`ctdata demo` exactly as the README runs it, once per test session, in a fresh folder.

    Shared by the session's xdist workers (the first to ask runs it, the others wait for it and
    read its output): the tests only read the demo's folder, and the run is the suite's
    costliest step."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's base is inside the session's
        shared = shared.parent
    folder, answer = shared / "demo", shared / "demo.json"
    with FileLock(shared / "demo.lock"):
        if not answer.exists():
            folder.mkdir()
            completed = run_ctdata(folder, "demo")
            answer.write_text(
                json.dumps([completed.returncode, completed.stdout, completed.stderr]),
                encoding="utf-8",
            )
        returncode, stdout, stderr = json.loads(answer.read_text(encoding="utf-8"))
    completed = subprocess.CompletedProcess(["ctdata", "demo"], returncode, stdout, stderr)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return DemoRun(folder, completed)


@pytest.fixture(scope="session")
def last_night_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, date]:
    """Last night of two portals, stored and reported: built once per session."""
    folder = tmp_path_factory.mktemp("last-night")
    return folder, build_last_night(folder)


@pytest.fixture
def history(last_night_template: tuple[Path, date], tmp_path: Path) -> History:
    """This test's own copy of a good last night ("ct", Socrata; "hub", DCAT)."""
    template, last_night = last_night_template
    return History.copied_from(template, tmp_path, last_night)


@pytest.fixture
def smtp_servers() -> Iterator[Servers]:
    """Real SMTP servers on loopback (aiosmtpd), started by the test, stopped after it."""
    servers = Servers()
    yield servers
    for controller in servers.running.values():
        controller.stop(no_assert=True)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of the test's own (services.running_postgres)."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[Redis]:
    """A redis-server of the test's own on loopback (services.running_redis)."""
    with running_redis() as server:
        yield server
