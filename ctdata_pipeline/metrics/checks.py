"""The metrics' checks: they read the night back from the warehouse after the metrics step has
written it (metrics.datasets, board.plan_metrics), so they judge what the Board will read,
however it got there, and they can fail on it.

The metrics step refuses to write a night that breaks the same rules (compute.check_night):
a wrong number is never written quietly. These checks catch what reached the tables another
way (an older version of the pipeline, an import, a hand edit) whenever the checks run: in the
nightly and recompute runs, or on their own for any stored night."""

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from ctdata_pipeline.catalog.checks import (
    CATALOG_SNAPSHOT,
    LISTED,
    fail_on_blocking,
    judged_night,
    night_metadata,
)
from ctdata_pipeline.metrics.compute import SQL_DIR, night_moves
from ctdata_pipeline.metrics.definitions import NIGHTLY_METRIC_IDS
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse, sql

ASSESSMENTS = dg.AssetKey("dataset_assessments")
PLAN_METRICS = dg.AssetKey("plan_metrics")
VALUES_IN_RANGE = "values_in_range"
NIGHT_TO_NIGHT_MOVES = "night_to_night_moves"
ONE_ROW_PER_DATASET = "one_row_per_dataset"
CHECKS_SQL = Path(__file__).with_name("sql") / "checks"


def build_metric_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    specs = [
        dg.AssetCheckSpec(
            ONE_ROW_PER_DATASET,
            asset=ASSESSMENTS,
            blocking=True,
            partitions_def=partitions_def,
            additional_deps=[CATALOG_SNAPSHOT],
            description=(
                "metrics.datasets holds each in-scope dataset of the night's stored snapshot "
                "exactly once, and nothing else; the board tables are not written from a night "
                "that fails it."
            ),
        ),
        dg.AssetCheckSpec(
            VALUES_IN_RANGE,
            asset=PLAN_METRICS,
            blocking=True,
            partitions_def=partitions_def,
            description=(
                "In the night's stored board.plan_metrics every percentage is within 0-100, no "
                "numerator exceeds its denominator, no count is negative, a missing value says "
                "why, each metric and agency has one value and every metric of metrics.md a "
                "whole-portal one; the board tables are not written from a night that fails it."
            ),
        ),
        dg.AssetCheckSpec(
            NIGHT_TO_NIGHT_MOVES,
            asset=PLAN_METRICS,
            partitions_def=partitions_def,
            description=(
                "Warns when a stored percentage moves more than metric_change_warn_points "
                "(portal file, default 10) since the portal's previous night, naming the metric "
                "and the agency."
            ),
        ),
    ]

    @dg.multi_asset_check(name="plan_metrics_checks", specs=specs, pool=DUCKDB_POOL)
    def plan_metrics_checks(
        context: dg.AssetCheckExecutionContext,
        portals: PortalList,
        warehouse: DuckDBWarehouse,
    ) -> Iterator[dg.AssetCheckResult]:
        """Judge the night's stored assessments and plan metrics of one portal."""
        snapshot_date, portal = judged_night(context)
        threshold = portals.portal_file().metric_change_warn_points
        with warehouse.get_connection(read_only=True) as conn:
            results = judge_metrics(conn, snapshot_date, portal, threshold)
        yield from results
        fail_on_blocking(results, specs)

    return [plan_metrics_checks]


def judge_metrics(
    conn: duckdb.DuckDBPyConnection, snapshot_date: date, portal: str, threshold: float
) -> list[dg.AssetCheckResult]:
    """The metric checks' results for one portal's stored night (blocking first)."""
    night = {"night": snapshot_date, "portal": portal}
    datasets = conn.execute(sql("one_row_per_dataset.sql", CHECKS_SQL), night).fetchall()
    conn.execute(sql("metric_problem.sql", SQL_DIR))
    values = conn.execute(
        sql("values_in_range.sql", CHECKS_SQL),
        {**night, "metric_ids": list(NIGHTLY_METRIC_IDS)},
    ).fetchall()
    moves = night_moves(conn, portal, snapshot_date, threshold)
    return [
        one_row_per_dataset_result(snapshot_date, portal, datasets),
        values_in_range_result(snapshot_date, portal, values),
        moves_result(snapshot_date, portal, moves, threshold),
    ]


def one_row_per_dataset_result(
    snapshot_date: date, portal: str, problems: list[tuple[str, str, int]]
) -> dg.AssetCheckResult:
    judged = f"{portal} {snapshot_date}"
    said = {
        "missing": "not assessed",
        "out of scope": "assessed but no in-scope dataset of the snapshot",
        "duplicated": "assessed {} times",
    }
    if problems:
        listed = "; ".join(
            f"{asset_id} {said[problem].format(assessments)}"
            for asset_id, problem, assessments in problems[:LISTED]
        )
        description = f"{judged}: {len(problems)} datasets wrongly assessed: {listed}"
    else:
        description = f"{judged}: each in-scope dataset assessed exactly once"
    counted = Counter(problem for _, problem, _ in problems)
    return dg.AssetCheckResult(
        asset_key=ASSESSMENTS,
        check_name=ONE_ROW_PER_DATASET,
        passed=not problems,
        description=description,
        metadata={
            **night_metadata(snapshot_date, portal),
            **{f"datasets_{problem.replace(' ', '_')}": counted[problem] for problem in said},
        },
    )


def values_in_range_result(
    snapshot_date: date, portal: str, problems: list[tuple[str, str | None, str]]
) -> dg.AssetCheckResult:
    judged = f"{portal} {snapshot_date}"
    if problems:
        listed = "; ".join(
            f"{metric} ({agency or 'whole portal'}): {problem}"
            for metric, agency, problem in problems[:LISTED]
        )
        description = f"{judged}: {len(problems)} stored values cannot be right: {listed}"
    else:
        description = f"{judged}: every stored value is within its rules"
    return dg.AssetCheckResult(
        asset_key=PLAN_METRICS,
        check_name=VALUES_IN_RANGE,
        passed=not problems,
        description=description,
        metadata={**night_metadata(snapshot_date, portal), "problems": len(problems)},
    )


def moves_result(
    snapshot_date: date,
    portal: str,
    moves: list[tuple[str, str, float, float]],
    threshold: float,
) -> dg.AssetCheckResult:
    judged = f"{portal} {snapshot_date}"
    if moves:
        listed = "; ".join(
            f"{metric} ({agency}) moved from {before:.1f} to {after:.1f}"
            for metric, agency, before, after in moves[:LISTED]
        )
        description = f"{judged}: {listed}"
    else:
        description = (
            f"{judged}: no percentage moved more than {threshold:g} points since the previous night"
        )
    return dg.AssetCheckResult(
        asset_key=PLAN_METRICS,
        check_name=NIGHT_TO_NIGHT_MOVES,
        passed=not moves,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            **night_metadata(snapshot_date, portal),
            "moves": len(moves),
            "threshold_points": threshold,
        },
    )
