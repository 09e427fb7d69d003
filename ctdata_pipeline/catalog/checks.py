"""The catalog snapshot's checks: they read the night back from the warehouse after it is
written, so they judge what is stored, however it got there (a harvest, an import, an older
version of the pipeline, a hand edit), and they can fail on it."""

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from ctdata_pipeline.partitions import DATE, PORTAL
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse, first_row, sql

CATALOG_SNAPSHOT = dg.AssetKey("catalog_snapshot")
IDS_UNIQUE = "asset_ids_unique"
IN_SCOPE_BAND = "in_scope_within_band"
CHECKS_SQL = Path(__file__).with_name("sql") / "checks"
LISTED = 10  # problems named in a result's description; the metadata counts them all


def judged_night(context: dg.AssetCheckExecutionContext) -> tuple[date, str]:
    """The night and portal a check judges: the partition of its run."""
    keys = context.multi_partition_key.keys_by_dimension
    return date.fromisoformat(keys[DATE]), keys[PORTAL]


def night_metadata(snapshot_date: date, portal: str) -> dict[str, object]:
    """What every check result carries besides Dagster's partition, so an exported or
    notified result still says what it judged."""
    return {"night": snapshot_date.isoformat(), "portal": portal}


def build_catalog_checks(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    specs = [
        dg.AssetCheckSpec(
            IDS_UNIQUE,
            asset=CATALOG_SNAPSHOT,
            blocking=True,
            partitions_def=partitions_def,
            description=(
                "Each asset id appears once in the night's stored snapshot "
                "(catalog.snapshot_assets of that night and portal); the metrics and board "
                "tables do not run on a night that fails it."
            ),
        ),
        dg.AssetCheckSpec(
            IN_SCOPE_BAND,
            asset=CATALOG_SNAPSHOT,
            partitions_def=partitions_def,
            description=(
                "Warns when the night's stored in-scope dataset count moves more than "
                "in_scope_change_warn (portal file, default 10%) from the portal's previous "
                "stored snapshot."
            ),
        ),
    ]

    @dg.multi_asset_check(name="catalog_snapshot_checks", specs=specs, pool=DUCKDB_POOL)
    def catalog_snapshot_checks(
        context: dg.AssetCheckExecutionContext,
        portals: PortalList,
        warehouse: DuckDBWarehouse,
    ) -> Iterator[dg.AssetCheckResult]:
        """Judge the night's stored snapshot of one portal."""
        snapshot_date, portal = judged_night(context)
        band = portals.portal_file().in_scope_change_warn
        with warehouse.get_connection(read_only=True) as conn:
            results = judge_snapshot(conn, snapshot_date, portal, band)
        yield from results
        fail_on_blocking(results, specs)

    return [catalog_snapshot_checks]


def judge_snapshot(
    conn: duckdb.DuckDBPyConnection, snapshot_date: date, portal: str, band: float
) -> list[dg.AssetCheckResult]:
    """The catalog checks' results for one portal's stored night (blocking first)."""
    night = {"night": snapshot_date, "portal": portal}
    duplicated = conn.execute(sql("asset_ids_unique.sql", CHECKS_SQL), night).fetchall()
    counts = first_row(conn, sql("in_scope_counts.sql", CHECKS_SQL), night)
    return [
        ids_unique_result(snapshot_date, portal, duplicated),
        in_scope_band_result(snapshot_date, portal, counts, band),
    ]


def fail_on_blocking(results: list[dg.AssetCheckResult], specs: list[dg.AssetCheckSpec]) -> None:
    """Once every result is recorded, fail the step if a blocking check failed. Dagster would
    fail it anyway (and skip what is downstream); failing it here makes the run's one line say
    what was wrong with which night, not only which check."""
    blocking = {spec.name for spec in specs if spec.blocking}
    failed = [r for r in results if not r.passed and r.check_name in blocking]
    if failed:
        raise dg.Failure(
            description="; ".join(f"{r.check_name} failed for {r.description}" for r in failed),
            allow_retries=False,
        )


def ids_unique_result(
    snapshot_date: date, portal: str, duplicated: list[tuple[str, int]]
) -> dg.AssetCheckResult:
    judged = f"{portal} {snapshot_date}"
    if duplicated:
        listed = ", ".join(f"{asset_id} x {copies}" for asset_id, copies in duplicated[:LISTED])
        description = f"{judged}: {len(duplicated)} asset ids stored more than once: {listed}"
    else:
        description = f"{judged}: every asset id appears once"
    return dg.AssetCheckResult(
        asset_key=CATALOG_SNAPSHOT,
        check_name=IDS_UNIQUE,
        passed=not duplicated,
        description=description,
        metadata={
            **night_metadata(snapshot_date, portal),
            "duplicated_ids": len(duplicated),
            "extra_rows": sum(copies - 1 for _, copies in duplicated),
        },
    )


def in_scope_band_result(
    snapshot_date: date, portal: str, counts: tuple | None, band: float
) -> dg.AssetCheckResult:
    in_scope, previous_night, previous = counts or (0, None, None)
    judged = f"{portal} {snapshot_date}"
    change: float | None = None
    if previous_night is None:
        passed, description = True, f"{judged}: no previous snapshot to compare with"
    elif not previous:
        # Growing from nothing is no shrink, but it is a move the engineer should see.
        passed = in_scope == 0
        description = (
            f"{judged}: {in_scope} in-scope datasets against none on {previous_night}"
            f" (warning above {band:.0%})"
        )
    else:
        change = (in_scope - previous) / previous
        passed = abs(change) <= band
        description = (
            f"{judged}: {in_scope} in-scope datasets against {previous} on {previous_night} "
            f"({change:+.1%}; warning above {band:.0%})"
        )
    return dg.AssetCheckResult(
        asset_key=CATALOG_SNAPSHOT,
        check_name=IN_SCOPE_BAND,
        passed=passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            **night_metadata(snapshot_date, portal),
            "datasets_in_scope": in_scope,
            "previous_snapshot": str(previous_night) if previous_night else "none",
            "previous_datasets_in_scope": previous or 0,
            "change": change if change is not None else 0.0,
            "band": band,
        },
    )
