"""A whole night in one run: every portal of the portal file harvested side by side (one at a
time per host), and each harvest, as it arrives, stored, judged, scored and published through
one DuckDB connection, in the same functions and SQL as the per-portal nightly job.

What a portal's own run would record is recorded for its (night, portal) partition all the
same: the materializations of harvested_catalog, catalog_snapshot, the metrics and the board
tables, and the evaluations of their partitioned checks. The UI shows each portal's status
under those assets, and a portal that fails (a timeout, a 5xx, an empty or shrunk catalog, bad
JSON) fails alone: it is named in the night's outcome table, the report and the failing
`every_portal_stored` check, while the others are stored. This is the way to hundreds of
portals a night: a portal's own run costs seconds of Dagster and of opening the DuckDB file,
more than a small portal's whole work (README, *Dagster*, **Cost of a portal**)."""

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

import dagster as dg
import duckdb
from pydantic import Field

from ctdata_pipeline.board.publish import BoardInconsistent, publish_night
from ctdata_pipeline.catalog.checks import CATALOG_SNAPSHOT, IDS_UNIQUE, judge_snapshot
from ctdata_pipeline.catalog.guard import SnapshotRefused
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.stage import stage_file
from ctdata_pipeline.catalog.write import write_snapshot
from ctdata_pipeline.harvest.resources import HarvestStaging, PortalClient
from ctdata_pipeline.harvest.side_by_side import (
    DEFAULT_HOSTS_AT_ONCE,
    Harvested,
    harvest_side_by_side,
)
from ctdata_pipeline.harvest.staging import StagingArea
from ctdata_pipeline.metadata import table_preview
from ctdata_pipeline.metrics.checks import (
    ASSESSMENTS,
    ONE_ROW_PER_DATASET,
    PLAN_METRICS,
    VALUES_IN_RANGE,
    judge_metrics,
)
from ctdata_pipeline.metrics.compute import MetricsInvalid, compute_night
from ctdata_pipeline.metrics.probed import compute_probe_metrics
from ctdata_pipeline.partitions import night_key, nightly_date
from ctdata_pipeline.portals import Portal, PortalFile
from ctdata_pipeline.probes.model import (
    BROKEN_LINKS,
    PROBE_ASSET_KEYS,
    PROBE_KINDS,
    PROBE_PLAN_METRICS,
    SILENTLY_STALE,
)
from ctdata_pipeline.probes.store import ensure_probe_schema, write_targets
from ctdata_pipeline.probes.targets import find_targets, night_records
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.runs import one_line, progress_line
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

WHOLE_NIGHT = "whole_night"
EVERY_PORTAL_STORED = "every_portal_stored"
HARVESTED_CATALOG = dg.AssetKey("harvested_catalog")
# The checks whose failure stops a portal's night where it is, as in its own run.
BLOCKING_CHECKS = frozenset({IDS_UNIQUE, ONE_ROW_PER_DATASET, VALUES_IN_RANGE})
# Metadata of a whole_night materialization: {portal: "ok" or why it failed}.
OUTCOMES = "outcomes"
OK = "ok"
# A thousand portals' night left 3.1 GB resident with DuckDB's default limit (80% of memory,
# the buffer pool caching the whole 1.3 GB file): the night's peak is meant to stay under 2 GB.
DEFAULT_MEMORY_LIMIT_GB = 1.0


class WholeNightConfig(dg.Config):
    """Run config of whole_night (the Launchpad shows it)."""

    portals: list[str] = Field(
        default_factory=list,
        description="Only these portals of the portal file (empty: every one).",
    )
    memory_limit_gb: float = Field(
        default=DEFAULT_MEMORY_LIMIT_GB,
        gt=0,
        description="DuckDB's memory limit for the night's one connection: held open all "
        "night, it would otherwise keep the warehouse's blocks cached as it grows.",
    )
    hosts_at_once: int = Field(
        default=DEFAULT_HOSTS_AT_ONCE,
        ge=1,
        description="How many hosts are harvested at once; each host one request at a time.",
    )


@dataclass
class PortalNight:
    """What became of one portal's night: `failure` is empty when it was stored and published,
    else why not, as its own run's failure would say it."""

    portal: str
    datasets: int = 0
    failure: str = ""
    events: list[dg.AssetMaterialization | dg.AssetCheckEvaluation] = field(default_factory=list)


