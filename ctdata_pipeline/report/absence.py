"""Why a portal has no snapshot of a night, from what the Dagster instance recorded: no run of
its harvest for that (night, portal), a run whose harvest failed, or one whose snapshot the
shrink guard refused. The warehouse stores good nights only, so the runs are the one witness."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dagster as dg

from ctdata_pipeline.board.whole_night import OK, WHOLE_NIGHT, whole_night_outcomes
from ctdata_pipeline.catalog.assets import REFUSED_BY
from ctdata_pipeline.jobs import NIGHTLY_JOB, WHOLE_NIGHT_JOB
from ctdata_pipeline.partitions import night_key
from ctdata_pipeline.report.data import NOT_HARVESTED
from ctdata_pipeline.runs import UNFINISHED, failure_reason, one_line

HARVEST_STEP = "harvested_catalog"
PARTITION_TAG = "dagster/partition"


def absence_explainer(instance: dg.DagsterInstance, night: date) -> Callable[[str], str]:
    """`portal -> why it has no snapshot of night`, for load_night's `why_absent`."""
    return lambda portal: why_absent(instance, night, portal)


def why_absent(instance: dg.DagsterInstance, night: date, portal: str) -> str:
    """The newest run that harvested the portal for the night, in words."""
    records = instance.get_run_records(
        dg.RunsFilter(tags={PARTITION_TAG: str(night_key(night, portal))})
    )
    runs = [record for record in records if _harvests(record.dagster_run)]
    whole_nights = instance.get_run_records(
        dg.RunsFilter(job_name=WHOLE_NIGHT_JOB, tags={PARTITION_TAG: night.isoformat()})
    )
    # A whole night's run counts for the portals it was asked for, the newest run first.
    runs += [record for record in whole_nights if _asked_for(record.dagster_run, portal)]
    if not runs:
        return NOT_HARVESTED
    run = max(runs, key=lambda record: record.create_timestamp).dagster_run
    if run.status in UNFINISHED:
        return "its harvest was still running when this report was written"
    if run.job_name == WHOLE_NIGHT_JOB and run.status == dg.DagsterRunStatus.SUCCESS:
        told = whole_night_outcomes(instance, run.run_id).get(portal, OK)
        if told != OK:
            return _in_words(portal, told)
    if run.status == dg.DagsterRunStatus.SUCCESS:
        # A good run stores the night; only a warehouse restored or replaced since lacks it.
        return "harvested, but its snapshot is no longer in the warehouse"
    failures = [
        record.dagster_event
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]
    for event in failures:
        if event is None:
            continue
        user = event.step_failure_data.user_failure_data
        if user is not None and REFUSED_BY in user.metadata:
            return _in_words(portal, one_line(user.description or ""))
    reason = failure_reason(failures) or f"run {run.run_id} did not finish its steps"
    return _in_words(portal, reason)


def _in_words(portal: str, failure: str) -> str:
    """A portal's night's failure (its run's, or its line of a whole night's outcomes)."""
    refused = f"{portal}: refused: "
    if failure.startswith(refused):
        return f"refused by the shrink guard: {failure.removeprefix(refused)}"
    return f"its harvest failed: {failure.removeprefix(f'{portal}: ')}"


def _asked_for(run: dg.DagsterRun, portal: str) -> bool:
    """Whether a whole night's run was for the portal (its config names none: every one)."""
    config = run.run_config.get("ops", {}).get(WHOLE_NIGHT, {}).get("config", {})
    return not config.get("portals") or portal in config["portals"]


def _harvests(run: dg.DagsterRun) -> bool:
    steps = run.step_keys_to_execute
    return HARVEST_STEP in steps if steps is not None else run.job_name == NIGHTLY_JOB
