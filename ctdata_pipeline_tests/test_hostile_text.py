"""Hostile text, the rows of the fault matrix not in test_report.py (markup and formulas in
titles): SQL metacharacters in every field that reaches a query, and the Socrata app token,
which must reach the portal and nothing else."""

from __future__ import annotations

import csv

from ctdata_pipeline.board.verify import verify
from ctdata_pipeline.demo.server import Reply, ServedRequest
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import (
    Pipeline,
    dcat_dataset,
    portal_entry,
    query,
    run_ctdata,
    serve,
    socrata_catalog,
    socrata_record,
    write_portal_file,
)

# Quotes that end a string literal, statements after it, comments, LIKE wildcards, escape
# characters, parameter markers and format placeholders: each must arrive as the text it is.
SQL_TEXT = [
    "Robert'); DROP TABLE catalog.snapshots; --",
    "x' OR '1'='1",
    '"; DELETE FROM board.plan_metrics; --',
    r"100% of _all_ \ data $1 ? :name {0} %s",
    "'; UPDATE board.plan_metrics SET value = 0; SELECT '",
]


def hostile_socrata_records() -> list[dict]:
    return [
        socrata_record(
            f"sql{n}-000{n}",
            title=f"{text} (title)",
            agency=f"{text} (agency)",
            category=f"{text} (category)",
            tags=[f"{text} (tag)", "plain"],
            frequency=f"{text} (frequency)",
            license=None,  # missing: the title is listed in board.missing_metadata
        )
        for n, text in enumerate(SQL_TEXT)
    ]


def hostile_dcat_feed() -> dict:
    return {
        "dataset": [
            dcat_dataset(
                f"{text} (identifier)",
                title=f"{text} (title)",
                publisher={"@type": "org:Organization", "name": f"{text} (publisher)"},
                keyword=[f"{text} (keyword)"],
                accrualPeriodicity=f"{text} (frequency)",
                license=None,
            )
            for text in SQL_TEXT
        ]
    }


def test_sql_metacharacters_in_every_field_arrive_as_text(tmp_path, instance, today):
    with (
        serve("socrata", hostile_socrata_records()) as socrata,
        serve("dcat", hostile_dcat_feed()) as hub,
    ):
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata), portal_entry("hub", hub)])
        pipeline.run_ok(instance, today, "ct", "hub")
    pipeline.report_ok(instance, today)

    stored = query(
        pipeline.db_path,
        "SELECT portal, asset_id, title, agency, category, tags, update_frequency_raw "
        "FROM catalog.assets ORDER BY portal, title",
    )
    expected_socrata = sorted(
        (
            "ct",
            f"sql{n}-000{n}",
            f"{t} (title)",
            f"{t} (agency)",
            f"{t} (category)",
            [f"{t} (tag)", "plain"],
            f"{t} (frequency)",
        )
        for n, t in enumerate(SQL_TEXT)
    )
    assert [row for row in stored if row[0] == "ct"] == sorted(
        expected_socrata, key=lambda row: row[2]
    )
    hub_rows = [row for row in stored if row[0] == "hub"]
    assert sorted(row[1] for row in hub_rows) == sorted(f"{t} (identifier)" for t in SQL_TEXT)
    assert sorted((row[2], row[3], row[5]) for row in hub_rows) == sorted(
        (f"{t} (title)", f"{t} (publisher)", [f"{t} (keyword)"]) for t in SQL_TEXT
    )

    # Per-agency metrics were grouped by the text, and nothing was executed: every table is
    # there and adds up.
    agencies = {
        agency
        for (agency,) in query(
            pipeline.db_path,
            "SELECT DISTINCT agency FROM board.plan_metrics WHERE agency IS NOT NULL",
        )
    }
    assert {f"{t} (agency)" for t in SQL_TEXT} | {f"{t} (publisher)" for t in SQL_TEXT} <= agencies
    conn = connect(pipeline.db_path, read_only=True)
    try:
        assert verify(conn).problems == 0
    finally:
        conn.close()

    # The work list in the report carries each title as written.
    with (tmp_path / "reports" / today.isoformat() / "missing_metadata.csv").open(
        encoding="utf-8", newline=""
    ) as handle:
        titles = {row["title"] for row in csv.DictReader(handle)}
    assert {f"{t} (title)" for t in SQL_TEXT} <= titles


# --- the app token ----------------------------------------------------------------------------

TOKEN = "ctdataTOKEN-4f9c2e7a1b"


def echo_the_token(request: ServedRequest) -> Reply:
    """A portal that refuses the token and, like some proxies, repeats the request back."""
    token = request.headers.get("X-App-Token", "")
    return Reply(
        status=401,
        body=f'{{"error": "invalid app token {token}", "token": "{token}"}}'.encode(),
        headers={"Content-Type": "application/json", "WWW-Authenticate": f"token={token}"},
    )


def test_the_app_token_reaches_the_portals_and_nothing_else(tmp_path):
    with (
        serve("socrata", socrata_catalog(30)) as accepting,
        serve("socrata", socrata_catalog(30), hook=echo_the_token) as echoing,
    ):
        portals = write_portal_file(
            tmp_path,
            [portal_entry("ct", accepting), portal_entry("echo", echoing, max_retries=0)],
        )
        completed = run_ctdata(
            tmp_path,
            "nightly",
            SOCRATA_APP_TOKEN=TOKEN,
            CTDATA_PORTALS=str(portals),
            CTDATA_HARVEST_RETRIES="0",
            DAGSTER_HOME=str(tmp_path / "dagster_home"),
        )
    for portal in (accepting, echoing):
        assert {request.headers.get("X-App-Token") for request in portal.requests} == {TOKEN}
    assert completed.returncode == 1
    assert "ct: ok" in completed.stdout
    assert completed.stderr.strip().splitlines()[-1].startswith("ctdata nightly: echo: HTTP 401")
    assert TOKEN not in completed.stdout and TOKEN not in completed.stderr
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    # Run records and event logs, compute logs, the database, the report.
    assert {path.suffix for path in written} >= {".db", ".out", ".err", ".duckdb", ".html", ".csv"}
    assert [path for path in written if TOKEN.encode() in path.read_bytes()] == []
