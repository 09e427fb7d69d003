"""Compute one portal's night of plan metrics in DuckDB and store it, checked, in one transaction.

The SQL lives in metrics/sql/ (one query per metric, each marked with its metric id). Results are
built in temporary tables, checked (no percentage outside 0-100, no numerator above its
denominator, one row per metric and agency, one row per dataset), and only then written over the
night's previous rows; a night that fails its checks writes nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from ctdata_pipeline.catalog.frequency import FREQUENCIES
from ctdata_pipeline.catalog.schema import ensure_schema as ensure_catalog_schema
from ctdata_pipeline.ct_standard import CT_CATEGORIES
from ctdata_pipeline.metrics.agencies import alias_parameters, define_canonical_agency
from ctdata_pipeline.metrics.definitions import (
    DCAT_FILL_FIELDS,
    FR6_MIN_NIGHTS,
    FR6_WINDOW_DAYS,
    GV1_MAX_CV,
    GV1_MAX_PERIOD_DAYS,
    GV1_MIN_CHANGES,
    GV1_WINDOW_DAYS,
    KNOWN_LICENSE_MAX_CHARS,
    KNOWN_LICENSE_PATTERN,
    MACHINE_READABLE_FORMATS,
    METRIC_VERSION,
    METRICS_BY_ID,
    NO_AGENCY,
    NOT_OPEN_LICENSE_PATTERN,
    OPEN_LICENSE_PATTERN,
    OPEN_MACHINE_READABLE_FORMATS,
    PLACEHOLDER_DESCRIPTIONS,
    PROBED_METRIC_FAMILIES,
    PROBED_METRIC_NAMES,
    SCORE_BANDS,
    SOCRATA_CUSTOM_FILL_FIELDS,
    SOCRATA_FILL_FIELDS,
    SUBSTANTIVE_DESCRIPTION_CHARS,
    VALID_RATE_FIELDS,
)
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.probes.store import ensure_probe_schema
from ctdata_pipeline.warehouse import first_row, run_sql, scalar, sql, transaction

SQL_DIR = Path(__file__).with_name("sql")
# AC-2: the DCAT distribution fields a format is read from.
DISTRIBUTION_ITEM = json.dumps(
    dict.fromkeys(("mediaType", "format", "downloadURL", "accessURL"), "VARCHAR")
)


class MetricsInvalid(Exception):
    """The night's metrics failed a check; nothing was written."""


@dataclass(frozen=True)
class NightMetrics:
    """What was stored for one portal's night."""

    snapshot_date: date
    portal: str
    datasets: int
    metric_rows: int
    history_nights: int
    headline: dict[str, tuple[float | None, str]]  # portal-wide (value, unit) of each `metric`


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    ensure_catalog_schema(conn)
    conn.execute(sql("schema.sql", SQL_DIR))
    # The probe tables and the probe metrics' board tables exist from the first night, empty
    # until probes measure something: readers see every board table from the start.
    ensure_probe_schema(conn)
    conn.execute(sql("schema.sql", SQL_DIR / "probed"))
    frequencies = [
        (f.code, f.period_days, f.due_after, f.overdue_after, f.delinquent_after)
        for f in FREQUENCIES.values()
    ]
    stored = conn.execute("SELECT * FROM metrics.update_frequencies ORDER BY code").fetchall()
    if sorted(stored) != sorted(frequencies):
        with transaction(conn):
            conn.execute("DELETE FROM metrics.update_frequencies")
            conn.executemany(
                "INSERT INTO metrics.update_frequencies VALUES (?, ?, ?, ?, ?)", frequencies
            )


def fill_fields(portal: Portal) -> list[str]:
    """MD-3's fields for this portal: the kind's standard fields and its mapped custom fields."""
    if portal.kind == "dcat":
        return list(DCAT_FILL_FIELDS)
    custom = [field for field in SOCRATA_CUSTOM_FILL_FIELDS if field in portal.custom_fields]
    return [*SOCRATA_FILL_FIELDS, *custom]


