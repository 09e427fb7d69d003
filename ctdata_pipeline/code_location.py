"""How the code location is assembled: assets, job, schedule and resources for a portal file.

The demo's definitions (demo/definitions.py) build on these; nothing here imports the demo
except the CTDATA_DEPLOYMENT=demo branch of definitions_from_env, when it is taken."""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta

import dagster as dg

from ctdata_pipeline.alerts import run_failure_alert
from ctdata_pipeline.backup.assets import BackupFolder, build_backup_assets
from ctdata_pipeline.board.assets import (
    ReadersCopyFolder,
    build_board_assets,
    build_readers_copy_assets,
)
from ctdata_pipeline.board.whole_night import build_whole_night_assets
from ctdata_pipeline.catalog.assets import build_catalog_assets
from ctdata_pipeline.catalog.checks import build_catalog_checks
from ctdata_pipeline.cluster import night_executor
from ctdata_pipeline.delivery.assets import (
    DeliverySettings,
    build_delivery_assets,
    digest_partitions,
    digest_schedule,
)
from ctdata_pipeline.delivery.open_data import build_open_data_assets
from ctdata_pipeline.harvest.assets import build_harvest_assets
from ctdata_pipeline.harvest.resources import HarvestStaging, LivePortalClient, PortalClient
from ctdata_pipeline.jobs import (
    AGENCY_DIGEST_JOB,
    AGENCY_DIGEST_SCHEDULE,
    BOARD_DIGEST_JOB,
    BOARD_DIGEST_SCHEDULE,
    build_digest_job,
    build_digest_schedule,
    build_nightly_job,
    build_nightly_schedule,
    build_probe_job,
    build_probe_schedule,
    build_recompute_job,
    build_report_job,
    build_report_sensor,
    build_whole_night_job,
    build_whole_night_schedule,
)
from ctdata_pipeline.metadata import OWNERS
from ctdata_pipeline.metrics.assets import build_metric_assets
from ctdata_pipeline.metrics.checks import build_metric_checks
from ctdata_pipeline.metrics.probe_assets import build_probe_metric_assets
from ctdata_pipeline.metrics.targets import check_targets
from ctdata_pipeline.partitions import nightly_dates, nightly_partitions
from ctdata_pipeline.probes.assets import build_probe_assets
from ctdata_pipeline.report.assets import ReportFolder, build_report_assets
from ctdata_pipeline.resources import PortalFileResource, PortalList
from ctdata_pipeline.settings import Settings


