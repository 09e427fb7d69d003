"""The digests' contents: the Board's (headlines with their targets in words, the period's
movement, the report PDF and workbook attached, links to the published report) and each
agency's (its figures and work lists, dataset by dataset, its CSV attached).

A digest carries the figures of the last night of its period that has a report folder, read
with the report's own loaders (report.data.load_night, report.agencies.load_agencies), so it
says what that night's report says. Portal text (titles, agency names) is data: the HTML part
is rendered with Jinja2's autoescape, and a Subject never carries a line break."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from ctdata_pipeline.delivery.model import BOARD_AUDIENCE, Digest, Period, Problem
from ctdata_pipeline.delivery.recipients import RecipientsFile, match_agencies
from ctdata_pipeline.metrics.targets import UNCHANGED_BELOW, judge, movement, target_words
from ctdata_pipeline.portals import PortalFile
from ctdata_pipeline.report.agencies import (
    AGENCY_FOLDER,
    Agency,
    agency_work_lists,
    figure_rows,
    load_agencies,
)
from ctdata_pipeline.report.data import (
    HEADLINES,
    NightReport,
    PortalNight,
    Value,
    format_value,
    load_night,
)
from ctdata_pipeline.report.publish import (
    PDF_FILE,
    REPORT_FILE,
    WORKBOOK_FILE,
    reported_nights,
)
from ctdata_pipeline.report.worklists import WorkList, safe_href

# The Board digest's headlines, per portal: (metric id, plan_metrics name). MD-1 first: it is
# the one the Subject names.
BOARD_HEADLINES = (
    ("MD-1", "pct_missing_metadata"),
    ("MD-2", "pct_meets_ct_standard"),
    ("FR-2", "pct_stale"),
    ("FR-3", "pct_freshness_unknown"),
    ("FR-5", "pct_silently_stale"),
    ("AC-1", "pct_datasets_with_broken_link"),
    ("MD-5", "column_doc_coverage"),
)
HEADLINE_LABELS = dict(HEADLINES)
# The Board's table of agencies with the most to fix, per portal.
MOST_TO_FIX = 5
# An agency's work list in the message body is cut here; its CSV holds every row.
ROWS_SHOWN = 100
SUBJECT_MAX = 149
NAME_IN_SUBJECT_MAX = 80

MIME_PDF = ("application", "pdf")
MIME_XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
MIME_CSV = ("text", "csv")

TEMPLATES = Path(__file__).with_name("templates")
_html = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
# The plain-text part is not markup: nothing to escape in it.
_text = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def digest_night(report_dir: Path, period: Period) -> date | None:
    """The last night of `period` whose folder holds a report (None when none does)."""
    return next((night for night in _reported(report_dir) if _within(night, period)), None)


def comparison_night(report_dir: Path, period: Period, night: date) -> date | None:
    """The night the period's movement is measured from: the last night reported before the
    period, else the period's first reported night; None when that is `night` itself."""
    nights = _reported(report_dir)
    before = next((n for n in nights if n < period.start), None)
    if before is None:
        before = min((n for n in nights if _within(n, period)), default=None)
    return None if before == night else before