def build_whole_night_assets(
    nights: dg.DailyPartitionsDefinition, retry_policy: dg.RetryPolicy
) -> list[dg.AssetsDefinition]:
    """`retry_policy`: the harvest asset's, applied to each portal's harvest in the step."""

    @dg.asset(
        name=WHOLE_NIGHT,
        group_name="board",
        partitions_def=nights,
        pool=DUCKDB_POOL,
        kinds={"socrata", "dcat", "duckdb", "python"},
        check_specs=[
            dg.AssetCheckSpec(
                EVERY_PORTAL_STORED,
                asset=WHOLE_NIGHT,
                description="Every portal of the night was stored and published; fails "
                "naming each portal that was not, and why.",
            )
        ],
    )
    def whole_night(
        context: dg.AssetExecutionContext,
        config: WholeNightConfig,
        portals: PortalList,
        portal_client: PortalClient,
        staging: HarvestStaging,
        warehouse: DuckDBWarehouse,
    ) -> dg.MaterializeResult:
        """A whole night of every portal in one run: harvested side by side (one request at a
        time per host), each stored, judged, scored and published as it arrives, as the
        per-portal nightly job would. Each portal's status shows under the per-portal assets'
        (night, portal) partitions; a portal that fails fails alone and is named here."""
        night = nightly_date(context.partition_key)
        portal_file = portals.portal_file()
        chosen = [portal_file.get(name) for name in (config.portals or portal_file.names)]
        started = time.monotonic()
        outcomes: dict[str, PortalNight] = {}

        def record(outcome: PortalNight) -> None:
            outcomes[outcome.portal] = outcome
            for event in outcome.events:
                context.log_event(event)
            failed = sum(1 for o in outcomes.values() if o.failure)
            elapsed, ok = time.monotonic() - started, not outcome.failure
            line = progress_line(len(outcomes), len(chosen), failed, elapsed, outcome.portal, ok)
            # Standard output: `ctdata nightly --one-run` shows it, the step's stdout keeps it.
            print(line, file=sys.stdout, flush=True)
            if outcome.failure:
                context.log.warning(f"{outcome.portal}: {outcome.failure}")

        area = staging.area()
        harvests = harvest_side_by_side(
            chosen,
            portal_client,
            area,
            night,
            hosts_at_once=config.hosts_at_once,
            retries=retry_policy.max_retries,
            retry_delay_seconds=retry_policy.delay or 0.0,
        )
        with warehouse.get_connection() as conn:
            conn.execute(f"SET memory_limit = '{config.memory_limit_gb:g}GB'")
            ensure_schema(conn)
            for harvested in harvests:
                record(store_harvest(conn, portal_file, harvested, night, area))
        failures = {name: o.failure for name, o in outcomes.items() if o.failure}
        return dg.MaterializeResult(
            metadata=_night_metadata(chosen, outcomes, time.monotonic() - started),
            check_results=[
                dg.AssetCheckResult(
                    check_name=EVERY_PORTAL_STORED,
                    passed=not failures,
                    description=(
                        f"{len(failures)} of {len(chosen)} portals not stored: "
                        + "; ".join(f"{name}: {why}" for name, why in sorted(failures.items()))
                        if failures
                        else f"all {len(chosen)} portals stored"
                    ),
                    metadata={"failed": len(failures), "portals": len(chosen)},
                )
            ],
        )

    return [whole_night]


def store_harvest(
    conn: duckdb.DuckDBPyConnection,
    portal_file: PortalFile,
    harvested: Harvested,
    night: date,
    area: StagingArea,
) -> PortalNight:
    """One portal's harvest through the catalog, metrics and board steps, stopping where its
    own run would stop (a failed harvest, a refusal, a blocking check, an inconsistency)."""
    portal = harvested.portal
    outcome = PortalNight(portal.name)
    key = str(night_key(night, portal.name))
    if harvested.summary is None:
        outcome.failure = harvested.failure
        return outcome
    summary = harvested.summary

    def materialized(asset_key: str | dg.AssetKey, metadata: Mapping[str, object]) -> None:
        """The (night, portal) partition of `asset_key` recorded as its own run would."""
        outcome.events.append(dg.AssetMaterialization(asset_key, partition=key, metadata=metadata))

    materialized(
        HARVESTED_CATALOG,
        {
            "dagster/row_count": summary.assets,
            "pages": summary.pages,
            "harvest_seconds": summary.seconds,
            "attempts": harvested.attempts,
        },
    )
    try:
        report = stage_file(conn, portal, area.records_path(portal.name, night))
        written = write_snapshot(
            conn,
            portal,
            summary,
            report,
            origin="harvest",
            min_ratio=portal_file.guard_ratio(portal),
        )
        area.discard(portal.name, night)
        outcome.datasets = written.datasets_in_scope
        materialized(
            CATALOG_SNAPSHOT,
            {
                "dagster/row_count": written.assets_total,
                "datasets_in_scope": written.datasets_in_scope,
                "new_record_versions": written.new_versions,
            },
        )
        if _judged(
            outcome, judge_snapshot(conn, night, portal.name, portal_file.in_scope_change_warn), key
        ):
            return outcome
        aliases = portal_file.aliases_for(portal)
        metrics = compute_night(conn, portal, night, aliases)
        materialized(ASSESSMENTS, {"dagster/row_count": metrics.datasets})
        materialized(PLAN_METRICS, {"dagster/row_count": metrics.metric_rows})
        threshold = portal_file.metric_change_warn_points
        if _judged(outcome, judge_metrics(conn, night, portal.name, threshold), key):
            return outcome
        board = publish_night(conn, portal.name, night, aliases)
        for table, rows in board.rows.items():
            materialized(table, {"dagster/row_count": rows})
        if not portal.probes.enabled:
            outcome.events.extend(not_probed(conn, portal, night, aliases, key))
    except (SnapshotRefused, MetricsInvalid, BoardInconsistent, duckdb.Error) as error:
        # In the words its own run's failure would have (report/absence.py reads them).
        outcome.failure = one_line(str(error))
    return outcome


