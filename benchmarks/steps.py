"""The measured steps. Each runs in a fresh process (`python -m benchmarks.child STEP ARGS`), so
its peak memory is its own; each times only its work, not the interpreter's start."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import requests

from benchmarks.catalog import DOMAIN, FEDERATED, PORTAL_NAME, bench_portal

if TYPE_CHECKING:
    from ctdata_pipeline.catalog.normalize import NormalizeReport

PAGE_SIZE = 1000
MOVE_WARN_POINTS = 10.0  # the portal file's default metric_change_warn_points
OFFSET_WINDOW = 10_000
CATALOG_PATH = "/api/catalog/v1"


def pipeline_harvest(url: str, night: str, db: str, staging: str) -> dict[str, Any]:
    """harvest_socrata into a StagingArea, then the catalog step's `_load_night` flow
    (ensure_schema, stage_file, write_snapshot) into a DuckDB file, without Dagster."""
    from ctdata_pipeline.catalog.schema import ensure_schema
    from ctdata_pipeline.catalog.stage import stage_file
    from ctdata_pipeline.catalog.write import write_snapshot
    from ctdata_pipeline.harvest.socrata import harvest_socrata
    from ctdata_pipeline.harvest.staging import StagingArea
    from ctdata_pipeline.warehouse import connect, scalar

    snapshot_date = date.fromisoformat(night)
    portal = bench_portal(url)
    started = time.perf_counter()
    area = StagingArea(Path(staging))
    with area.writer(PORTAL_NAME, snapshot_date) as writer:
        summary = harvest_socrata(
            portal, writer, snapshot_date, app_token=None, as_of=snapshot_date
        )
        writer.commit(summary)
    harvested = time.perf_counter()
    with area.lock(PORTAL_NAME, snapshot_date):
        conn = connect(Path(db))
        try:
            ensure_schema(conn)
            report = stage_file(conn, portal, area.records_path(PORTAL_NAME, snapshot_date))
            written = write_snapshot(conn, portal, summary, report, origin="harvest", min_ratio=0.5)
            scalar(
                conn,
                "SELECT count(*) - count(DISTINCT asset_id) FROM catalog.snapshot_assets "
                "WHERE snapshot_date = ? AND portal = ?",
                [snapshot_date, PORTAL_NAME],
            )
        finally:
            conn.close()
    area.discard(PORTAL_NAME, snapshot_date)
    finished = time.perf_counter()
    return {
        "seconds": finished - started,
        "harvest_seconds": harvested - started,
        "store_seconds": finished - harvested,
        "assets": written.assets_total,
        "pages": summary.pages,
        "db_bytes": Path(db).stat().st_size,
    }


def naive_harvest(url: str, night: str, db: str) -> dict[str, Any]:
    """What a user would write: sodapy's `datasets()` with its defaults, pandas.json_normalize,
    a full copy of the snapshot in DuckDB."""
    import pandas as pd
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    started = time.perf_counter()
    host = url.split("://", 1)[1]
    # On loopback the client must speak http://, the way harvest/socrata.py mounts its adapter;
    # `domains` names the portal's domains, which on data.ct.gov is the client's own domain.
    client = Socrata(host, None, session_adapter={"prefix": "http://", "adapter": HTTPAdapter()})
    with client:
        records = client.datasets(domains=[DOMAIN, FEDERATED])
    frame = pd.json_normalize(records)
    conn = duckdb.connect(db)
    try:
        store_naive_night(conn, frame, date.fromisoformat(night))
    finally:
        conn.close()
    return {
        "seconds": time.perf_counter() - started,
        "assets": len(frame),
        "db_bytes": Path(db).stat().st_size,
    }


def store_naive_night(conn: duckdb.DuckDBPyConnection, frame: Any, night: date) -> None:
    """A full copy of the night's normalized frame, one table per snapshot."""
    conn.register("night_frame", frame)
    conn.execute(
        f"CREATE OR REPLACE TABLE snapshot_{night:%Y%m%d} AS "
        f"SELECT DATE '{night.isoformat()}' AS snapshot_date, * FROM night_frame"
    )
    conn.unregister("night_frame")


