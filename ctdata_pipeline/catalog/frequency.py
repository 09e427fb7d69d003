"""FR-0: update frequencies normalized to codes, with the freshness tiers of metrics.md.

Values are compared case- and wording-insensitively ("Bi-weekly", "biweekly", "BI WEEKLY");
DCAT's ISO 8601 repeating durations ("R/P1M") map to their row, and any other duration to the
smallest row whose period is at least as long. A non-empty value that maps to nothing is
`unknown` and reported, never guessed; so is one that names two or more different periods
("yearly or biannually ... R/P1Y or R/P2Y"): it is neither of them."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Frequency:
    code: str
    period_days: float | None  # f in metrics.md; None for the unscheduled codes
    due_after: float | None
    overdue_after: float | None
    delinquent_after: float | None


# The FR-0 table. "after" = age strictly greater than that many days.
SCHEDULED = (
    Frequency("daily", 1, 1, 2, 3),
    Frequency("weekday", 1, 3, 4, 5),
    Frequency("weekly", 7, 7, 14, 21),
    Frequency("biweekly", 14, 14, 21, 28),
    Frequency("monthly", 30, 30, 44, 60),
    Frequency("bimonthly", 60, 60, 84, 108),
    Frequency("quarterly", 90, 90, 120, 150),
    Frequency("semiannual", 180, 180, 210, 240),
    Frequency("annual", 365, 365, 425, 455),
)
AS_NEEDED = Frequency("as_needed", None, None, None, None)
HISTORICAL = Frequency("historical", None, None, None, None)
UNKNOWN = Frequency("unknown", None, None, None, None)
FREQUENCIES = {f.code: f for f in (*SCHEDULED, AS_NEEDED, HISTORICAL, UNKNOWN)}

# Wording keys: lower-case letters and digits only (plus '/' and '.' for ISO durations), without
# the filler words below.
_WORDING = {
    "daily": "daily",
    "everyday": "daily",
    "everyweekday": "weekday",
    "weekdays": "weekday",
    "weekly": "weekly",
    "biweekly": "biweekly",
    "everytwoweeks": "biweekly",
    "semimonthly": "biweekly",
    "monthly": "monthly",
    "bimonthly": "bimonthly",
    "quarterly": "quarterly",
    "biannually": "semiannual",
    "biannual": "semiannual",
    "semiannual": "semiannual",
    "semiannually": "semiannual",
    "annually": "annual",
    "annual": "annual",
    "yearly": "annual",
    "asneeded": "as_needed",
    "irregular": "as_needed",
    "irregularly": "as_needed",
    # Keys are read without filler words: "Not updated (historical data)" -> "nothistorical".
    "nothistoricalonly": "historical",
    "nothistorical": "historical",
    "not": "historical",
    "historical": "historical",
    "historicalonly": "historical",
    "nolonger": "historical",
    "nolongerarchived": "historical",
    "nolongerbeing": "historical",
    "archived": "historical",
    "archive": "historical",
    "never": "historical",
}
# Fixed ISO 8601 durations named in FR-0 (R/P0.5M is semimonthly, i.e. bi-weekly).
_ISO = {
    "r/p1d": "daily",
    "r/p1w": "weekly",
    "r/p2w": "biweekly",
    "r/p0.5m": "biweekly",
    "r/p1m": "monthly",
    "r/p2m": "bimonthly",
    "r/p3m": "quarterly",
    "r/p6m": "semiannual",
    "r/p1y": "annual",
}
_ISO_IN_TEXT = re.compile(r"r/p(?:[\d.]+[ymwd])*(?:t(?:[\d.]+[hms])+)?")
_DURATION_PART = re.compile(r"([\d.]+)([ymwdhs])")
_UNIT_DAYS = {"y": 365.0, "m": 30.0, "w": 7.0, "d": 1.0}
_TIME_UNIT_DAYS = {"h": 1 / 24, "m": 1 / 1440, "s": 1 / 86400}


# Words agencies wrap around a frequency ("Data are updated daily.") that do not change it.
_FILLER_WORDS = frozenset(
    {"data", "are", "is", "the", "dataset", "this", "updated", "update", "updates", "refreshed"}
    | {"published", "approximately", "about", "roughly"}
)


def wording_key(value: str) -> str:
    words = re.findall(r"[a-z0-9/]+(?:\.[0-9]+)?[a-z]*", value.lower())
    return "".join(word for word in words if word not in _FILLER_WORDS)


def normalize_frequency(value: str | None) -> tuple[str, bool]:
    """(code, mapped). `mapped` is False for a non-empty value that maps to nothing."""
    if value is None or not value.strip():
        return UNKNOWN.code, True
    key = wording_key(value)
    if key in _WORDING:
        return _WORDING[key], True
    if len(named_periods(value)) > 1:
        return UNKNOWN.code, False
    iso = _ISO_IN_TEXT.search(key)
    if iso:
        duration = iso.group(0)
        if duration in _ISO:
            return _ISO[duration], True
        days = _duration_days(duration)
        if days is not None:
            for frequency in SCHEDULED:
                if frequency.period_days is not None and frequency.period_days >= days:
                    return frequency.code, True
    return UNKNOWN.code, False


def named_periods(value: str) -> set[float]:
    """The periods, in days, a text names: each ISO 8601 duration in it and each word of a
    scheduled row ("yearly", "biannually"), so "Annual (R/P1Y)" names one, 365 days."""
    periods = set()
    for word in re.findall(r"[a-z0-9/]+(?:\.[0-9]+)?[a-z]*", value.lower()):
        code = _WORDING.get(word)
        if code is not None and FREQUENCIES[code].period_days is not None:
            periods.add(float(FREQUENCIES[code].period_days))
        for duration in _ISO_IN_TEXT.findall(word):
            if (days := _duration_days(duration)) is not None:
                periods.add(days)
    return periods


def _duration_days(duration: str) -> float | None:
    date_part, _, time_part = duration.removeprefix("r/p").partition("t")
    days = 0.0
    for amount, unit in _DURATION_PART.findall(date_part):
        days += float(amount) * _UNIT_DAYS[unit]
    for amount, unit in _DURATION_PART.findall(time_part):
        days += float(amount) * _TIME_UNIT_DAYS[unit]
    return days if days > 0 else None