def compose_board_digest(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    portal_file: PortalFile,
    report_dir: Path,
    recipients: RecipientsFile,
) -> Digest | None:
    """The Board's digest for `period` from the last night reported in it; None when no night
    of the period has a report."""
    night = digest_night(report_dir, period)
    if night is None:
        return None
    report = load_night(conn, night, portal_file)
    since = comparison_night(report_dir, period, night)
    agencies = load_agencies(conn, report)
    links = _Links(recipients.report_url, report_dir, night)
    portals = [
        _board_portal(conn, portal, report, since, agencies, links) for portal in report.portals
    ]
    folder = report_dir / night.isoformat()
    attachments = []
    pdf_missing = None
    if (folder / PDF_FILE).is_file():
        attachments.append(_Attachment(folder / PDF_FILE, MIME_PDF))
    else:
        pdf_missing = (
            f"The report's PDF is not attached: {PDF_FILE} is not in the night's folder "
            f"({folder}); it is printed only where Chromium is installed."
        )
    if (folder / WORKBOOK_FILE).is_file():
        attachments.append(_Attachment(folder / WORKBOOK_FILE, MIME_XLSX))
    context = {
        "title": report.settings.title,
        "period": period.words,
        "night": night.isoformat(),
        "since": since.isoformat() if since else None,
        "portals": portals,
        "links": links.view(),
        "pdf_missing": pdf_missing,
        "attached": [attachment.path.name for attachment in attachments],
        "targets_set": bool(report.targets),
    }
    subject = _board_subject(report.settings.title, period, portals)
    message = _message(subject, "board_digest", context, attachments)
    return Digest("board", period, BOARD_AUDIENCE, tuple(recipients.board), night, message)


def compose_agency_digests(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    portal_file: PortalFile,
    report_dir: Path,
    recipients: RecipientsFile,
) -> tuple[list[Digest], list[Problem]]:
    """One digest per agency of the recipients file with something to fix in the period's last
    reported night (or send_when_clean); a Problem for each entry that matches no agency."""
    night = digest_night(report_dir, period)
    if night is None:
        return [], []
    report = load_night(conn, night, portal_file)
    agencies = {agency.name: agency for agency in load_agencies(conn, report)}
    matched, problems = match_agencies(recipients, list(agencies), _aliases(portal_file))
    links = _Links(recipients.report_url, report_dir, night)
    digests = []
    for name in sorted(matched, key=str.casefold):
        wanted = matched[name]
        agency = agencies[name]
        sections = [
            _agency_portal(entry, report, index) for index, entry in enumerate(agency.portals, 1)
        ]
        to_fix = len({(s["name"], asset) for s in sections for asset in s["asset_ids"]})
        if to_fix == 0 and not wanted.send_when_clean:
            continue
        csv = report_dir / night.isoformat() / AGENCY_FOLDER / f"{agency.slug}.csv"
        attachments = [_Attachment(csv, MIME_CSV)] if csv.is_file() else []
        context = {
            "agency": name,
            "period": period.words,
            "night": night.isoformat(),
            "to_fix": to_fix,
            "portals": sections,
            "links": links.view(agency),
            "csv": csv.name if attachments else None,
            "csv_missing": None if attachments else f"{csv} is not in the night's folder",
            "rows_shown": ROWS_SHOWN,
        }
        subject = _agency_subject(name, period, to_fix)
        message = _message(subject, "agency_digest", context, attachments)
        digests.append(Digest("agency", period, name, tuple(wanted.addresses), night, message))
    return digests, problems


# --- the Board's -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attachment:
    path: Path
    mime: tuple[str, str]


@dataclass(frozen=True)
class _Links:
    """Where the report can be read: under report_url when the recipients file gives one, else
    the folder on the machine that wrote it."""

    base: str | None
    report_dir: Path
    night: date

    def url(self, relative: str) -> str | None:
        if self.base is None:
            return None
        return f"{self.base.rstrip('/')}/{self.night.isoformat()}/{relative}"

    def view(self, agency: Agency | None = None) -> dict[str, Any]:
        page = None if agency is None else f"{AGENCY_FOLDER}/{agency.page}"
        return {
            "report": safe_href(self.url(REPORT_FILE)),
            "agencies": safe_href(self.url(f"{AGENCY_FOLDER}/index.html")),
            "agency": safe_href(self.url(page)) if page else None,
            "folder": str(self.report_dir / self.night.isoformat()),
        }


@dataclass
class _Headline:
    id: str
    label: str
    value: str
    raw: float | None
    unit: str
    counted: str
    target: str
    judgement: str
    movement: str
    delta: float | None = None


