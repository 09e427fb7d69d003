"""The nightly job and its schedule (02:00 New York unless CTDATA_NIGHTLY_AT says otherwise), the
probe job and its schedule (03:00 New York: after the night's snapshot and metrics), and the
digest jobs and their schedules (Mondays 08:00 New York, for the period before)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

import dagster as dg

from ctdata_pipeline.partitions import HARVEST_TIME, NEW_YORK

NIGHTLY_JOB = "nightly_job"
NIGHTLY_SCHEDULE = "nightly_schedule"
RECOMPUTE_JOB = "recompute_job"
WHOLE_NIGHT_JOB = "whole_night_job"
WHOLE_NIGHT_SCHEDULE = "whole_night_schedule"
REPORT_JOB = "report_job"
REPORT_SENSOR = "report_automation"
PROBE_JOB = "probe_job"
PROBE_SCHEDULE = "probe_schedule"
# An hour after the nightly run: the probes read the night's snapshot and FR-1 assessment.
PROBE_TIME = time(3, 0)
BOARD_DIGEST_JOB = "board_digest_job"
AGENCY_DIGEST_JOB = "agency_digest_job"
BOARD_DIGEST_SCHEDULE = "board_digest_schedule"
AGENCY_DIGEST_SCHEDULE = "agency_digest_schedule"
# Monday 08:00 New York: the digests of the period before reach people as their week starts.
DIGEST_CRON = "0 8 * * 1"
# delivery.model.Cadence, spelled here: this module sits below delivery in the flow.
DigestCadence = Literal["monthly", "weekly"]


def build_nightly_job(assets: Sequence[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=NIGHTLY_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description=(
            "One portal's night: harvest its catalog, store the dated snapshot, and everything "
            "the Board reads from it. The schedule launches one run per portal."
        ),
        tags={"ctdata/job": "nightly"},
    )


def build_whole_night_job(asset: dg.AssetsDefinition) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=WHOLE_NIGHT_JOB,
        selection=dg.AssetSelection.assets(asset),
        description=(
            "Every portal's night in one run: harvests side by side (one request at a time "
            "per host), each stored, judged, scored and published as it arrives, with each "
            "portal's status under the per-portal assets. For portal files of hundreds of "
            "portals (`ctdata nightly --one-run`)."
        ),
        tags={"ctdata/job": "nightly"},
    )


def build_recompute_job(
    assets: Sequence[dg.AssetsDefinition],
    upstream_checks: Sequence[dg.AssetChecksDefinition] = (),
) -> dg.UnresolvedAssetJobDefinition:
    """The assets with their own checks, and `upstream_checks` that judge what they read."""
    return dg.define_asset_job(
        name=RECOMPUTE_JOB,
        selection=dg.AssetSelection.assets(*assets) | dg.AssetSelection.checks(*upstream_checks),
        description=(
            "Recompute a night's metrics and board tables from its stored snapshot, without "
            "harvesting: after an import, a definition change, or for a backfill of past nights."
        ),
        tags={"ctdata/job": "recompute"},
    )


def build_report_job(
    assets: Sequence[dg.AssetsDefinition],
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=REPORT_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description=(
            "After a night: write its Board report from the board tables of every portal, "
            "publish the readers' copy of the board tables, then back the warehouse up."
        ),
        tags={"ctdata/job": "report"},
    )


def build_report_sensor(
    assets: Sequence[dg.AssetsDefinition],
) -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation condition of what follows a night: the report and the readers'
    copy run once every portal's run has finished, the backup once the report is written.
    Running by default, like the schedule."""
    return dg.AutomationConditionSensorDefinition(
        REPORT_SENSOR,
        target=dg.AssetSelection.assets(*assets),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=60,
        description=(
            "Writes tonight's Board report and readers' copy when the portals' nightly runs "
            "are done."
        ),
    )


def build_nightly_schedule(
    job: dg.UnresolvedAssetJobDefinition, at: time = HARVEST_TIME
) -> dg.UnresolvedPartitionedAssetScheduleDefinition | dg.ScheduleDefinition:
    """`at` America/New_York every night (the timezone comes from the partitions), one run per
    portal for that day's night; running by default, since nobody turns it on by hand."""
    return _every_night(
        job,
        NIGHTLY_SCHEDULE,
        at,
        running=True,
        what="Harvest every portal",
        how="one run per portal",
    )