def compute_night(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    snapshot_date: date,
    aliases: Mapping[str, str] | None = None,
) -> NightMetrics:
    """Assess every in-scope dataset of the night, compute every metric, check, store.
    `aliases` ({variant: canonical}, PortalFile.aliases_for) names each dataset's agency."""
    ensure_schema(conn)
    kind = first_row(
        conn,
        "SELECT kind FROM catalog.snapshots WHERE portal = ? AND snapshot_date = ?",
        [portal.name, snapshot_date],
    )
    if kind is None:
        raise MetricsInvalid(f"{portal.name}: no snapshot stored for {snapshot_date}")
    history_nights = scalar(
        conn,
        "SELECT count(DISTINCT snapshot_date) FROM catalog.snapshots "
        "WHERE portal = ? AND snapshot_date BETWEEN ? - ?::INTEGER AND ?",
        [portal.name, snapshot_date, FR6_WINDOW_DAYS, snapshot_date],
    )
    bands = dict(SCORE_BANDS)
    parameters: dict[str, Any] = {
        "snapshot_date": snapshot_date,
        "portal": portal.name,
        "kind": kind[0],
        "agency_field": "agency" in portal.custom_fields,
        "ct_categories": list(CT_CATEGORIES),
        "placeholders": list(PLACEHOLDER_DESCRIPTIONS),
        "substantive_chars": SUBSTANTIVE_DESCRIPTION_CHARS,
        "open_license": OPEN_LICENSE_PATTERN,
        "not_open_license": NOT_OPEN_LICENSE_PATTERN,
        "band_excellent": bands["excellent"],
        "band_good": bands["good"],
        "band_sufficient": bands["sufficient"],
        "no_agency": NO_AGENCY,
        "metric_version": METRIC_VERSION,
        "window_days": FR6_WINDOW_DAYS,
        "fill_fields": fill_fields(portal),
        # MD-3 valid_rate: the portal's fields that have a form, and what a licence name is
        "valid_fields": [f for f in fill_fields(portal) if f in VALID_RATE_FIELDS],
        "known_license": KNOWN_LICENSE_PATTERN,
        "known_license_chars": KNOWN_LICENSE_MAX_CHARS,
        "history_sufficient": history_nights >= FR6_MIN_NIGHTS,
        "history_note": f"insufficient history: {history_nights} of {FR6_MIN_NIGHTS} nights",
        **alias_parameters(aliases or {}),
    }
    define_canonical_agency(conn)
    conn.execute("CREATE OR REPLACE TEMP MACRO pct(n, d) AS CASE WHEN d > 0 THEN 100.0 * n / d END")
    run_sql(conn, sql("assessments.sql", SQL_DIR), parameters)
    if parameters["history_sufficient"]:
        run_sql(conn, sql("cadence.sql", SQL_DIR), parameters)
    else:
        conn.execute("UPDATE night_datasets SET cadence_flag = 'insufficient history'")
    _prepare_night_tables(conn, parameters)
    parameters["has_previous"] = scalar(conn, "SELECT count(*) FROM night_previous") > 0
    run_sql(conn, sql("plan_metrics.sql", SQL_DIR), parameters)
    _practice_metrics(conn, parameters)
    conn.execute(
        "UPDATE night_metrics SET note = 'nothing to divide by (denominator 0)' "
        "WHERE value IS NULL AND note IS NULL AND denominator = 0"
    )
    check_night(conn, portal.name, snapshot_date)
    _store_night(conn, portal.name, snapshot_date)
    headline = {
        metric: (value, unit)
        for metric, value, unit in conn.execute(
            "SELECT metric, value, unit FROM night_metrics WHERE agency IS NULL ORDER BY metric"
        ).fetchall()
    }
    return NightMetrics(
        snapshot_date=snapshot_date,
        portal=portal.name,
        datasets=scalar(conn, "SELECT count(*) FROM night_datasets"),
        metric_rows=scalar(conn, "SELECT count(*) FROM night_metrics"),
        history_nights=history_nights,
        headline=headline,
    )


def night_moves(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date, threshold: float
) -> list[tuple[str, str, float, float]]:
    """Percentages that moved more than `threshold` points since the portal's previous night:
    (metric, agency or 'whole portal', previous value, value), largest move first.

    Reads the two nights alone: board.metric_trends computes every night's change (a window
    over all history), so reading it here made the step slower with every night stored."""
    return conn.execute(
        """
        WITH previous AS (
            SELECT max(snapshot_date) AS snapshot_date FROM board.plan_metrics
            WHERE portal = $portal AND snapshot_date < $night
        )
        SELECT t.metric, coalesce(t.agency, 'whole portal'), p.value, t.value
        FROM board.plan_metrics AS t
        JOIN board.plan_metrics AS p
            ON p.portal = t.portal AND p.metric = t.metric
            AND p.agency IS NOT DISTINCT FROM t.agency
            AND p.snapshot_date = (SELECT snapshot_date FROM previous)
        WHERE t.snapshot_date = $night AND t.portal = $portal AND t.unit = 'percent'
          AND abs(t.value - p.value) > $threshold
        ORDER BY abs(t.value - p.value) DESC, t.metric, t.agency
        """,
        {"night": snapshot_date, "portal": portal, "threshold": threshold},
    ).fetchall()


