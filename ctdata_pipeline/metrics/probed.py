"""The probe metrics of one portal's night (metrics.md, "Version 2 additions"): FR-5 (silently
stale data), FR-8 (the age of map layers' data, and FR-1/FR-2 by that data date for DCAT
portals) and AC-1 (broken links), computed in DuckDB from the probes' results and stored,
checked, in one transaction.

They run after the night's probes, which run after the nightly metrics: they read the night's
FR-1 assessment (metrics.datasets), the catalog, probes.targets (what the snapshot names) and
probes.results (every probe kept). Each target counts by its latest result no older than
2 x probe_interval_days at the snapshot time; a target without one is not checked, never good
or bad. The rows they write to board.plan_metrics are the PROBED_METRIC_NAMES of
definitions.py, which the nightly compute leaves alone; a rerun replaces the night's rows.
The SQL is in metrics/sql/probed/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from ctdata_pipeline.metrics.agencies import alias_parameters, define_canonical_agency
from ctdata_pipeline.metrics.compute import SQL_DIR, MetricsInvalid
from ctdata_pipeline.metrics.compute import ensure_schema as ensure_metrics_schema
from ctdata_pipeline.metrics.definitions import (
    METRICS_BY_ID,
    NO_AGENCY,
    PROBED_METRIC_FAMILIES,
    PROBED_METRIC_NAMES,
)
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import first_row, run_sql, scalar, sql, transaction

PROBED_SQL = SQL_DIR / "probed"

# AC-1: two failures count as broken only when at least this far apart (one failure, or a
# retry the same night, is "failing").
BROKEN_AFTER_HOURS = 20

# Why a probe metric has no value on a kind of portal: what it reads is not published there.
FR5_NOT_APPLICABLE = "FR-5 reads Socrata date columns; a DCAT feed publishes no column types"
FR8_NOT_APPLICABLE = "FR-8 reads the ArcGIS layers of DCAT feeds; this portal is Socrata"
NO_TARGETS = "not yet probed: no probe targets stored for this night"


@dataclass(frozen=True)
class ProbeMetrics:
    """What was stored for one portal's night of probe metrics."""

    snapshot_date: date
    portal: str
    metric_rows: int
    datasets: int  # rows of metrics.probed_datasets
    broken_links: int  # rows of board.broken_links
    silently_stale: int  # rows of board.silently_stale
    targets: int  # the night's probe targets
    targets_with_result: int  # ... with a result recent enough to count
    headline: dict[str, tuple[float | None, str]]  # portal-wide (value, unit) of each metric


def compute_probe_metrics(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    snapshot_date: date,
    aliases: Mapping[str, str] | None = None,
) -> ProbeMetrics:
    """Compute the night's probe metrics, check them, and store them with the night's
    metrics.probed_datasets, board.broken_links and board.silently_stale rows in one
    transaction. `aliases` ({variant: canonical}) names the agency of assets that are not
    in-scope datasets; without it they take the canonical name their published name got
    tonight in metrics.datasets. Raises MetricsInvalid, writing nothing, when the night has no
    snapshot or no nightly metrics yet, or when a value breaks the metrics' rules."""
    ensure_metrics_schema(conn)  # the probe tables too
    snapshot = first_row(
        conn,
        "SELECT kind, snapshot_time FROM catalog.snapshots WHERE portal = ? AND snapshot_date = ?",
        [portal.name, snapshot_date],
    )
    if snapshot is None:
        raise MetricsInvalid(f"{portal.name}: no snapshot stored for {snapshot_date}")
    assessed = scalar(
        conn,
        "SELECT count(*) FROM metrics.datasets WHERE portal = ? AND snapshot_date = ?",
        [portal.name, snapshot_date],
    )
    if not assessed:
        raise MetricsInvalid(
            f"{portal.name} {snapshot_date}: the night's metrics are not computed yet; "
            "the probe metrics read its FR-1 assessment"
        )
    kind, snapshot_time = snapshot
    parameters: dict[str, Any] = {
        "snapshot_date": snapshot_date,
        "snapshot_time": snapshot_time,
        "portal": portal.name,
        "kind": kind,
        "window_days": 2 * portal.probes.probe_interval_days,
        "broken_hours": BROKEN_AFTER_HOURS,
        "no_agency": NO_AGENCY,
        "content_not_applicable": FR5_NOT_APPLICABLE,
        "layers_not_applicable": FR8_NOT_APPLICABLE,
        **alias_parameters(aliases or {}),
    }
    define_canonical_agency(conn)
    conn.execute("CREATE OR REPLACE TEMP MACRO pct(n, d) AS CASE WHEN d > 0 THEN 100.0 * n / d END")
    for name in ("latest_results.sql", "datasets.sql", "plan_metrics.sql"):
        run_sql(conn, sql(name, PROBED_SQL), parameters)
    if not scalar(conn, "SELECT count(*) FROM probe_night_targets"):
        # nothing named for probing tonight: the probes have not run for this night (or the
        # portal's probes are disabled), which says nothing about its datasets
        conn.execute(
            "UPDATE probe_night_metrics SET note = ? WHERE value IS NULL AND note NOT IN (?, ?)",
            [NO_TARGETS, FR5_NOT_APPLICABLE, FR8_NOT_APPLICABLE],
        )
    board_tables = sql("board_tables.sql", PROBED_SQL)
    for statement in filter(str.strip, board_tables.split(";")):
        run_sql(conn, statement, parameters)
    _check(conn, portal.name, snapshot_date)
    _store(conn, portal.name, snapshot_date)
    headline = {
        metric: (value, unit)
        for metric, value, unit in conn.execute(
            "SELECT metric, value, unit FROM probe_night_metrics WHERE agency IS NULL "
            "ORDER BY metric"
        ).fetchall()
    }
    targets, with_result = first_row(
        conn, "SELECT count(*), count(*) FILTER (WHERE has_result) FROM probe_night_targets"
    ) or (0, 0)
    return ProbeMetrics(
        snapshot_date=snapshot_date,
        portal=portal.name,
        metric_rows=scalar(conn, "SELECT count(*) FROM probe_night_metrics"),
        datasets=scalar(conn, "SELECT count(*) FROM probed_night"),
        broken_links=scalar(conn, "SELECT count(*) FROM probe_night_broken_links"),
        silently_stale=scalar(conn, "SELECT count(*) FROM probe_night_silently_stale"),
        targets=targets,
        targets_with_result=with_result,
        headline=headline,
    )


