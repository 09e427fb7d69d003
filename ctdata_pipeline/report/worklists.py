"""The work lists, split by the headline each explains: datasets missing MD-1 fields (the MD-1
card's numerator), datasets short of CT's standard only (the rest of MD-2's failures), stale
datasets (FR-2's numerator), and from the probes (metrics v2) silently stale datasets (FR-5's
numerator) and broken links (AC-1: its datasets are the numerator). Each row says in words what
to fix and links to the dataset.

The main page shows a portal's lists; an agency page shows the same lists cut to the agency,
whose counts are then the agency's numerators in board.plan_metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from ctdata_pipeline.report.data import Value, format_count

# A board row's raw agency name, once agency_aliases group variants under one canonical name
# (the column is added by the aliases work; without it rows show their one name).
RAW_AGENCY_COLUMN = "agency_as_published"

# What an unmet requirement asks of the agency, in words (MD-1 and MD-2 field ids).
FIX_WORDS = {
    "title": "give it a title",
    "description": "write a description",
    "update_frequency": "declare an update frequency",
    "tags": "add at least one tag",
    "category": "choose one of CT's ten categories",
    "agency": "name the agency that publishes it",
    "license": "state a licence",
    "keyword": "add keywords",
    "modified": "give a valid last-modified date",
    "publisher.name": "name the publisher",
    "contactPoint.fn": "name a contact",
    "contactPoint.hasEmail": "give a contact email (a mailto: address)",
    "identifier": "give it an identifier",
    "accessLevel": "set a valid access level",
}

FREQUENCY_WORDS = {
    "daily": "daily",
    "weekday": "every weekday",
    "weekly": "weekly",
    "biweekly": "every 2 weeks",
    "monthly": "monthly",
    "bimonthly": "every 2 months",
    "quarterly": "quarterly",
    "semiannual": "twice a year",
    "annual": "annually",
}


def fix_words(fields: Sequence[str]) -> str:
    """'Write a description; add at least one tag.' for a list of unmet field ids."""
    words = [FIX_WORDS.get(name, f"fill in {name.replace('_', ' ')}") for name in fields]
    if not words:
        return ""
    sentence = "; ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


def safe_href(url: Any) -> str | None:
    """A link target only for web addresses (javascript:, data: stay text)."""
    if not isinstance(url, str):
        return None
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


@dataclass
class WorkList:
    """One section: its rows, its heading count and how that count relates to a headline."""

    key: str  # md1, md2, stale
    title: str
    rows: list[dict[str, Any]]
    explains: str  # the sentence tying the count to its headline
    mismatch: str = ""  # said aloud if the list and the headline ever disagree

    @property
    def count(self) -> int:
        return len(self.rows)


@dataclass
class WorkLists:
    portal: str
    md1: WorkList
    md2: WorkList
    stale: WorkList
    no_views: bool  # the portal publishes no view counts: popularity does not apply
    has_raw_names: bool = False
    # From the probes; None where the list does not apply (FR-5 on a DCAT feed) or the
    # warehouse has no such table yet.
    silent: WorkList | None = None
    broken: WorkList | None = None
    silent_probed: bool = False  # FR-5 has a value tonight: an empty list means none
    broken_probed: bool = False  # AC-1 likewise
    lists: list[WorkList] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lists = [self.md1, self.md2, self.stale]
        self.lists += [listed for listed in (self.silent, self.broken) if listed is not None]


def build_work_lists(
    portal: str,
    missing: Sequence[dict[str, Any]],
    stale: Sequence[dict[str, Any]],
    values: dict[str, Value],
    whose: str,
    *,
    silently_stale: Sequence[dict[str, Any]] | None = None,
    broken_links: Sequence[dict[str, Any]] | None = None,
) -> WorkLists:
    """The lists from board rows (a portal's, or one agency's) and the plan_metrics values
    of the same scope (`whose`: "the portal's", "this agency's"), whose numerators the lists'
    counts must equal. The probe lists are made from their rows when given (None: no list)."""
    md1_rows = [_missing_row(row, md1=True) for row in missing if row["fails_md1"]]
    md2_rows = [_missing_row(row, md1=False) for row in missing if not row["fails_md1"]]
    stale_rows = [_stale_row(row) for row in stale]
    md1_value = values.get("pct_missing_metadata")
    md2_value = values.get("pct_meets_ct_standard")
    fr2_value = values.get("pct_stale")
    md1 = WorkList(
        "md1",
        "Missing MD-1 fields",
        md1_rows,
        _md1_sentence(md1_value, whose),
        _mismatch(len(md1_rows), md1_value.numerator if md1_value else None, "MD-1"),
    )
    failing_md2 = (
        None
        if md2_value is None or md2_value.denominator is None or md2_value.numerator is None
        else md2_value.denominator - md2_value.numerator
    )
    also_md1 = sum(1 for row in missing if row["fails_md1"] and row["fails_md2"])
    md2 = WorkList(
        "md2",
        "Short of CT's standard only (MD-2)",
        md2_rows,
        _md2_sentence(md2_value, failing_md2, also_md1, len(md2_rows), whose),
        _mismatch(also_md1 + len(md2_rows), failing_md2, "MD-2 (datasets not meeting it)"),
    )
    stale_list = WorkList(
        "stale",
        "Stale datasets (FR-2)",
        stale_rows,
        _fr2_sentence(fr2_value, whose),
        _mismatch(len(stale_rows), fr2_value.numerator if fr2_value else None, "FR-2"),
    )
    silent = None
    if silently_stale is not None:
        fr5_value = values.get("pct_silently_stale")
        silent_rows = [_silent_row(row) for row in silently_stale]
        silent = WorkList(
            "silent",
            "Silently stale datasets (FR-5)",
            silent_rows,
            _fr5_sentence(fr5_value, whose),
            _mismatch(len(silent_rows), fr5_value.numerator if fr5_value else None, "FR-5"),
        )
    broken = None
    if broken_links is not None:
        ac1_value = values.get("pct_datasets_with_broken_link")
        broken_rows = [_broken_row(row) for row in broken_links]
        datasets = len({row["asset_id"] for row in broken_links})
        broken = WorkList(
            "broken",
            "Broken links (AC-1)",
            broken_rows,
            _ac1_sentence(ac1_value, datasets, whose),
            ""
            if ac1_value is None or ac1_value.numerator is None or datasets == ac1_value.numerator
            else f"This list names {datasets:,} datasets but AC-1 counts "
            f"{ac1_value.numerator:,.0f}.",
        )
    rows = [*missing, *stale, *(silently_stale or []), *(broken_links or [])]
    return WorkLists(
        portal=portal,
        md1=md1,
        md2=md2,
        stale=stale_list,
        no_views=bool(stale) and all(row["views_last_month"] is None for row in stale),
        has_raw_names=any(RAW_AGENCY_COLUMN in row for row in rows),
        silent=silent,
        broken=broken,
        silent_probed=_measured(values.get("pct_silently_stale")),
        broken_probed=_measured(values.get("pct_datasets_with_broken_link")),
    )


def _measured(value: Value | None) -> bool:
    return value is not None and value.value is not None


def _fr5_sentence(value: Value | None, whose: str) -> str:
    if value is None or not value.denominator:
        return (
            "Datasets whose metadata says they are current while their newest row is older "
            "than three update periods."
        )
    return (
        f"These are the {format_count(value.numerator)} of {format_count(value.denominator)} "
        f"datasets with a content date, fresh or due by their metadata, that {whose} FR-5 "
        "figure counts as silently stale: updated on schedule, but their newest row is older "
        "than three update periods. Longest past its promise first."
    )


def _ac1_sentence(value: Value | None, datasets: int, whose: str) -> str:
    if value is None or not value.denominator:
        return (
            "Links that did not answer on two probes at least 20 hours apart, with the dataset "
            "that publishes each."
        )
    return (
        f"The broken links of the {format_count(value.numerator)} of "
        f"{format_count(value.denominator)} datasets with a checked link that {whose} AC-1 "
        f"figure counts ({datasets:,} datasets here): each failed on two probes at least 20 "
        "hours apart. A link that failed once is not listed until it fails again."
    )


def _md1_sentence(value: Value | None, whose: str) -> str:
    if value is None or not value.denominator:
        return "Datasets missing any MD-1 field."
    return (
        f"These are the {format_count(value.numerator)} of {format_count(value.denominator)} "
        f"in-scope datasets that {whose} MD-1 figure counts as missing metadata."
    )


def _md2_sentence(
    value: Value | None, failing: float | None, also_md1: int, here: int, whose: str
) -> str:
    if value is None or failing is None:
        return "Datasets that hold every MD-1 field but miss another requirement of CT's standard."
    return (
        f"{format_count(failing)} in-scope datasets do not meet CT's standard ({whose} MD-2 "
        f"figure: {format_count(value.numerator)} of {format_count(value.denominator)} meet "
        f"it): {also_md1:,} of them are in the list above, because they also miss MD-1 fields, "
        f"and these {here:,} hold every MD-1 field but miss another requirement."
    )


def _fr2_sentence(value: Value | None, whose: str) -> str:
    if value is None or not value.denominator:
        return "Datasets overdue or delinquent for their declared update frequency."
    return (
        f"These are the {format_count(value.numerator)} of {format_count(value.denominator)} "
        f"datasets with a schedule that {whose} FR-2 figure counts as stale (overdue or "
        "delinquent); stale but popular (top quarter of last month's views) first."
    )


def _mismatch(listed: int, counted: float | None, headline: str) -> str:
    if counted is None or listed == counted:
        return ""
    return f"This list holds {listed:,} datasets but {headline} counts {counted:,.0f}."


def _agency(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get(RAW_AGENCY_COLUMN)
    return {
        "agency": row["agency"],
        "published_as": raw if raw and raw != row["agency"] else "",
    }


def _missing_row(row: dict[str, Any], *, md1: bool) -> dict[str, Any]:
    every = list(row["missing_fields"])
    md1_fields = list(row.get("md1_missing") or [])
    if md1 and not md1_fields:
        md1_fields = every  # no assessment row to say which: every gap is named
    others = [name for name in every if name not in md1_fields]
    return {
        "asset_id": row["asset_id"],
        "title": row["title"] or "(untitled)",
        "href": safe_href(row["url"]),
        **_agency(row),
        "fix": fix_words(md1_fields if md1 else every),
        "also": fix_words(others) if md1 else "",
        "fields": md1_fields if md1 else every,
        "score": f"{row['metadata_score']:.0f}",
        "score_raw": row["metadata_score"],
    }


def _day(moment: Any) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d") if isinstance(moment, datetime) else ""


def _silent_row(row: dict[str, Any]) -> dict[str, Any]:
    frequency = FREQUENCY_WORDS.get(row["update_frequency"], row["update_frequency"] or "")
    age, period = row["content_age_days"], row["period_days"]
    updated, content = _day(row["data_updated_at"]), _day(row["content_date"])
    return {
        "asset_id": row["asset_id"],
        "title": row["title"] or "(untitled)",
        "href": safe_href(row["permalink"]),
        **_agency(row),
        "frequency": frequency,
        "updated": updated,
        "content": content,
        "age": f"{age:,.0f}" if age is not None else "",
        "age_raw": "" if age is None else age,
        "period": f"{period:,.0f}" if period is not None else "",
        "fix": (
            f"Updated {updated or 'recently'} ({frequency}), but its newest row is dated "
            f"{content}, {age:,.0f} days ago: load the current rows, or correct the declared "
            "frequency."
            if age is not None
            else "Load the current rows, or correct the declared frequency."
        ),
    }


STATUS_WORDS = {
    "timeout": "did not answer in time",
    "dns": "names a host that does not exist",
    "refused": "was refused: nothing answers at that address",
    "tls": "failed its secure (TLS) connection",
    "too_many_redirects": "redirects in a loop or too many times",
}


def status_words(status: str | None) -> str:
    """A broken link's last outcome in words: "404" -> "answers 404 (not found)"."""
    if not status:
        return "did not answer"
    if status.isdigit():
        meaning = {"404": "not found", "410": "gone", "403": "forbidden", "500": "server error"}
        return f"answers {status}" + (f" ({meaning[status]})" if status in meaning else "")
    return STATUS_WORDS.get(status, status.replace("_", " "))