@dataclass
class _BoardPortal:
    name: str
    harvested: bool
    headlines: list[_Headline] = field(default_factory=list)
    most_to_fix: list[dict[str, Any]] = field(default_factory=list)
    agencies: int = 0


def _board_portal(
    conn: duckdb.DuckDBPyConnection,
    portal: PortalNight,
    report: NightReport,
    since: date | None,
    agencies: list[Agency],
    links: _Links,
) -> _BoardPortal:
    view = _BoardPortal(portal.name, portal.harvested)
    if not portal.harvested:
        return view
    before = _portal_values(conn, portal.name, since) if since else {}
    for metric_id, metric in BOARD_HEADLINES:
        # A headline the night has no value for (FR-5 and AC-1 before the probes first ran)
        # is listed as not measured, as the report's cards list it.
        value = portal.values.get(metric) or Value(None, None, None, "percent", None)
        target = report.targets.get(metric_id)
        earlier = before.get(metric)
        view.headlines.append(
            _Headline(
                id=metric_id,
                label=HEADLINE_LABELS.get(metric, metric_id),
                value=format_value(value.value, value.unit),
                raw=value.value,
                unit=value.unit,
                counted=_counted(value),
                target=target_words(target, value.unit) if target else "",
                judgement=judge(target, value.value, value.unit).words
                if target
                else ("No target set." if value.value is not None else "Not measured."),
                movement=movement(
                    metric_id,
                    value.value,
                    earlier.value if earlier else None,
                    since,
                    value.unit,
                    target,
                ),
                delta=None
                if earlier is None or earlier.value is None or value.value is None
                else value.value - earlier.value,
            )
        )
    ranked = []
    for agency in agencies:
        for entry in agency.portals:
            if entry.portal is not portal:
                continue
            lists = agency_work_lists(entry)
            to_fix = len({row["asset_id"] for listed in lists.lists for row in listed.rows})
            if to_fix:
                md1 = entry.values.get("pct_missing_metadata")
                fr2 = entry.values.get("pct_stale")
                ranked.append(
                    {
                        "agency": agency.name,
                        "href": safe_href(links.url(f"{AGENCY_FOLDER}/{agency.page}")),
                        "datasets": entry.scorecard["datasets"],
                        "to_fix": to_fix,
                        "md1": _shown(md1),
                        "fr2": _shown(fr2),
                    }
                )
    view.agencies = len(ranked)
    view.most_to_fix = sorted(ranked, key=lambda row: (-row["to_fix"], row["agency"]))[:MOST_TO_FIX]
    return view