def limit_fetch(url: str, night: str) -> dict[str, Any]:
    """The floor: GET the very pages the harvester fetches and json.loads them, nothing else."""
    session = requests.Session()
    base = [("domains", f"{DOMAIN},{FEDERATED}"), ("search_context", DOMAIN)]
    as_of = [("as_of", night)]
    started = time.perf_counter()
    pages = assets = 0

    def get(params: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal pages
        pages += 1
        response = session.get(f"{url}{CATALOG_PATH}", params=base + params + as_of, timeout=300)
        response.raise_for_status()
        return json.loads(response.content)

    first = get([("limit", PAGE_SIZE), ("order", "dataset_id"), ("offset", 0)])
    total = first["resultSetSize"]
    if total < OFFSET_WINDOW:
        page, offset = first, 0
        while True:
            results = page["results"]
            assets += len(results)
            offset += len(results)
            if not results or offset >= total:
                break
            limit = min(PAGE_SIZE, OFFSET_WINDOW - offset)
            page = get([("limit", limit), ("order", "dataset_id"), ("offset", offset)])
    else:
        scroll_id = ""
        while results := get([("limit", PAGE_SIZE), ("scroll_id", scroll_id)])["results"]:
            assets += len(results)
            scroll_id = results[-1]["resource"]["id"]
    return {"seconds": time.perf_counter() - started, "assets": assets, "pages": pages}


def naive_fetch_pages(url: str) -> int:
    """Request the pages `datasets()` asks for (to warm the server's reply cache)."""
    session = requests.Session()
    params = [("domains", url.split("://", 1)[1]), ("domains", DOMAIN), ("domains", FEDERATED)]
    offset, fetched = 0, 0
    while True:
        page = session.get(
            f"{url}{CATALOG_PATH}", params=[*params, ("offset", offset)], timeout=300
        )
        body = page.json()
        fetched += len(body["results"])
        offset += len(body["results"])
        if not body["results"] or fetched >= body["resultSetSize"]:
            return fetched


def metric_board(db: str, night: str) -> dict[str, Any]:
    """The nightly metric + board step for one stored night, as its two Dagster steps run it:
    compute_night, the night_to_night_moves check, publish_night."""
    from ctdata_pipeline.board.publish import publish_night
    from ctdata_pipeline.metrics.compute import compute_night, night_moves
    from ctdata_pipeline.warehouse import connect

    snapshot_date = date.fromisoformat(night)
    started = time.perf_counter()
    conn = connect(Path(db))
    try:
        metrics = compute_night(conn, bench_portal(), snapshot_date)
        night_moves(conn, PORTAL_NAME, snapshot_date, MOVE_WARN_POINTS)
        publish_night(conn, PORTAL_NAME, snapshot_date)
    finally:
        conn.close()
    return {
        "seconds": time.perf_counter() - started,
        "datasets": metrics.datasets,
        "history_nights": metrics.history_nights,
    }


# Promised days per update frequency: what a user's pandas notebook would hard-code.
NAIVE_PERIODS = {
    "Daily": 1,
    "Every weekday": 1,
    "Weekly": 7,
    "Bi-weekly": 14,
    "Monthly": 30,
    "Bi-monthly": 60,
    "Quarterly": 90,
    "Bi-annually": 182,
    "Annually": 365,
}


def naive_metrics(db: str, night: str) -> dict[str, Any]:
    """Metrics the way a pandas user would: read tonight's full copy, compute the share of
    datasets missing metadata and the stale share, overall and per agency."""
    import pandas as pd

    snapshot_date = date.fromisoformat(night)
    started = time.perf_counter()
    conn = duckdb.connect(db)
    try:
        frame = conn.execute(f"SELECT * FROM snapshot_{snapshot_date:%Y%m%d}").df()
        datasets = frame[
            (frame["resource.type"] == "dataset")
            & (frame["metadata.domain"] == DOMAIN)
            & (frame["resource.provenance"] == "official")
        ].copy()

        def custom(entries: Any, key: str) -> Any:
            for entry in entries if isinstance(entries, list | tuple) else []:
                if entry.get("key") == key:
                    return entry.get("value")
            return None

        metadata = datasets["classification.domain_metadata"]
        datasets["agency"] = metadata.map(lambda entries: custom(entries, "Agency_Agency"))
        datasets["frequency"] = metadata.map(
            lambda entries: custom(entries, "Details_Update-Frequency")
        )
        description = datasets["resource.description"].fillna("").str.strip()
        tags = datasets["classification.domain_tags"].map(
            lambda tags: len(tags) if tags is not None else 0
        )
        datasets["missing_metadata"] = (
            (description == "") | (tags == 0) | datasets["frequency"].isna()
        )
        updated = pd.to_datetime(datasets["resource.data_updated_at"], utc=True, errors="coerce")
        instant = pd.Timestamp(snapshot_date, tz="America/New_York") + pd.Timedelta(hours=2)
        age_days = (instant - updated).dt.total_seconds() / 86400
        period = datasets["frequency"].map(NAIVE_PERIODS)
        scheduled = period.notna() & age_days.notna()
        datasets["stale"] = scheduled & (age_days > 2 * period)
        datasets["scheduled"] = scheduled
        datasets["agency"] = datasets["agency"].fillna("(no agency)")
        by_agency = datasets.groupby("agency").agg(
            datasets=("missing_metadata", "size"),
            missing=("missing_metadata", "sum"),
            stale=("stale", "sum"),
            scheduled=("scheduled", "sum"),
        )
        by_agency["pct_missing_metadata"] = 100 * by_agency["missing"] / by_agency["datasets"]
        by_agency["pct_stale"] = (
            100 * by_agency["stale"] / by_agency["scheduled"].where(by_agency["scheduled"] > 0)
        )
        result = by_agency.reset_index()
        result.loc[len(result)] = {
            "agency": None,
            "datasets": len(datasets),
            "missing": int(datasets["missing_metadata"].sum()),
            "stale": int(datasets["stale"].sum()),
            "scheduled": int(scheduled.sum()),
            "pct_missing_metadata": 100 * datasets["missing_metadata"].mean(),
            "pct_stale": 100 * datasets["stale"].sum() / max(int(scheduled.sum()), 1),
        }
        result.insert(0, "snapshot_date", snapshot_date)
        conn.register("result_frame", result)
        conn.execute("CREATE OR REPLACE TABLE naive_metrics AS SELECT * FROM result_frame")
    finally:
        conn.close()
    return {"seconds": time.perf_counter() - started, "datasets": len(datasets)}


def report_trends(db: str, night: str) -> dict[str, Any]:
    """The report's trend queries: every headline's value over every stored night (the query of
    report/data.py that draws the trends) and README's board.metric_trends query. The whole of
    `load_night` (trends plus tonight's work lists and scorecard) is timed beside them."""
    from ctdata_pipeline.portals import Portal, PortalFile
    from ctdata_pipeline.report.data import load_night
    from ctdata_pipeline.warehouse import connect

    snapshot_date = date.fromisoformat(night)
    conn = connect(Path(db), read_only=True)
    try:
        started = time.perf_counter()
        series = conn.execute(
            """
            SELECT snapshot_date, metric, value, numerator, denominator, unit, note
            FROM board.plan_metrics
            WHERE portal = ? AND agency IS NULL AND snapshot_date <= ?
            ORDER BY snapshot_date
            """,
            [PORTAL_NAME, snapshot_date],
        ).fetchall()
        trend = conn.execute(
            "SELECT snapshot_date, value, change FROM board.metric_trends "
            "WHERE portal = ? AND agency IS NULL AND metric = 'pct_missing_metadata' "
            "ORDER BY snapshot_date",
            [PORTAL_NAME],
        ).fetchall()
        trends_done = time.perf_counter()
        portal = Portal(name=PORTAL_NAME, kind="socrata", url="https://portal.invalid")
        report = load_night(conn, snapshot_date, PortalFile(portals=(portal,)))
        finished = time.perf_counter()
    finally:
        conn.close()
    nights = len(report.portals[0].series.get("pct_missing_metadata", []))
    return {
        "seconds": trends_done - started,
        "load_night_seconds": finished - trends_done,
        "nights": nights,
        "rows": len(series) + len(trend),
    }


def storage_history(
    size: int, nights: int, first_night: str, pipeline_db: str, naive_db: str
) -> dict[str, Any]:
    """`nights` nights of a `size`-asset catalog, ~1% changing a night: stored the pipeline's
    way (stage_records + write_snapshot, the catalog step's flow; the records are handed over
    directly, no HTTP, since only the storage is measured) and as naive full copies."""
    import pandas as pd

    from benchmarks.catalog import BenchCatalog
    from ctdata_pipeline.catalog.schema import ensure_schema
    from ctdata_pipeline.warehouse import connect

    catalog = BenchCatalog(size, date.fromisoformat(first_night))
    pipeline = connect(Path(pipeline_db))
    naive = duckdb.connect(naive_db)
    ensure_schema(pipeline)
    store_seconds: list[float] = []
    naive_seconds: list[float] = []
    first_sizes: dict[str, int] = {}
    night = catalog.night
    for index in range(nights):
        if index:
            night = catalog.advance()
        started = time.perf_counter()
        store_records_as_night(pipeline, catalog.records, night, min_ratio=0.5)
        pipeline.execute("CHECKPOINT")
        store_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        store_naive_night(naive, pd.json_normalize(catalog.records), night)
        naive.execute("CHECKPOINT")
        naive_seconds.append(time.perf_counter() - started)
        if index == 0:
            first_sizes = {
                "pipeline": Path(pipeline_db).stat().st_size,
                "naive": Path(naive_db).stat().st_size,
            }
    versions = pipeline.execute("SELECT count(*) FROM catalog.asset_versions").fetchone()[0]
    pipeline.close()
    naive.close()
    return {
        "nights": nights,
        "last_night": (night - timedelta(days=0)).isoformat(),
        "versions": versions,
        "pipeline_first_bytes": first_sizes["pipeline"],
        "naive_first_bytes": first_sizes["naive"],
        "pipeline_bytes": Path(pipeline_db).stat().st_size,
        "naive_bytes": Path(naive_db).stat().st_size,
        "store_first_seconds": store_seconds[0],
        "store_last_seconds": sorted(store_seconds[-5:])[len(store_seconds[-5:]) // 2],
        "naive_last_seconds": sorted(naive_seconds[-5:])[len(naive_seconds[-5:]) // 2],
    }


def backup_warehouse(db: str, backups: str, alternatives: str) -> dict[str, Any]:
    """`ctdata backup`'s work on `db` (checkpoint, copy, check the copy, retention), the test
    the nightly asset makes before it (the warehouse's content fingerprint), the check
    `ctdata restore` runs on the backup; and the two alternatives measured against the copy:
    EXPORT DATABASE to Parquet (with the IMPORT a restore would need) and COPY FROM DATABASE."""
    import shutil

    from ctdata_pipeline.backup.restore import check_backup
    from ctdata_pipeline.backup.retention import KeepPolicy
    from ctdata_pipeline.backup.take import take_backup
    from ctdata_pipeline.board.verify import content_fingerprint
    from ctdata_pipeline.warehouse import connect

    source = Path(db)
    taken = take_backup(source, Path(backups), KeepPolicy())
    started = time.perf_counter()
    conn = connect(source, read_only=True)
    content_fingerprint(conn)
    conn.close()
    fingerprint_seconds = time.perf_counter() - started
    started = time.perf_counter()
    check_backup(taken.backup.path)
    restore_check_seconds = time.perf_counter() - started

    work = Path(alternatives)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    conn = connect(source)
    conn.execute(f"EXPORT DATABASE '{work / 'export'}' (FORMAT parquet)")
    conn.close()
    export_seconds = time.perf_counter() - started
    export_bytes = sum(path.stat().st_size for path in (work / "export").iterdir())
    started = time.perf_counter()
    imported = connect(work / "imported.duckdb")
    try:
        imported.execute(f"IMPORT DATABASE '{work / 'export'}'")
        import_error = ""
    except duckdb.Error as error:
        import_error = str(error).splitlines()[0]
    finally:
        imported.close()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    conn = connect(source)
    conn.execute(f"ATTACH '{work / 'copied.duckdb'}' AS copied (STORAGE_VERSION 'v1.2.0')")
    conn.execute(f'COPY FROM DATABASE "{source.stem}" TO copied')
    conn.execute("DETACH copied")
    conn.close()
    copy_from_seconds = time.perf_counter() - started
    copy_from_bytes = (work / "copied.duckdb").stat().st_size
    shutil.rmtree(work)
    return {
        "seconds": taken.manifest.seconds,
        "check_seconds": taken.manifest.check_seconds,
        "bytes": taken.manifest.bytes,
        "warehouse_bytes": source.stat().st_size,
        "snapshots": taken.manifest.snapshots,
        "fingerprint_seconds": fingerprint_seconds,
        "restore_check_seconds": restore_check_seconds,
        "export_seconds": export_seconds,
        "export_bytes": export_bytes,
        "import_seconds": import_seconds,
        "import_error": import_error,
        "copy_from_seconds": copy_from_seconds,
        "copy_from_bytes": copy_from_bytes,
    }


STEPS = {
    "pipeline_harvest": pipeline_harvest,
    "naive_harvest": naive_harvest,
    "limit_fetch": limit_fetch,
    "metric_board": metric_board,
    "naive_metrics": naive_metrics,
    "report_trends": report_trends,
    "storage_history": storage_history,
    "backup_warehouse": backup_warehouse,
}


def store_records_as_night(
    conn: duckdb.DuckDBPyConnection,
    records: list[dict[str, Any]],
    night: date,
    min_ratio: float | None,
) -> NormalizeReport:
    """Store Discovery API records as the benchmark portal's night, the way the catalog step
    does after a harvest (handed over without HTTP: only storing is measured)."""
    from ctdata_pipeline.catalog.write import store_records

    written = store_records(
        conn, bench_portal(), night, records, source="benchmark", min_ratio=min_ratio
    )
    return written.report
