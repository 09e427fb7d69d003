"""The probe assets: content_date_probes, layer_date_probes and link_probes of one portal's
night, made by one graph of three steps so that the slow part holds no lock:

1. plan_probes (pool "duckdb"): the night's targets from its snapshot into probes.targets, and
   tonight's share of them (targets.py);
2. make_probes (no pool): the requests, polite to every host (engine.py); nothing open on the
   DuckDB file meanwhile, so other portals' nights write while this one waits on the network;
3. store_probes (pool "duckdb"): the results into probes.results, replacing the night's.

One graph rather than three assets each with its own run of the engine, so a host named by
several kinds (a portal host serving SoQL and links) is probed politely across all of them and
its robots.txt read once. The snapshot and the v1 metrics are only read."""

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from urllib.parse import urlsplit

import dagster as dg

from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.resources import PortalClient
from ctdata_pipeline.metadata import markdown_table
from ctdata_pipeline.partitions import night_and_portal
from ctdata_pipeline.probes.engine import probe_items
from ctdata_pipeline.probes.model import (
    CONTENT_DATE_PROBES,
    LAYER_DATE_PROBES,
    LINK_PROBES,
    OUTCOMES,
    PROBE_KINDS,
    PROBES_GROUP,
    ProbeItem,
    ProbeKind,
    ProbeResult,
)
from ctdata_pipeline.probes.store import (
    ensure_probe_schema,
    last_probed,
    snapshot_time,
    write_results,
    write_targets,
)
from ctdata_pipeline.probes.targets import find_targets, night_records, select_tonight
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.settings import socrata_app_token
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

CATALOG_SNAPSHOT = dg.AssetKey("catalog_snapshot")
ASSET_OF_KIND: dict[ProbeKind, dg.AssetKey] = {
    "content_date": CONTENT_DATE_PROBES,
    "layer_date": LAYER_DATE_PROBES,
    "link": LINK_PROBES,
}
DESCRIPTIONS: dict[ProbeKind, str] = {
    "content_date": (
        "FR-5's probes: the latest value of each date column of the night's Socrata datasets "
        "(SoQL max through sodapy), about 1/probe_interval_days of them a night, each with its "
        "probe time, request and outcome (probes.results, probe = 'content_date')."
    ),
    "layer_date": (
        "FR-8's probes: the edit dates an ArcGIS REST layer of a DCAT dataset states "
        "(`<layer>?f=json`: editingInfo.dataLastEditDate, lastEditDate), about "
        "1/probe_interval_days of the layers a night (probes.results, probe = 'layer_date')."
    ),
    "link": (
        "AC-1's probes: whether the links a catalog publishes answer (HEAD, GET when HEAD is "
        "refused; at most 5 redirects), about 1/probe_interval_days of the URLs a night "
        "(probes.results, probe = 'link')."
    ),
}
TARGET_COLUMNS = {
    "portal": ("VARCHAR", "Portal name from the portal file."),
    "snapshot_date": ("DATE", "The night whose probe run made it."),
    "probe": ("VARCHAR", "content_date, layer_date or link."),
    "target": ("VARCHAR", "Dataset id (content_date), layer URL (layer_date) or the URL (link)."),
    "probed_at": ("TIMESTAMPTZ", "When the request was sent (UTC)."),
    "request": ("VARCHAR", "What was sent, e.g. 'HEAD https://...'."),
    "outcome": ("VARCHAR", "ok, http_error, timeout, dns, refused, tls, too_many_redirects, ..."),
    "status_code": ("INTEGER", "The HTTP status of the final answer, when there was one."),
    "observed": ("STRUCT(name VARCHAR, at TIMESTAMPTZ)[]", "The dates the probe read."),
    "replayed": ("BOOLEAN", "A past night probed 'as of' that night."),
}


@dataclass(frozen=True)
class ProbePlan:
    """What plan_probes decided for the night: the items to probe and how."""

    portal: str
    night: str
    items: tuple[ProbeItem, ...] = ()
    targets: dict[str, int] = field(default_factory=dict)  # distinct targets per kind
    skipped: str = ""  # why the night is not probed ("" = it is)
    as_of: datetime | None = None  # probe "as of" this instant (a replayed past night)


@dataclass(frozen=True)
class ProbeRun:
    plan: ProbePlan
    results: tuple[ProbeResult, ...] = ()
    wall_seconds: float = 0.0