def not_probed(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    night: date,
    aliases: Mapping[str, str],
    partition: str,
) -> list[dg.AssetMaterialization]:
    """What the probe job records for a portal whose probes are off, without its run: the
    night's targets, no requests, and the probe metrics counting them not checked. (A portal
    that is probed gets its probe run after the night, as the schedules order them.)"""
    ensure_probe_schema(conn)
    targets = find_targets(
        portal,
        night_records(conn, portal.name, night),
        request_base=portal.url,
        own_hosts=[urlsplit(portal.url).netloc],
    )
    write_targets(conn, portal.name, night, PROBE_KINDS, targets)
    probed = compute_probe_metrics(conn, portal, night, aliases)
    skipped = {"not probed": "probes are turned off for this portal (probes: enabled: false)"}
    counted = {
        PROBE_PLAN_METRICS: probed.metric_rows,
        BROKEN_LINKS: probed.broken_links,
        SILENTLY_STALE: probed.silently_stale,
    }
    return [
        *(
            dg.AssetMaterialization(k, partition=partition, metadata=skipped)
            for k in PROBE_ASSET_KEYS
        ),
        *(
            dg.AssetMaterialization(k, partition=partition, metadata={"dagster/row_count": rows})
            for k, rows in counted.items()
        ),
    ]


def _judged(outcome: PortalNight, results: Sequence[dg.AssetCheckResult], partition: str) -> bool:
    """Record the checks' evaluations for the portal's partition; True when a blocking one
    failed (the portal's night stops there, as its own run would)."""
    blocked = []
    for result in results:
        assert result.asset_key is not None and result.check_name is not None
        blocking = result.check_name in BLOCKING_CHECKS
        outcome.events.append(
            dg.AssetCheckEvaluation(
                asset_key=result.asset_key,
                check_name=result.check_name,
                passed=result.passed,
                metadata=result.metadata,
                severity=result.severity,
                description=result.description,
                blocking=blocking,
                partition=partition,
            )
        )
        if blocking and not result.passed:
            blocked.append(f"{result.check_name} failed for {result.description}")
    if blocked:
        outcome.failure = "; ".join(blocked)
    return bool(blocked)


def _night_metadata(
    chosen: Sequence[Portal], outcomes: dict[str, PortalNight], seconds: float
) -> dict[str, object]:
    failed = sorted(name for name, o in outcomes.items() if o.failure)
    rows = [
        {
            "portal": portal.name,
            "status": "failed" if outcomes[portal.name].failure else OK,
            "datasets_in_scope": outcomes[portal.name].datasets,
            "why": outcomes[portal.name].failure,
        }
        for portal in chosen
    ]
    return {
        "portals": len(chosen),
        "stored": len(chosen) - len(failed),
        "failed": len(failed),
        "seconds": round(seconds, 1),
        "seconds_per_portal": round(seconds / max(1, len(chosen)), 3),
        OUTCOMES: dg.MetadataValue.json(
            {name: outcomes[name].failure or OK for name in sorted(outcomes)}
        ),
        # The UI's table: failures first, then the rest in the portal file's order.
        "portal_outcomes": table_preview(
            sorted(rows, key=lambda row: row["status"] == OK),
            ["portal", "status", "datasets_in_scope", "why"],
        ),
    }


def whole_night_outcomes(instance: dg.DagsterInstance, run_id: str) -> dict[str, str]:
    """{portal: "ok" or why its night failed}, from a run's whole_night materialization."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.asset_materialization
        if materialization is not None and materialization.asset_key == dg.AssetKey(WHOLE_NIGHT):
            return dict(materialization.metadata[OUTCOMES].value)  # type: ignore[arg-type]
    return {}