def _check(conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date) -> None:
    """The rule of metric_problem.sql, and one row per metric and agency, before writing."""
    conn.execute(sql("metric_problem.sql", SQL_DIR))
    problems = [
        f"{metric} ({agency or 'whole portal'}): {problem}"
        for agency, metric, problem in conn.execute(
            """
            SELECT agency, metric,
                metric_problem(unit, value, numerator, denominator, note) AS problem
            FROM probe_night_metrics
            WHERE problem IS NOT NULL
            UNION ALL
            SELECT agency, metric, count(*) || ' rows for one metric and agency'
            FROM probe_night_metrics GROUP BY ALL HAVING count(*) > 1
            ORDER BY metric, agency
            LIMIT 10
            """
        ).fetchall()
    ]
    unknown = scalar(
        conn,
        """
        SELECT count(*) FROM probe_night_metrics
        WHERE NOT list_contains(?, metric)
          AND NOT list_bool_or(list_transform(?, family -> starts_with(metric, family)))
        """,
        [list(PROBED_METRIC_NAMES), list(PROBED_METRIC_FAMILIES)],
    )
    if unknown:
        problems.append(f"{unknown} rows of metrics the probe metrics do not own")
    # the work lists add up to the metrics that count them
    problems += [
        f"{table} lists {listed} datasets but {metric} counts {counted}"
        for table, metric, listed, counted in conn.execute(
            """
            SELECT 'board.broken_links', 'pct_datasets_with_broken_link',
                   (SELECT count(DISTINCT asset_id) FROM probe_night_broken_links), numerator
            FROM probe_night_metrics
            WHERE agency IS NULL AND metric = 'pct_datasets_with_broken_link'
            UNION ALL
            SELECT 'board.silently_stale', 'pct_silently_stale',
                   (SELECT count(*) FROM probe_night_silently_stale), numerator
            FROM probe_night_metrics
            WHERE agency IS NULL AND metric = 'pct_silently_stale'
            """
        ).fetchall()
        if listed != counted
    ]
    if problems:
        raise MetricsInvalid(
            f"{portal} {snapshot_date}: the probe metrics failed their checks, nothing was "
            "written: " + "; ".join(problems)
        )


def _store(conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date) -> None:
    night = {"snapshot_date": snapshot_date, "portal": portal}
    with transaction(conn):
        conn.execute(
            """
            DELETE FROM board.plan_metrics
            WHERE snapshot_date = $snapshot_date AND portal = $portal
              AND (list_contains($names, metric)
                   OR list_bool_or(list_transform($families, f -> starts_with(metric, f))))
            """,
            {
                **night,
                "names": list(PROBED_METRIC_NAMES),
                "families": list(PROBED_METRIC_FAMILIES),
            },
        )
        conn.execute(
            """
            INSERT INTO board.plan_metrics
                (snapshot_date, portal, agency, metric_id, metric, numerator, denominator, value,
                 metric_version, unit, note)
            SELECT $snapshot_date, $portal, agency, metric_id, metric, numerator, denominator,
                   value, versions.version, unit, note
            FROM probe_night_metrics
            JOIN (SELECT unnest($ids) AS metric_id, unnest($versions) AS version) AS versions
                USING (metric_id)
            """,
            {
                **night,
                "ids": list(METRICS_BY_ID),
                "versions": [m.version for m in METRICS_BY_ID.values()],
            },
        )
        for table, source in (
            ("board.broken_links", "probe_night_broken_links"),
            ("board.silently_stale", "probe_night_silently_stale"),
        ):
            conn.execute(
                f"DELETE FROM {table} WHERE snapshot_date = $snapshot_date AND portal = $portal",
                night,
            )
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {source}")
        conn.execute(
            "DELETE FROM metrics.probed_datasets "
            "WHERE snapshot_date = $snapshot_date AND portal = $portal",
            night,
        )
        conn.execute(
            """
            INSERT INTO metrics.probed_datasets BY NAME
            SELECT $snapshot_date AS snapshot_date, $portal AS portal, asset_id, agency, in_scope,
                   has_date_column, content_date, content_age_days, silently_stale,
                   has_layer_url, layer_date, layer_date_source, data_date, data_date_source,
                   data_age_days, modified_after_data_edit, freshness_state_by_data_date,
                   links, links_with_result, links_ok, links_broken,
                   $metric_version AS metric_version
            FROM probed_night
            """,
            {**night, "metric_version": METRICS_BY_ID["FR-5"].version},
        )
