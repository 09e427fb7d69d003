"""The metrics as open data: a night's board.plan_metrics and agency scorecard upserted into
Socrata datasets (`publish:`), against a loopback publishing server that keeps rows by their
row identifier and answers as Socrata does (the upsert counts, 400 with its error JSON, 401,
429 with Retry-After). Runs are real Dagster runs on the `history` fixture's stored night."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dagster as dg
import duckdb
import pytest

from ctdata_pipeline.delivery.model import OPEN_DATA_PUBLICATION
from ctdata_pipeline.delivery.open_data import COLUMNS, PublishError, night_rows, row_id
from ctdata_pipeline.jobs import REPORT_JOB
from ctdata_pipeline.portals import PortalFileError, load_portal_file
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    Pipeline,
    database_contents,
    files_under,
    query,
)

KEY_ID = "ctdata-publisher"
KEY_SECRET = "s3cret-KEY-never-logged-7f1c"
TOKEN = "app-TOKEN-never-logged-91ab"
METRICS_ID = "ctpm-2026"
SCORECARD_ID = "ctsc-2026"
PUBLICATION = dg.AssetKey(OPEN_DATA_PUBLICATION)
RESOURCE_PATH = re.compile(r"^/resource/([a-z0-9]{4}-[a-z0-9]{4})\.json$")
WHERE_NIGHT = re.compile(r"^snapshot_date = '((?:[^']|'')*)'$")


class SocrataPublisher:
    """A loopback Socrata domain holding datasets (rows by row_id), answering
    POST /resource/<id>.json (upsert, with `:deleted`) and GET with $select, $where (the
    night), $order, $limit, $offset; every request needs the key pair's basic auth."""

    def __init__(self, columns: dict[str, tuple[str, ...]] | None = None) -> None:
        columns = columns or {
            METRICS_ID: tuple(name for name, _ in COLUMNS["plan_metrics"]),
            SCORECARD_ID: tuple(name for name, _ in COLUMNS["agency_scorecard"]),
        }
        self.columns = columns
        self.types = {
            name: kind
            for table in COLUMNS.values()
            for name, kind in table  # by field name
        }
        self.rows: dict[str, dict[str, dict[str, Any]]] = {dataset: {} for dataset in columns}
        self.requests: list[dict[str, Any]] = []
        self.throttle_posts = 0  # the next N POSTs are answered 429, Retry-After: 1
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.answer(self, "GET", None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.answer(self, "POST", body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> SocrataPublisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def posts(self) -> list[dict[str, Any]]:
        return [request for request in self.requests if request["method"] == "POST"]

    def answer(self, handler: BaseHTTPRequestHandler, method: str, body: bytes | None) -> None:
        parts = urlsplit(handler.path)
        params = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append(
                {"method": method, "path": parts.path, "params": params, "headers": handler.headers}
            )
            status, payload, headers = self.respond(handler, method, parts.path, params, body)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def respond(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        path: str,
        params: dict[str, str],
        body: bytes | None,
    ) -> tuple[int, Any, dict[str, str]]:
        pair = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {pair}":
            # Echoes the app token, as a portal may: the pipeline must not repeat it.
            token = handler.headers.get("X-App-Token")
            return 401, error("authentication_required", f"Invalid credentials (token {token})"), {}
        matched = RESOURCE_PATH.match(path)
        if not matched or matched.group(1) not in self.rows:
            return 404, error("not_found", "Not found"), {}
        dataset = matched.group(1)
        if method == "GET":
            return self.select(dataset, params)
        if self.throttle_posts:
            self.throttle_posts -= 1
            return 429, error("too_many_requests", "Too many requests"), {"Retry-After": "1"}
        return self.upsert(dataset, json.loads(body or b"null"))

    def select(self, dataset: str, params: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        rows = list(self.rows[dataset].values())
        if "$where" in params:
            matched = WHERE_NIGHT.match(params["$where"])
            if not matched:
                return 400, error("query.soql.invalid", f"Could not parse {params['$where']}"), {}
            night = datetime.fromisoformat(matched.group(1).replace("''", "'"))
            rows = [row for row in rows if datetime.fromisoformat(row["snapshot_date"]) == night]
        if params.get("$order") == "row_id":
            rows.sort(key=lambda row: row["row_id"])
        offset = int(params.get("$offset", 0))
        rows = rows[offset : offset + int(params.get("$limit", 1000))]
        if "$select" in params:
            rows = [{name: row.get(name) for name in params["$select"].split(",")} for row in rows]
        return 200, [self.as_socrata_writes_it(row) for row in rows], {}

    def as_socrata_writes_it(self, row: dict[str, Any]) -> dict[str, Any]:
        """SODA 2.1's JSON: numbers as strings, null fields left out."""
        shown = {}
        for name, value in row.items():
            if value is None:
                continue
            numeric = self.types.get(name) == "number" and not isinstance(value, bool)
            shown[name] = str(value) if numeric else value
        return shown

    def upsert(self, dataset: str, payload: Any) -> tuple[int, Any, dict[str, str]]:
        if not isinstance(payload, list):
            return 400, error("invalid_request", "Expected a JSON array of rows"), {}
        known = set(self.columns[dataset])
        for row in payload:
            unknown = sorted(set(row) - known - {":deleted"})
            if unknown:
                return 400, error("invalid_request", f"No such column: {unknown[0]}"), {}
            if not isinstance(row.get("row_id"), str):
                return 400, error("invalid_request", "A row has no row identifier (row_id)"), {}
            for name, value in row.items():
                kind = self.types.get(name)
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if value is not None and kind == "number" and not number:
                    return 400, error("invalid_request", f"Not a number in {name}: {value}"), {}
        counts = {"Rows Created": 0, "Rows Updated": 0, "Rows Deleted": 0, "Errors": 0}
        stored = self.rows[dataset]
        for row in payload:
            key = row["row_id"]
            if row.get(":deleted"):
                if stored.pop(key, None) is None:
                    counts["Errors"] += 1
                else:
                    counts["Rows Deleted"] += 1
            elif key in stored:
                stored[key].update(row)
                counts["Rows Updated"] += 1
            else:
                stored[key] = dict(row)
                counts["Rows Created"] += 1
        by_id = counts["Rows Updated"] + counts["Rows Deleted"]
        return 200, {"By RowIdentifier": by_id, **counts, "By SID": 0}, {}


def error(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "error": True, "message": message}


@pytest.fixture(autouse=True)
def socrata_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCRATA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("SOCRATA_API_KEY_SECRET", KEY_SECRET)
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)


@pytest.fixture
def home_instance(tmp_path: Path):
    """An instance whose files live under the test's folder, to scan them for secrets."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


def history_pipeline(history, publisher: SocrataPublisher, **publish: Any) -> Pipeline:
    """The history fixture's portals ("ct", "hub": nothing is harvested) with `publish:`."""
    entries = [
        {
            "name": "ct",
            "kind": "socrata",
            "url": "http://127.0.0.1:9",
            "domain": "data.ct.gov",
            "custom_fields": dict(CT_CUSTOM_FIELDS),
            "as_of": True,
            "probes": {"enabled": False},
        },
        {
            "name": "hub",
            "kind": "dcat",
            "url": "http://127.0.0.1:9/data.json",
            "as_of": True,
            "probes": {"enabled": False},
        },
    ]
    settings = {
        "domain": publisher.url,
        "plan_metrics": METRICS_ID,
        "agency_scorecard": SCORECARD_ID,
        "max_retries": 2,
        "timeout_seconds": 10,
        **publish,
    }
    return Pipeline(history.folder, entries, publish=settings)


def publish(pipeline: Pipeline, instance: dg.DagsterInstance, night: date):
    """The report job's publication step alone, for one night."""
    job = pipeline.defs.resolve_job_def(REPORT_JOB)
    return job.execute_in_process(
        partition_key=night.isoformat(),
        instance=instance,
        asset_selection=[PUBLICATION],
        raise_on_error=False,
    )


def expected_rows(db_path: Path, table: str, night: date) -> dict[str, dict[str, Any]]:
    """The night's rows of a board table as the dataset should hold them, by row_id."""
    names = [name for name, _ in COLUMNS[table] if name != "row_id"]
    key = {"plan_metrics": ("portal", "agency", "metric"), "agency_scorecard": ("portal", "agency")}
    rows = {}
    for values in query(
        db_path, f"SELECT {', '.join(names)} FROM board.{table} WHERE snapshot_date = ?", [night]
    ):
        record = dict(zip(names, values, strict=True))
        record["snapshot_date"] = f"{night}T00:00:00.000"
        for name, value in record.items():
            if isinstance(value, float) and value != value:  # NaN: null on the portal
                record[name] = None
        identifier = "|".join([str(night), *(record[part] or "" for part in key[table])])
        rows[identifier] = {"row_id": identifier, **record}
    return rows


def failure_description(result) -> str:
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.user_failure_data.description


def materialization_metadata(result) -> dict[str, Any]:
    [materialization] = result.asset_materializations_for_node(OPEN_DATA_PUBLICATION)
    return {key: value.value for key, value in materialization.metadata.items()}


def test_the_report_job_publishes_the_nights_rows_and_a_rerun_replaces_them(history, home_instance):
    night = history.last_night
    with SocrataPublisher() as publisher:
        pipeline = history_pipeline(history, publisher, batch_size=40)
        pipeline.report_ok(home_instance, night)  # the whole after-night job, as the sensor runs it
        metrics = expected_rows(history.db_path, "plan_metrics", night)
        scorecard = expected_rows(history.db_path, "agency_scorecard", night)
        assert len(metrics) > 40 and {row["portal"] for row in metrics.values()} == {"ct", "hub"}
        assert publisher.rows[METRICS_ID] == metrics
        assert publisher.rows[SCORECARD_ID] == scorecard
        first_posts = len(publisher.posts)
        assert first_posts == -(-len(metrics) // 40) + -(-len(scorecard) // 40)  # in batches

        again = publish(pipeline, home_instance, night)
        assert again.success
        assert publisher.rows[METRICS_ID] == metrics  # the same rows, none twice
        assert publisher.rows[SCORECARD_ID] == scorecard
    metadata = materialization_metadata(again)
    assert metadata["plan_metrics: rows"] == len(metrics)
    assert metadata["plan_metrics: rows created"] == 0
    assert metadata["plan_metrics: rows updated"] == len(metrics)
    assert metadata["plan_metrics: rows deleted"] == 0
    assert metadata["agency_scorecard: rows updated"] == len(scorecard)
    assert metadata["plan_metrics: dataset"] == f"{publisher.url}/d/{METRICS_ID}"
    # Every request carried the key pair and the app token; the night's row_ids were read
    # back, page by page, before each upsert.
    assert {request["headers"]["X-App-Token"] for request in publisher.requests} == {TOKEN}
    reads = [request["params"] for request in publisher.requests if request["method"] == "GET"]
    assert reads[0]["$where"] == f"snapshot_date = '{night}T00:00:00.000'"
    assert reads[0]["$select"] == "row_id" and reads[0]["$limit"] == "40"


def test_a_night_recomputed_with_fewer_rows_deletes_the_gone_ones_only(history, instance):
    night = history.last_night
    with SocrataPublisher() as publisher:
        pipeline = history_pipeline(history, publisher, batch_size=40)  # the ids read in pages
        older = {"row_id": "2025-01-01|ct||MD-1", "snapshot_date": "2025-01-01T00:00:00.000"}
        publisher.rows[METRICS_ID][older["row_id"]] = dict(older)  # another night: kept
        assert publish(pipeline, instance, night).success
        [(agency,)] = query(
            history.db_path,
            "SELECT agency FROM board.plan_metrics WHERE snapshot_date = ? AND portal = 'ct' "
            "AND agency IS NOT NULL ORDER BY agency LIMIT 1",
            [night],
        )
        conn = duckdb.connect(str(history.db_path))
        try:
            gone = conn.execute(
                "DELETE FROM board.plan_metrics WHERE snapshot_date = ? AND agency = ?",
                [night, agency],
            ).fetchone()[0]
        finally:
            conn.close()
        assert gone > 0
        result = publish(pipeline, instance, night)
        assert result.success
        metrics = expected_rows(history.db_path, "plan_metrics", night)
        assert publisher.rows[METRICS_ID] == {older["row_id"]: older, **metrics}
        assert not any(row.get("agency") == agency for row in publisher.rows[METRICS_ID].values())
    metadata = materialization_metadata(result)
    assert metadata["plan_metrics: rows deleted"] == gone
    assert metadata["plan_metrics: rows created"] == 0


def test_a_429_is_waited_out_and_the_upsert_sent_again(history, instance):
    night = history.last_night
    with SocrataPublisher() as publisher:
        pipeline = history_pipeline(history, publisher)
        publisher.throttle_posts = 1
        started = time.monotonic()
        result = publish(pipeline, instance, night)
        elapsed = time.monotonic() - started
        assert result.success
        assert elapsed >= 1.0  # Retry-After: 1
        # The throttled upsert went again: one more POST than datasets.
        assert len(publisher.posts) == 3
        assert publisher.rows[METRICS_ID] == expected_rows(history.db_path, "plan_metrics", night)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (
            "bad row",
            "dataset ctpm-2026: HTTP 400: No such column: note",
        ),
        (
            "wrong secret",
            "dataset ctpm-2026: HTTP 401: SOCRATA_API_KEY_ID/_SECRET refused (Invalid "
            "credentials (token [redacted]))",
        ),
        (
            "no key",
            "publishing to Socrata needs SOCRATA_API_KEY_ID and SOCRATA_API_KEY_SECRET (an API "
            "key of an account allowed to edit the datasets): SOCRATA_API_KEY_SECRET is not set",
        ),
    ],
)
def test_a_refused_publication_fails_in_one_line_and_changes_nothing(
    history, instance, monkeypatch, case, expected
):
    night = history.last_night
    # A metrics dataset created without its `note` column: Socrata refuses the rows (400).
    columns = {
        METRICS_ID: tuple(name for name, _ in COLUMNS["plan_metrics"] if name != "note"),
        SCORECARD_ID: tuple(name for name, _ in COLUMNS["agency_scorecard"]),
    }
    with SocrataPublisher(columns if case == "bad row" else None) as publisher:
        pipeline = history_pipeline(history, publisher)
        if case == "wrong secret":
            monkeypatch.setenv("SOCRATA_API_KEY_SECRET", "not-the-secret")
        if case == "no key":
            monkeypatch.delenv("SOCRATA_API_KEY_SECRET")
        before = database_contents(history.db_path)
        reports = files_under(history.folder / "reports")
        result = publish(pipeline, instance, night)
        requests = list(publisher.requests)
    assert not result.success
    description = failure_description(result)
    assert expected in description
    assert "\n" not in description and KEY_SECRET not in description and TOKEN not in description
    if case != "no key":
        assert description.startswith(f"publishing to {publisher.url} dataset {METRICS_ID}: ")
    else:
        assert requests == []  # nothing sent without the key pair
    assert publisher.rows == {METRICS_ID: {}, SCORECARD_ID: {}}
    assert database_contents(history.db_path) == before
    assert files_under(history.folder / "reports") == reports


def test_a_portal_that_does_not_answer_fails_in_one_line(history, instance):
    with SocrataPublisher() as publisher:
        pipeline = history_pipeline(history, publisher, max_retries=0)
    # The server is closed: nothing listens on its port any more.
    before = database_contents(history.db_path)
    result = publish(pipeline, instance, history.last_night)
    assert not result.success
    description = failure_description(result)
    assert description.startswith(
        f"publishing to {publisher.url} dataset {METRICS_ID}: connection failed ("
    )
    assert "\n" not in description
    assert database_contents(history.db_path) == before


def test_the_key_secret_and_app_token_reach_only_the_portal(
    history, home_instance, tmp_path, capfd
):
    night = history.last_night
    with SocrataPublisher() as publisher:
        pipeline = history_pipeline(history, publisher)
        assert publish(pipeline, home_instance, night).success
        publisher.throttle_posts = 3  # past max_retries: a failure quoting the portal's answer
        failed = publish(pipeline, home_instance, night)
        sent = list(publisher.requests)
    assert not failed.success
    assert "HTTP 429: Too many requests" in failure_description(failed)
    # They were sent: the token as its header, the pair as basic auth.
    assert {request["headers"]["X-App-Token"] for request in sent} == {TOKEN}
    events = [
        dg.serialize_value(record)
        for run in home_instance.get_runs()
        for record in home_instance.all_logs(run.run_id)
    ]
    assert len(events) > 20
    output = capfd.readouterr()
    # Run records, event and compute logs, the warehouse, the reports, the portal file.
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {path.suffix for path in written} >= {".db", ".duckdb", ".html", ".yaml"}
    pair = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    for secret in (KEY_SECRET, TOKEN, pair):
        assert not any(secret in event for event in events)
        assert secret not in output.out and secret not in output.err
        assert [path for path in written if secret.encode() in path.read_bytes()] == []


def test_the_publication_is_defined_only_with_publish(history):
    with SocrataPublisher() as publisher:
        with_publish = history_pipeline(history, publisher)
    keys = with_publish.defs.resolve_asset_graph().get_all_asset_keys()
    assert PUBLICATION in keys
    spec = with_publish.defs.resolve_assets_def(PUBLICATION).specs_by_key[PUBLICATION]
    assert spec.group_name == "delivery" and set(spec.kinds) == {"socrata"}
    assert dg.AssetKey("plan_metrics") in {dep.asset_key for dep in spec.deps}
    report_job = with_publish.defs.resolve_job_def(REPORT_JOB)
    assert PUBLICATION in report_job.asset_layer.executable_asset_keys
    (history.folder / "plain").mkdir()
    plain = [{"name": "x", "kind": "dcat", "url": "http://127.0.0.1:9/d.json"}]
    without = Pipeline(history.folder / "plain", plain)
    assert PUBLICATION not in without.defs.resolve_asset_graph().get_all_asset_keys()


def test_row_ids_are_deterministic_and_never_collide():
    assert row_id([date(2026, 12, 2), "ct", None, "MD-1"]) == "2026-12-02|ct||MD-1"
    assert row_id(["a|b", "c"]) != row_id(["a", "b|c"])
    assert row_id(["a\\", "|b"]) != row_id(["a\\|", "b"])


def test_a_nights_rows_are_json_ready_and_keyed_by_their_row_id():
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA board")
    conn.execute(
        "CREATE TABLE board.plan_metrics (snapshot_date DATE, portal VARCHAR, agency VARCHAR, "
        "metric_id VARCHAR, metric VARCHAR, numerator DOUBLE, denominator DOUBLE, value DOUBLE, "
        "metric_version INTEGER, unit VARCHAR, note VARCHAR)"
    )
    hostile = "Dept | of 'Quotes' <script>alert(1)</script>"
    conn.execute(
        "INSERT INTO board.plan_metrics VALUES "
        "('2026-12-02', 'ct', NULL, 'MD-1', 'pct_missing', 3, 10, 30.0, 2, 'percent', NULL),"
        "('2026-12-02', 'ct', ?, 'MD-1', 'pct_missing', 0, 0, 'NaN', 2, 'percent', 'none'),"
        "('2026-12-01', 'ct', NULL, 'MD-1', 'pct_missing', 1, 10, 10.0, 2, 'percent', NULL)",
        [hostile],
    )
    # In row_id order; the other night's row is not among them.
    [agency, portal_wide] = night_rows(conn, date(2026, 12, 2), ["plan_metrics"])["plan_metrics"]
    assert portal_wide == {
        "row_id": "2026-12-02|ct||pct_missing",
        "snapshot_date": "2026-12-02T00:00:00.000",
        "portal": "ct",
        "agency": None,
        "metric_id": "MD-1",
        "metric": "pct_missing",
        "numerator": 3.0,
        "denominator": 10.0,
        "value": 30.0,
        "metric_version": 2,
        "unit": "percent",
        "note": None,
    }
    assert agency["row_id"] == (
        "2026-12-02|ct|Dept \\| of 'Quotes' <script>alert(1)</script>|pct_missing"
    )
    assert agency["agency"] == hostile and agency["value"] is None  # NaN: null, valid JSON
    json.dumps([portal_wide, agency], allow_nan=False)
    conn.execute("INSERT INTO board.plan_metrics SELECT * FROM board.plan_metrics LIMIT 1")
    with pytest.raises(PublishError, match="more than one row keyed"):
        night_rows(conn, date(2026, 12, 2), ["plan_metrics"])


PORTALS = "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n"


def test_publish_is_off_when_absent_and_read_when_present(tmp_path):
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS, encoding="utf-8")
    assert load_portal_file(path).publish is None
    assert load_portal_file().publish is None  # the shipped file keeps it off
    path.write_text(
        "publish:\n  domain: https://data.ct.gov/\n  plan_metrics: abcd-1234\n" + PORTALS,
        encoding="utf-8",
    )
    publish = load_portal_file(path).publish
    assert publish is not None
    assert publish.domain == "https://data.ct.gov" and publish.netloc == "data.ct.gov"
    assert publish.datasets == {"plan_metrics": "abcd-1234"}
    assert (publish.batch_size, publish.timeout_seconds, publish.max_retries) == (5000, 120, 5)


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("{plan_metrics: abcd-1234}", "publish.domain: is required"),
        (
            "{domain: 'http://data.ct.gov', plan_metrics: abcd-1234}",
            "publish.domain: 'http://data.ct.gov' must use https:// (http:// only for "
            "127.0.0.1 or localhost)",
        ),
        (
            "{domain: 'https://data.ct.gov/resource', plan_metrics: abcd-1234}",
            "publish.domain: 'https://data.ct.gov/resource' must be scheme + host[:port] only",
        ),
        ("{domain: data.ct.gov, plan_metrics: abcd-1234}", "must start with https://"),
        (
            "{domain: 'https://data.ct.gov', plan_metrics: ABCD-12345}",
            "publish.plan_metrics: 'ABCD-12345' is not a Socrata dataset id such as abcd-1234",
        ),
        (
            "{domain: 'https://data.ct.gov'}",
            "publish: name at least one dataset: plan_metrics or agency_scorecard",
        ),
        (
            "{domain: 'https://data.ct.gov', agency_scorecard: abcd-1234, batch_size: 0}",
            "publish.batch_size: Input should be greater than or equal to 1",
        ),
        (
            "{domain: 'https://data.ct.gov', plan_metrics: abcd-1234, max_retries: 50}",
            "publish.max_retries: Input should be less than or equal to 20",
        ),
        (
            "{domain: 'https://data.ct.gov', plan_metrics: abcd-1234, timeout_seconds: 0}",
            "publish.timeout_seconds: Input should be greater than 0",
        ),
        (
            "{domain: 'https://data.ct.gov', plan_metrics: abcd-1234, api_key: x}",
            "publish.api_key: unknown key",
        ),
    ],
)
def test_a_bad_publish_section_gets_one_clear_error(tmp_path, section, expected):
    path = tmp_path / "portals.yaml"
    path.write_text(f"publish: {section}\n{PORTALS}", encoding="utf-8")
    with pytest.raises(PortalFileError) as raised:
        load_portal_file(path)
    message = str(raised.value)
    assert message.startswith(f"portal file {path}: ") and "\n" not in message
    assert expected in message
