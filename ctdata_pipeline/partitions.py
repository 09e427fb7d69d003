"""Nights × portals: every snapshot, metric and board row belongs to one of each."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import dagster as dg

NEW_YORK = ZoneInfo("America/New_York")
HARVEST_TIME = time(2, 0)  # the nightly schedule's hour, New York time
DATE = "date"
PORTAL = "portal"


def expected_by(hour: int) -> dg.FreshnessPolicy:
    """Freshness of a nightly asset: materialized between the 02:00 New York run and `hour`
    o'clock, every day. A night the schedule missed (or that failed everywhere) shows as
    failing in the UI. (Dagster evaluates it for the asset as a whole: one portal's failure
    shows as that partition's failed run, not here.)"""
    return dg.FreshnessPolicy.cron(
        deadline_cron=f"0 {hour} * * *",
        lower_bound_delta=timedelta(hours=hour - HARVEST_TIME.hour),
        timezone="America/New_York",
    )


def nightly_dates(first_night: date) -> dg.DailyPartitionsDefinition:
    """Nights are New York dates from the portal file's `first_night`, where history begins
    (every night before it would be a partition nothing can ever fill); `end_offset=1` makes
    today's night a partition, because a snapshot is dated the day it is taken (the 02:00 run
    fills today, not yesterday)."""
    return dg.DailyPartitionsDefinition(
        start_date=first_night.isoformat(), timezone="America/New_York", end_offset=1
    )


def nightly_partitions(portal_names: list[str], first_night: date) -> dg.MultiPartitionsDefinition:
    """A partition per (night, portal). Portals come from the portal file, so adding one adds
    a row of partitions without code changes. The report, one per night for every portal, is
    partitioned by `nightly_dates()` alone."""
    return dg.MultiPartitionsDefinition(
        {DATE: nightly_dates(first_night), PORTAL: dg.StaticPartitionsDefinition(portal_names)}
    )


def nightly_date(partition_key: str) -> date:
    return date.fromisoformat(partition_key)


def night_and_portal(context: dg.AssetExecutionContext) -> tuple[date, str]:
    keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
    return date.fromisoformat(keys[DATE]), keys[PORTAL]


def night_key(snapshot_date: date, portal: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({DATE: snapshot_date.isoformat(), PORTAL: portal})


def night_instant(night: date) -> datetime:
    """The UTC instant a night's snapshot stands for when it was not taken live (a demo night,
    an archive): 02:00 New York time, the nightly schedule's hour."""
    return datetime.combine(night, HARVEST_TIME, tzinfo=NEW_YORK).astimezone(UTC)


def today_in_new_york(now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(NEW_YORK).date()