def _prepare_night_tables(conn: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> None:
    run_sql(
        conn,
        """
        CREATE OR REPLACE TEMP TABLE night_assets AS
        SELECT asset_type,
            coalesce(canonical_agency(agency, $alias_variants, $alias_canonicals), agency,
                     $no_agency) AS agency
        FROM catalog.assets
        WHERE snapshot_date = $snapshot_date AND portal = $portal
        """,
        parameters,
    )
    run_sql(
        conn,
        """
        CREATE OR REPLACE TEMP TABLE night_changes AS
        SELECT change, asset_id, title,
            coalesce(canonical_agency(agency, $alias_variants, $alias_canonicals), agency,
                     $no_agency) AS agency,
            previous_title, previous_date
        FROM catalog.changes($portal, $snapshot_date)
        """,
        parameters,
    )
    run_sql(
        conn,
        """
        CREATE OR REPLACE TEMP TABLE night_previous AS
        SELECT max(snapshot_date) AS snapshot_date FROM catalog.snapshots
        WHERE portal = $portal AND snapshot_date < $snapshot_date
        HAVING max(snapshot_date) IS NOT NULL
        """,
        parameters,
    )
    conn.execute(
        """
        CREATE OR REPLACE TEMP TABLE agencies AS
        SELECT agency FROM night_datasets UNION SELECT agency FROM night_changes
        """
    )


def _practice_metrics(conn: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> None:
    """AC-2 and GV-1 (metrics v2, computed with the night): night_practice, and their rows
    added to night_metrics."""
    conn.execute(sql("practice_formats.sql", SQL_DIR))
    practice = {
        **parameters,
        "distribution_item": DISTRIBUTION_ITEM,
        "distribution_shape": f"[{DISTRIBUTION_ITEM}]",
        "machine_readable": list(MACHINE_READABLE_FORMATS),
        "open_formats": list(OPEN_MACHINE_READABLE_FORMATS),
        "automation_days": GV1_WINDOW_DAYS,
        "automation_max_period": GV1_MAX_PERIOD_DAYS,
        "automation_min_changes": GV1_MIN_CHANGES,
        "automation_max_cv": GV1_MAX_CV,
    }
    run_sql(conn, sql("practice.sql", SQL_DIR), practice)
    run_sql(conn, sql("practice_metrics.sql", SQL_DIR), practice)


def check_night(conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date) -> None:
    """Raise MetricsInvalid, naming every problem, if the night's numbers cannot be right
    (the rule of metric_problem.sql, which the values_in_range check applies once stored)."""
    conn.execute(sql("metric_problem.sql", SQL_DIR))
    problems = [
        f"{metric} ({agency or 'whole portal'}): {problem}"
        for agency, metric, problem in conn.execute(
            """
            SELECT agency, metric,
                metric_problem(unit, value, numerator, denominator, note) AS problem
            FROM night_metrics
            WHERE problem IS NOT NULL
            ORDER BY metric, agency
            LIMIT 10
            """
        ).fetchall()
    ]
    problems += [
        f"{metric} ({agency or 'whole portal'}): {count} rows for one metric and agency"
        for agency, metric, count in conn.execute(
            "SELECT agency, metric, count(*) FROM night_metrics GROUP BY ALL HAVING count(*) > 1 "
            "LIMIT 10"
        ).fetchall()
    ]
    duplicated = scalar(conn, "SELECT count(*) - count(DISTINCT asset_id) FROM night_datasets")
    if duplicated:
        problems.append(f"{duplicated} dataset ids appear more than once")
    if problems:
        raise MetricsInvalid(
            f"{portal} {snapshot_date}: the metrics failed their checks, nothing was written: "
            + "; ".join(problems)
        )


def _store_night(conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date) -> None:
    night = [snapshot_date, portal]
    with transaction(conn):
        conn.execute("DELETE FROM metrics.datasets WHERE snapshot_date = ? AND portal = ?", night)
        conn.execute("INSERT INTO metrics.datasets BY NAME SELECT * FROM night_datasets")
        conn.execute(
            "DELETE FROM metrics.dataset_practice WHERE snapshot_date = ? AND portal = ?", night
        )
        conn.execute(
            "INSERT INTO metrics.dataset_practice BY NAME "
            "SELECT ? AS snapshot_date, ? AS portal, *, ? AS metric_version FROM night_practice",
            [*night, METRICS_BY_ID["AC-2"].version],
        )
        # The probe metrics' rows of the night are theirs (written after the probes): a
        # recompute of the catalog metrics leaves them be.
        conn.execute(
            """
            DELETE FROM board.plan_metrics
            WHERE snapshot_date = ? AND portal = ?
              AND NOT list_contains(?, metric)
              AND NOT list_bool_or(list_transform(?, family -> starts_with(metric, family)))
            """,
            [*night, list(PROBED_METRIC_NAMES), list(PROBED_METRIC_FAMILIES)],
        )
        conn.execute(
            """
            INSERT INTO board.plan_metrics
                (snapshot_date, portal, agency, metric_id, metric, numerator, denominator, value,
                 metric_version, unit, note)
            SELECT ?, ?, agency, metric_id, metric, numerator, denominator, value,
                   versions.version, unit, note
            FROM night_metrics
            JOIN (SELECT unnest(?) AS metric_id, unnest(?) AS version) AS versions USING (metric_id)
            """,
            [
                snapshot_date,
                portal,
                list(METRICS_BY_ID),
                [m.version for m in METRICS_BY_ID.values()],
            ],
        )