def build_probe_assets(
    partitions_def: dg.PartitionsDefinition,
) -> list[dg.AssetsDefinition]:
    @dg.op(ins={"snapshot": dg.In(dg.Nothing)}, pool=DUCKDB_POOL)
    def plan_probes(
        context: dg.OpExecutionContext,
        portals: PortalList,
        portal_client: PortalClient,
        warehouse: DuckDBWarehouse,
    ) -> ProbePlan:
        """Tonight's probe targets into probes.targets, and the share of them to probe now."""
        night, portal_name = night_and_portal(context)  # type: ignore[arg-type]
        portal = portals.portal(portal_name)
        skipped, as_of_date = "", None
        if not portal.probes.enabled:
            skipped = "probes are turned off for this portal (probes: enabled: false)"
        else:
            try:
                as_of_date = portal_client.as_of_date(portal, night)
            except HarvestError as refused:
                # A live portal answers for today only: its past nights keep no probes.
                skipped = f"not probed: {refused}"
        reachable = portal_client.reachable(portal) if not skipped else portal
        with warehouse.get_connection() as conn:
            ensure_probe_schema(conn)
            taken_at = snapshot_time(conn, portal_name, night)
            if taken_at is None:
                raise dg.Failure(
                    description=f"{portal_name} {night}: no snapshot is stored for this night, "
                    "so there is nothing to probe",
                    allow_retries=False,
                )
            targets = find_targets(
                portal,
                night_records(conn, portal_name, night),
                request_base=reachable.url,
                own_hosts=[urlsplit(reachable.url).netloc],
            )
            write_targets(conn, portal_name, night, PROBE_KINDS, targets)
            history = last_probed(conn, portal_name, night)
        items = {(t.item.kind, t.item.target): t.item for t in targets}
        counts = Counter(kind for kind, _ in items)
        chosen = (
            ()
            if skipped
            else tuple(
                select_tonight(items.values(), history, night, portal.probes.probe_interval_days)
            )
        )
        context.log.info(
            f"{portal_name} {night}: {len(targets)} target rows, "
            + ", ".join(f"{counts[k]} {k}" for k in PROBE_KINDS)
            + (f"; {skipped}" if skipped else f"; {len(chosen)} to probe tonight")
        )
        return ProbePlan(
            portal=portal_name,
            night=night.isoformat(),
            items=chosen,
            targets={kind: counts[kind] for kind in PROBE_KINDS},
            skipped=skipped,
            # A portal that answers "as of" a night is asked as of the snapshot's instant.
            as_of=taken_at if as_of_date is not None else None,
        )

    @dg.op
    def make_probes(
        context: dg.OpExecutionContext, portals: PortalList, plan: ProbePlan
    ) -> ProbeRun:
        """The night's requests, polite to every host; a failed probe is a result."""
        if plan.skipped or not plan.items:
            return ProbeRun(plan)
        settings = portals.portal(plan.portal).probes
        started_wall = datetime.now(UTC)
        started = time.monotonic()
        results = []
        for result in probe_items(
            plan.items, settings, app_token=socrata_app_token(), as_of=plan.as_of
        ):
            if plan.as_of is not None:
                # A replayed night: its probes stand at the night's instant, spaced as made.
                result = _replayed(result, plan.as_of, started_wall)
            results.append(result)
        wall = time.monotonic() - started
        context.log.info(f"{plan.portal} {plan.night}: {len(results)} probes in {wall:.1f} s")
        return ProbeRun(plan, tuple(results), wall)

    @dg.op(
        out={kind: dg.Out(dg.Nothing) for kind in PROBE_KINDS},
        pool=DUCKDB_POOL,
    )
    def store_probes(
        context: dg.OpExecutionContext, warehouse: DuckDBWarehouse, run: ProbeRun
    ) -> Iterator[dg.Output]:
        """The night's results into probes.results (a re-run replaces the night's rows)."""
        plan = run.plan
        night, portal_name = night_and_portal(context)  # type: ignore[arg-type]
        if not plan.skipped:
            with warehouse.get_connection() as conn:
                ensure_probe_schema(conn)
                write_results(
                    conn,
                    portal_name,
                    night,
                    PROBE_KINDS,
                    run.results,
                    replayed=plan.as_of is not None,
                )
        for kind in PROBE_KINDS:
            mine = [result for result in run.results if result.item.kind == kind]
            yield dg.Output(None, kind, metadata=_metadata(plan, kind, mine, run.wall_seconds))

    @dg.graph_multi_asset(
        name="probe_night",
        group_name=PROBES_GROUP,
        ins={"snapshot": dg.AssetIn(CATALOG_SNAPSHOT, dagster_type=dg.Nothing)},
        outs={
            kind: dg.AssetOut(
                key=ASSET_OF_KIND[kind],
                dagster_type=dg.Nothing,
                description=DESCRIPTIONS[kind],
                kinds={"duckdb", "http"},
                metadata={"dagster/table_name": "probes.results"},
            )
            for kind in PROBE_KINDS
        },
        partitions_def=partitions_def,
    )
    def probe_night(snapshot: None) -> dict[str, object]:
        outputs = store_probes(make_probes(plan_probes(snapshot)))
        return dict(zip(PROBE_KINDS, outputs, strict=True))

    return [probe_night]


def _replayed(result: ProbeResult, night_instant: datetime, started: datetime) -> ProbeResult:
    return replace(result, probed_at=night_instant + (result.probed_at - started))


def _metadata(
    plan: ProbePlan, kind: ProbeKind, results: list[ProbeResult], wall_seconds: float
) -> dict[str, object]:
    """Counts per outcome, requests, hosts and wall time of one kind's probes of the night
    (never the app token: results carry none)."""
    outcomes = Counter(result.outcome for result in results)
    hosts = {urlsplit(result.item.url).netloc.lower() for result in results}
    metadata: dict[str, object] = {
        "targets": plan.targets.get(kind, 0),
        "probed": len(results),
        # A not_checked probe sent nothing (robots.txt, a host backing us off).
        "requests": sum(1 for r in results if r.outcome != "not_checked"),
        "hosts": len(hosts),
        "wall_seconds (whole night, every kind)": round(wall_seconds, 1),
        "replayed": plan.as_of is not None,
        **{f"outcome: {name}": outcomes[name] for name in OUTCOMES if outcomes[name]},
    }
    if plan.skipped:
        metadata["not probed"] = plan.skipped
    if results:
        metadata["outcomes"] = dg.MetadataValue.md(
            markdown_table(["outcome", "probes"], sorted(outcomes.items()))
        )
    return metadata
