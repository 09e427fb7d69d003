"""Databases with history for the metric, board and report measurements.

A year of real nights of 100,000 datasets would take hours to harvest, so tonight is stored for
real (stage_records + write_snapshot) and the nights before it are synthesized in SQL, in the
storage layout the pipeline writes: a `catalog.snapshots` row per night, a
`catalog.snapshot_assets` row per asset and night, and for every asset one earlier version
(its data updated 30 days before) that it held until it changed, 1 to 100 nights ago (so about
1% of the assets change a night over the last 100 nights). `board.plan_metrics` gets every
night's values from tonight's, nudged, so the report has a year of trends to draw."""

from __future__ import annotations

import shutil
import time
from datetime import date
from pathlib import Path
from typing import Any

from benchmarks.catalog import PORTAL_NAME, BenchCatalog, bench_portal
from benchmarks.steps import store_naive_night, store_records_as_night

SYNTH_VERSIONS = """
CREATE OR REPLACE TEMP TABLE synth_before AS
SELECT m.version_id AS current_id, nextval('catalog.asset_version_ids') AS before_id,
       1 + hash(m.asset_id) % 100 AS changed_nights_ago
FROM catalog.snapshot_assets AS m
WHERE m.snapshot_date = $night AND m.portal = $portal;

INSERT INTO catalog.asset_versions BY NAME
SELECT * EXCLUDE (current_id, before_id, changed_nights_ago)
    REPLACE (before_id AS version_id, record_hash || '-before' AS record_hash,
             data_updated_at - INTERVAL 30 DAY AS data_updated_at)
FROM catalog.asset_versions AS v
JOIN synth_before AS b ON b.current_id = v.version_id;

INSERT INTO catalog.snapshots BY NAME
SELECT * EXCLUDE (n) REPLACE (
    (snapshot_date - n) AS snapshot_date, snapshot_time - to_days(n) AS snapshot_time,
    'synthetic' AS origin)
FROM catalog.snapshots
CROSS JOIN (SELECT range::INTEGER AS n FROM range(1, $nights))
WHERE snapshot_date = $night AND portal = $portal
ORDER BY snapshot_date;

INSERT INTO catalog.snapshot_assets BY NAME
SELECT (m.snapshot_date - n) AS snapshot_date, m.portal, m.asset_id,
       if(n >= b.changed_nights_ago, b.before_id, m.version_id) AS version_id,
       m.views_last_week, m.views_last_month, greatest(m.views_total - n, 0) AS views_total,
       m.downloads_total
FROM catalog.snapshot_assets AS m
JOIN synth_before AS b ON b.current_id = m.version_id
CROSS JOIN (SELECT range::INTEGER AS n FROM range(1, $nights))
WHERE m.snapshot_date = $night AND m.portal = $portal
ORDER BY 1;
"""

SYNTH_METRICS = """
INSERT INTO board.plan_metrics BY NAME
SELECT * EXCLUDE (n) REPLACE (
    (snapshot_date - n) AS snapshot_date,
    CASE WHEN unit = 'percent'
         THEN least(greatest(value + ((hash(metric, agency, n) % 7)::INTEGER - 3) * 0.1, 0), 100)
         ELSE value END AS value)
FROM board.plan_metrics
CROSS JOIN (SELECT range::INTEGER AS n FROM range(1, $nights))
WHERE snapshot_date = $night AND portal = $portal
ORDER BY 1;
"""


def _run(conn: Any, script: str, parameters: dict[str, Any]) -> None:
    for statement in filter(str.strip, script.split(";\n")):
        used = {name: value for name, value in parameters.items() if f"${name}" in statement}
        conn.execute(statement, used)


def prepare_metric_dbs(
    size: int, nights: int, night: str, one_db: str, many_db: str, naive_db: str
) -> dict[str, Any]:
    """Tonight stored for real in `one_db` (one night of history); the same plus `nights - 1`
    synthesized nights before it in `many_db`; tonight as a naive full copy in `naive_db`."""
    import duckdb
    import pandas as pd

    from ctdata_pipeline.board.publish import publish_night
    from ctdata_pipeline.catalog.version_runs import rebuild_version_runs
    from ctdata_pipeline.metrics.compute import compute_night
    from ctdata_pipeline.warehouse import connect

    started = time.perf_counter()
    tonight = date.fromisoformat(night)
    catalog = BenchCatalog(size, tonight, in_scope_only=True)
    portal = bench_portal()
    conn = connect(Path(one_db))
    report = store_records_as_night(conn, catalog.records, tonight, min_ratio=None)
    conn.close()
    naive = duckdb.connect(naive_db)
    store_naive_night(naive, pd.json_normalize(catalog.records), tonight)
    naive.close()
    del catalog

    shutil.copyfile(one_db, many_db)
    conn = connect(Path(many_db))
    parameters = {"night": tonight, "portal": PORTAL_NAME, "nights": nights}
    _run(conn, SYNTH_VERSIONS, parameters)
    rebuild_version_runs(conn, PORTAL_NAME)
    compute_night(conn, portal, tonight)
    publish_night(conn, PORTAL_NAME, tonight)
    _run(conn, SYNTH_METRICS, parameters)
    conn.execute("CHECKPOINT")
    stored = conn.execute("SELECT count(*) FROM catalog.snapshots").fetchone()[0]
    conn.close()
    return {"seconds": time.perf_counter() - started, "nights": stored, "datasets": report.in_scope}


# Every table keyed by night gets tonight's rows again for each synthesized night before it, so
# a year's database holds a year of work lists, assessments and scorecards, not one night's.
SYNTH_NIGHTLY_ROWS = """
INSERT INTO {table} BY NAME
SELECT * EXCLUDE (n) REPLACE ((snapshot_date - n) AS snapshot_date)
FROM {table}
CROSS JOIN (SELECT range::INTEGER AS n FROM range(1, $nights))
WHERE snapshot_date = $night AND portal = $portal
ORDER BY 1
"""
NIGHTLY_TABLES = (
    "metrics.datasets",
    "board.missing_metadata",
    "board.stale_datasets",
    "board.agency_scorecard",
    "board.catalog_changes",
)


def prepare_backup_year(size: int, nights: int, night: str, db: str) -> dict[str, Any]:
    """A year (`nights`) of a `size`-asset catalog in `db`, for the backup line: tonight stored,
    assessed and published for real; the nights before it synthesized as above, with every
    night's metrics, assessments and board rows."""
    from ctdata_pipeline.board.publish import publish_night
    from ctdata_pipeline.catalog.version_runs import rebuild_version_runs
    from ctdata_pipeline.metrics.compute import compute_night
    from ctdata_pipeline.warehouse import connect

    started = time.perf_counter()
    tonight = date.fromisoformat(night)
    catalog = BenchCatalog(size, tonight)
    conn = connect(Path(db))
    store_records_as_night(conn, catalog.records, tonight, min_ratio=None)
    del catalog
    parameters = {"night": tonight, "portal": PORTAL_NAME, "nights": nights}
    _run(conn, SYNTH_VERSIONS, parameters)
    rebuild_version_runs(conn, PORTAL_NAME)
    compute_night(conn, bench_portal(), tonight)
    publish_night(conn, PORTAL_NAME, tonight)
    _run(conn, SYNTH_METRICS, parameters)
    for table in NIGHTLY_TABLES:
        _run(conn, SYNTH_NIGHTLY_ROWS.format(table=table), parameters)
    conn.execute("CHECKPOINT")
    stored = conn.execute("SELECT count(*) FROM catalog.snapshots").fetchone()[0]
    conn.close()
    return {"seconds": time.perf_counter() - started, "nights": stored}