def build_definitions(
    settings: Settings, portals: PortalList, portal_client: PortalClient
) -> dg.Definitions:
    """Everything the pipeline defines, for one portal file and one way of reaching portals."""
    # Read here for the partitions; each run's resource reads (and holds) its own copy.
    portal_file = portals.load()
    check_targets(portal_file, portals.source())
    partitions = nightly_partitions(portal_file.names, portal_file.first_night)
    nights = nightly_dates(portal_file.first_night)
    retry_policy = dg.RetryPolicy(
        max_retries=settings.harvest_retries,
        delay=settings.harvest_retry_delay_seconds,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
    [harvested_catalog] = build_harvest_assets(partitions, retry_policy)
    [catalog_snapshot] = build_catalog_assets(partitions, harvested_catalog)
    [compute_plan_metrics] = build_metric_assets(partitions, catalog_snapshot)
    # Each judges its asset's stored night after the write; the nightly job runs them with
    # their assets (a selection of assets takes their checks along).
    [catalog_checks] = build_catalog_checks(partitions)
    [metric_checks] = build_metric_checks(partitions)
    [publish_board_tables] = build_board_assets(partitions)
    # The probes of a night and the metrics that read them: their own job, an hour after the
    # nightly one, so a slow host never holds up the night's snapshot and v1 metrics.
    [probe_night] = build_probe_assets(partitions)
    [probe_plan_metrics] = build_probe_metric_assets(partitions)
    probe_assets = [probe_night, probe_plan_metrics]
    probe_job = build_probe_job(probe_assets)
    [board_report] = build_report_assets(nights)
    [board_readers_copy] = build_readers_copy_assets(nights)
    [warehouse_backup] = build_backup_assets(nights)
    nightly_assets = [
        harvested_catalog,
        catalog_snapshot,
        compute_plan_metrics,
        publish_board_tables,
    ]
    nightly_job = build_nightly_job(nightly_assets)
    # The same night in one run, for portal files of hundreds of portals: it records what
    # the per-portal runs would, under the same assets' partitions.
    [whole_night] = build_whole_night_assets(nights, retry_policy)
    whole_night_job = build_whole_night_job(whole_night)
    # What follows a night, once every portal's run is done (report_job, report_automation).
    after_night = [board_report, board_readers_copy, warehouse_backup]
    if portal_file.publish is not None:
        # The metrics as open data, after the night like the report (off without `publish:`).
        after_night.extend(build_open_data_assets(nights))
    # The digests: their own jobs and Monday schedules, partitioned by the recipients file's
    # periods (read here for the partitions; each run reads the file again).
    cadences = digest_schedule(settings.recipients_file)
    [board_digest, agency_digests] = build_delivery_assets(cadences, portal_file.first_night)
    board_digest_job = build_digest_job(
        BOARD_DIGEST_JOB,
        board_digest,
        "E-mail the DATA Board its digest of a period (CTDATA_RECIPIENTS), once per address; "
        "config `dry_run: true` writes it to the outbox instead.",
    )
    agency_digest_job = build_digest_job(
        AGENCY_DIGEST_JOB,
        agency_digests,
        "E-mail each agency with something to fix its digest of a period (CTDATA_RECIPIENTS), "
        "once per address; config `dry_run: true` writes them to the outbox instead.",
    )
    digests_on = settings.recipients_file is not None
    digest_schedules = [
        build_digest_schedule(
            job,
            name,
            cadence,
            digest_partitions(cadence, portal_file.first_night).start.date(),
            running=digests_on,
        )
        for job, name, cadence in (
            (board_digest_job, BOARD_DIGEST_SCHEDULE, cadences.board),
            (agency_digest_job, AGENCY_DIGEST_SCHEDULE, cadences.agencies),
        )
    ]
    defs = dg.Definitions(
        assets=[
            *nightly_assets,
            whole_night,
            *probe_assets,
            *after_night,
            board_digest,
            agency_digests,
        ],
        asset_checks=[catalog_checks, metric_checks],
        jobs=[
            nightly_job,
            whole_night_job,
            # The stored snapshot is judged before metrics are computed from it: a night
            # imported or edited with duplicated ids stops there.
            build_recompute_job([compute_plan_metrics, publish_board_tables], [catalog_checks]),
            build_report_job(after_night),
            probe_job,
            board_digest_job,
            agency_digest_job,
        ],
        schedules=[
            build_nightly_schedule(nightly_job, settings.nightly_at),
            build_whole_night_schedule(whole_night_job, settings.nightly_at),
            build_probe_schedule(probe_job, an_hour_after(settings.nightly_at)),
            *digest_schedules,
        ],
        sensors=[build_report_sensor(after_night), run_failure_alert],
        # Steps of a run one after another in the run's process: the chain is a line anyway,
        # and DuckDB takes one writing process per file (the runs' writers share the pool).
        # CTDATA_EXECUTOR=celery: on the Celery workers instead, the pool still one at a time.
        executor=night_executor(settings.celery),
        resources={
            "reports": ReportFolder(directory=str(settings.report_dir)),
            "portals": portals,
            "portal_client": portal_client,
            "staging": HarvestStaging(directory=str(settings.staging_dir)),
            "readers_copy": ReadersCopyFolder(directory=str(settings.published_dir)),
            "warehouse": settings.warehouse(),
            "backups": BackupFolder(directory=str(settings.backups), keep=settings.backup_keep),
            "delivery": DeliverySettings(
                recipients_file=str(settings.recipients_file or ""),
                outbox_dir=str(settings.outbox_dir),
            ),
        },
    )
    # One owner for every asset, and its stage (the group) as a tag, set here once.
    return defs.map_asset_specs(
        func=lambda spec: spec.merge_attributes(
            owners=OWNERS, tags={"layer": spec.group_name or "default"}
        )
    )


def an_hour_after(at: time) -> time:
    """When the probes run: an hour after the nightly run (03:00 for the 02:00 default)."""
    return (datetime.combine(date.min, at) + timedelta(hours=1)).time()


def live_definitions(settings: Settings) -> dg.Definitions:
    portals = PortalFileResource(path=str(settings.portals_file))
    return build_definitions(settings, portals, LivePortalClient())


def definitions_from_env() -> dg.Definitions:
    """CTDATA_DEPLOYMENT=demo serves the demo portals (offline); anything else is live."""
    settings = Settings.from_env()
    if os.environ.get("CTDATA_DEPLOYMENT", "live") == "demo":
        # Only here: production never loads the demo's generator and servers.
        from ctdata_pipeline.demo.definitions import demo_definitions_from_env

        return demo_definitions_from_env(settings)
    return live_definitions(settings)