def _broken_row(row: dict[str, Any]) -> dict[str, Any]:
    first = _day(row["first_failed"])
    return {
        "asset_id": row["asset_id"],
        "title": row["title"] or "(untitled)",
        "href": None,
        **_agency(row),
        "url": row["url"],
        "url_href": safe_href(row["url"]),
        "status": row["status"] or "",
        "first_failed": first,
        "last_checked": _day(row["last_checked"]),
        "fix": (
            f"The link {status_words(row['status'])}, failing since {first}: correct it or "
            "remove it from the catalog."
        ),
    }


def _stale_row(row: dict[str, Any]) -> dict[str, Any]:
    updated: datetime | None = row["data_updated_at"]
    frequency = FREQUENCY_WORDS.get(row["update_frequency"], row["update_frequency"])
    views = row["views_last_month"]
    state = row["freshness_state"].lower()
    return {
        "work_rank": row["work_rank"],
        "asset_id": row["asset_id"],
        "title": row["title"] or "(untitled)",
        "href": safe_href(row["url"]),
        **_agency(row),
        "frequency": frequency,
        "updated": updated.astimezone(UTC).strftime("%Y-%m-%d") if updated else "",
        "days_overdue": f"{row['days_overdue']:,.0f}",
        "days_overdue_raw": row["days_overdue"],
        "views": "" if views is None else f"{views:,}",
        "views_raw": "" if views is None else views,
        "popular": "n/a" if views is None else ("yes" if row["stale_but_popular"] else "no"),
        "state": state,
        "fix": (
            f"{state.capitalize()} by {row['days_overdue']:,.0f} days: publish the {frequency} "
            "update, or correct the declared frequency if it no longer holds."
        ),
    }