def build_whole_night_schedule(
    job: dg.UnresolvedAssetJobDefinition, at: time = HARVEST_TIME
) -> dg.UnresolvedPartitionedAssetScheduleDefinition | dg.ScheduleDefinition:
    """The nightly schedule's hour, one run for the whole night; stopped by default: a
    deployment turns on this one or nightly_schedule, not both."""
    return _every_night(
        job, WHOLE_NIGHT_SCHEDULE, at, running=False, what="Harvest every portal", how="in one run"
    )


def _every_night(
    job: dg.UnresolvedAssetJobDefinition, name: str, at: time, running: bool, what: str, how: str
) -> dg.UnresolvedPartitionedAssetScheduleDefinition | dg.ScheduleDefinition:
    return dg.build_schedule_from_partitioned_job(
        job,
        name=name,
        hour_of_day=at.hour,
        minute_of_hour=at.minute,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"{what} at {at:%H:%M} New York time, {how}.",
    )


def build_probe_job(assets: Sequence[dg.AssetsDefinition]) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=PROBE_JOB,
        selection=dg.AssetSelection.assets(*assets),
        description=(
            "One portal's probes for a night, after its nightly run: tonight's share of its "
            "content dates, layer edit dates and links, asked politely, then the metrics that "
            "read them (FR-5, FR-8, AC-1). The schedule launches one run per portal."
        ),
        tags={"ctdata/job": "probes"},
    )


def build_probe_schedule(
    job: dg.UnresolvedAssetJobDefinition, at: time = PROBE_TIME
) -> dg.UnresolvedPartitionedAssetScheduleDefinition | dg.ScheduleDefinition:
    """`at` America/New_York every night, one run per portal for that day's night (the one the
    nightly schedule stored an hour before); running by default, like the nightly one."""
    return _every_night(
        job, PROBE_SCHEDULE, at, running=True, what="Probe every portal", how="one run per portal"
    )


def build_digest_job(
    name: str, asset: dg.AssetsDefinition, description: str
) -> dg.UnresolvedAssetJobDefinition:
    """A digest's job: the one asset, one period (partition) a run."""
    return dg.define_asset_job(
        name=name,
        selection=dg.AssetSelection.assets(asset),
        description=description,
        tags={"ctdata/job": "digests"},
    )


def build_digest_schedule(
    job: dg.UnresolvedAssetJobDefinition,
    name: str,
    cadence: DigestCadence,
    first_period: date,
    running: bool,
) -> dg.ScheduleDefinition:
    """Mondays at 08:00 New York, the period before: a monthly digest on the month's first
    Monday for the month before (other Mondays skip), a weekly one for the week before, Monday
    to Sunday. Written by hand: build_schedule_from_partitioned_job would request the current
    period, since the digest partitions include it (end_offset=1). Running by default only when
    `running` (CTDATA_RECIPIENTS is set): without a file every tick would fail."""
    every = "the month's first Monday" if cadence == "monthly" else "Monday"
    before = "month" if cadence == "monthly" else "week (Monday to Sunday)"

    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=DIGEST_CRON,
        execution_timezone=NEW_YORK.key,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED
        ),
        description=f"On {every} at 08:00 New York time, the digest of the {before} before.",
    )
    def digest_schedule(
        context: dg.ScheduleEvaluationContext,
    ) -> dg.RunRequest | dg.SkipReason:
        at = context.scheduled_execution_time or datetime.now(NEW_YORK)
        key = period_before(cadence, at)
        if key is None:
            return dg.SkipReason(
                f"{at.astimezone(NEW_YORK).date()} is not the month's first Monday: the "
                "monthly digest goes on the first Monday"
            )
        if key < first_period.isoformat():
            return dg.SkipReason(f"the period {key} starts before the first night's")
        return dg.RunRequest(run_key=f"{name}:{key}", partition_key=key)

    return digest_schedule


def period_before(cadence: DigestCadence, at: datetime) -> str | None:
    """The partition key (first day) of the period before the Monday `at` falls on (New York
    time); None for a monthly digest on a Monday that is not the month's first."""
    day = at.astimezone(NEW_YORK).date()
    if cadence == "monthly":
        if day.day > 7:
            return None
        return (day.replace(day=1) - timedelta(days=1)).replace(day=1).isoformat()
    monday = day - timedelta(days=day.weekday())
    return (monday - timedelta(days=7)).isoformat()