def _portal_values(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> dict[str, Value]:
    rows = conn.execute(
        "SELECT metric, value, numerator, denominator, unit, note FROM board.plan_metrics "
        "WHERE portal = ? AND agency IS NULL AND snapshot_date = ?",
        [portal, night],
    ).fetchall()
    return {metric: Value(*rest) for metric, *rest in rows}


def _counted(value: Value) -> str:
    if value.value is None or value.numerator is None or value.denominator is None:
        return ""
    if value.unit == "score":
        return f"mean of {value.denominator:,.0f} datasets"
    return f"{value.numerator:,.0f} of {value.denominator:,.0f}"


def _shown(value: Value | None) -> str:
    return "n/a" if value is None else format_value(value.value, value.unit)


def _board_subject(title: str, period: Period, portals: list[_BoardPortal]) -> str:
    """ "<title>, November 2026: missing metadata 23.4% (target under 20%), down 1.2 points"."""
    head = f"{_one_line(title, NAME_IN_SUBJECT_MAX)}, {period.words}"
    harvested = [portal for portal in portals if portal.harvested]
    headline = next(
        (
            (portal, line)
            for portal in harvested
            for line in portal.headlines
            if line.id == "MD-1" and line.raw is not None
        ),
        None,
    )
    if headline is None:
        return _cut(f"{head}: missing metadata not measured")
    portal, line = headline
    where = f" on {_one_line(portal.name, 40)}" if len(portals) > 1 else ""
    text = f"{head}: missing metadata {line.value}{where}"
    if line.target:
        text += f" (target {line.target})"
    if line.delta is not None:
        if abs(line.delta) < UNCHANGED_BELOW:
            text += ", unchanged"
        else:
            points = (
                f"{abs(line.delta):.1f} points"
                if line.unit == "percent"
                else (f"{abs(line.delta):,.1f}")
            )
            text += f", {'down' if line.delta < 0 else 'up'} {points}"
    return _cut(text)


# --- an agency's -------------------------------------------------------------------------------


def _aliases(portal_file: PortalFile) -> dict[str, str]:
    """variant -> canonical name over every portal of the file (as the scorecards group them)."""
    aliases: dict[str, str] = {}
    for portal in portal_file.portals:
        aliases.update(portal_file.aliases_for(portal))
    return aliases


def _agency_portal(entry: Any, report: NightReport, index: int) -> dict[str, Any]:
    lists = agency_work_lists(entry)
    work = [_work_view(listed) for listed in lists.lists]
    return {
        "name": entry.portal.name,
        "anchor": f"portal-{index}",
        "datasets": entry.scorecard["datasets"],
        "figures": figure_rows(entry, report),
        "work": [listed for listed in work if listed["count"]],
        "asset_ids": sorted({row["asset_id"] for listed in lists.lists for row in listed.rows}),
    }


def _work_view(listed: WorkList) -> dict[str, Any]:
    rows = []
    for row in listed.rows[:ROWS_SHOWN]:
        fix = " ".join(part for part in (row.get("fix"), row.get("also")) if part)
        # A broken link's row links the link itself: its dataset's address is not in the row.
        href = row.get("href") or row.get("url_href")
        rows.append(
            {
                "title": _one_line(str(row["title"])),
                "asset_id": row["asset_id"],
                "href": href,
                "fix": fix,
                "url": row.get("url"),  # a broken link's, shown as text too
            }
        )
    return {
        "title": listed.title,
        "explains": listed.explains,
        "count": listed.count,
        "rows": rows,
        "more": max(listed.count - ROWS_SHOWN, 0),
    }


def _agency_subject(name: str, period: Period, to_fix: int) -> str:
    """ "Department of Public Health, week of 23 November 2026: 12 datasets to fix"."""
    when = period.words.removeprefix("the ")
    what = (
        "nothing to fix"
        if to_fix == 0
        else f"{to_fix:,} dataset{'' if to_fix == 1 else 's'} to fix"
    )
    return _cut(f"{_one_line(name, NAME_IN_SUBJECT_MAX)}, {when}: {what}")


# --- the message -------------------------------------------------------------------------------


def _message(
    subject: str, template: str, context: dict[str, Any], attachments: Iterable[_Attachment]
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message.set_content(_text.get_template(f"{template}.txt.j2").render(**context))
    message.add_alternative(
        _html.get_template(f"{template}.html.j2").render(subject=subject, **context),
        subtype="html",
    )
    for attachment in attachments:
        maintype, subtype = attachment.mime
        message.add_attachment(
            attachment.path.read_bytes(),
            maintype=maintype,
            subtype=subtype,
            filename=attachment.path.name,
        )
    return message


def _one_line(text: str, limit: int | None = None) -> str:
    """Portal text fit for a header or a line: control characters and line breaks (which would
    start a header of their own) become spaces, runs of white space one space."""
    flat = " ".join(_UNPRINTABLE.sub(" ", text).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def _cut(subject: str) -> str:
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1].rstrip() + "…"


def _reported(report_dir: Path) -> list[date]:
    return reported_nights(report_dir) if report_dir.is_dir() else []


def _within(night: date, period: Period) -> bool:
    return period.start <= night <= period.end
