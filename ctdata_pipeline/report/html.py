"""The HTML report: one self-contained page a Board member can open from disk and print.

Jinja2 escapes every value (portal titles, agencies and descriptions are data, never markup);
links are made only for http(s) addresses, so a `javascript:` URL from a catalog stays text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ctdata_pipeline.metrics.definitions import (
    METRIC_VERSION,
    METRICS_BY_ID,
    metric_for,
    metric_label,
)
from ctdata_pipeline.metrics.targets import judge, movement, target_words
from ctdata_pipeline.portals import ReportSettings, Target
from ctdata_pipeline.report.charts import Chart, Series, trend_chart
from ctdata_pipeline.report.data import (
    BOARD_TABLES,
    PROBE_BOARD_TABLES,
    NightReport,
    PortalNight,
    Value,
    format_count,
    format_value,
)
from ctdata_pipeline.report.peers import (
    OBSERVATORY_PAGE,
    night_has_peers,
    not_measured,
    rankings,
)
from ctdata_pipeline.report.worklists import build_work_lists, safe_href

TEMPLATES = Path(__file__).with_name("templates")
environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Shown:
    metric: str
    raw: str
    text: str
    label: str


@dataclass(frozen=True)
class Judged:
    """A shown value against its target: the verdict in a word or two and in a sentence."""

    met: bool | None
    verdict: str  # met, not met, not measured
    words: str  # "Meets the plan's target (under 20%): 0.7 points below it."


@dataclass
class Card:
    id: str
    title: str
    values: list[Shown]
    lines: list[str] = field(default_factory=list)
    change: str = ""
    chart: Chart | None = None
    caption: str = ""
    judged: list[Judged] = field(default_factory=list)


@dataclass(frozen=True)
class Moment:
    """An instant as the report shows it: in the report's time zone, with UTC on hover."""

    local: str  # 2026-09-30 3:00 AM EDT
    utc: str  # 2026-09-30 07:00 UTC
    iso: str  # 2026-09-30T07:00:00Z, for <time datetime>


def moment(instant: datetime, zone: ZoneInfo) -> Moment:
    here = instant.astimezone(zone)
    utc = instant.astimezone(UTC)
    return Moment(
        local=f"{here:%Y-%m-%d} {here.hour % 12 or 12}:{here:%M %p} {here.tzname()}",
        utc=f"{utc:%Y-%m-%d %H:%M} UTC",
        iso=f"{utc:%Y-%m-%dT%H:%M:%S}Z",
    )


def long_date(night: date) -> str:
    return f"{night:%A, %B} {night.day}, {night.year}"


def render_report(
    report: NightReport,
    files: Sequence[str] = (),
    agency_pages: dict[str, str] | None = None,
    portal_pages: dict[str, str] | None = None,
) -> str:
    """The page; `files` are the night folder's other files (relative paths), which it links;
    `agency_pages` (agency name -> its page, relative to the report) links each scorecard row
    to its agency's page; `portal_pages` (portal name -> its observatory page) links the
    portals of the comparison with peers."""
    zone = report.settings.zone
    pages = agency_pages or {}
    portals = [
        _portal_view(portal, index, report.targets, zone, pages)
        for index, portal in enumerate(report.portals, 1)
    ]
    present = set(files)
    return environment.get_template("report.html.j2").render(
        title=report.settings.title,
        night=report.night.isoformat(),
        night_long=long_date(report.night),
        portals=portals,
        targets=_targets_in_words(report),
        method=_method(report),
        version=METRIC_VERSION,
        css=stylesheet(),
        tables_js=table_script(),
        as_of=moment(report.as_of, zone),
        zone=report.settings.timezone,
        csvs=[
            f"{table}.csv"
            for table in BOARD_TABLES + PROBE_BOARD_TABLES
            if f"{table}.csv" in present
        ],
        workbook="board.xlsx" if "board.xlsx" in present else None,
        pdf="report.pdf" if "report.pdf" in present else None,
        pdf_missing=report.pdf_missing,
        agencies="agencies/index.html" if "agencies/index.html" in present else None,
        peers=peer_section(report, portal_pages or {}),
        observatory=OBSERVATORY_PAGE if OBSERVATORY_PAGE in present else None,
    )


def peer_section(report: NightReport, pages: dict[str, str]) -> dict[str, Any] | None:
    """ "Connecticut among its peers": for each of the Board's portals measured tonight, each
    compared headline with its rank among every portal measured, the peers' median, the best
    peer and how many peers were measured; then the peers not measured. None on a night
    without peers."""
    if not night_has_peers(report):
        return None
    ranked = rankings(report)
    portals = []
    for portal in report.portals:
        if not portal.harvested:
            continue
        rows = []
        for ranking in ranked:
            mine = ranking.rank_of(portal.name)
            best, median = ranking.best_peer, ranking.peer_median
            unit = mine.value.unit if mine else best.value.unit if best else "percent"
            rows.append(
                {
                    "id": ranking.compared.metric_id,
                    "metric": ranking.compared.metric,
                    "words": ranking.compared.words,
                    "better": ranking.better,
                    "value": format_value(mine.value.value, unit) if mine else "n/a",
                    "raw": repr(mine.value.value) if mine else "",
                    "rank": mine.rank if mine else None,
                    "of": len(ranking.ranked),
                    "median": format_value(median, unit) if median is not None else "n/a",
                    "median_raw": repr(median) if median is not None else "",
                    "best": best.portal.name if best else None,
                    "best_href": pages.get(best.portal.name) if best else None,
                    "best_value": format_value(best.value.value, unit) if best else "",
                    "peers_measured": len(ranking.peers),
                }
            )
        portals.append({"name": portal.name, "href": pages.get(portal.name), "rows": rows})
    return {
        "portals": portals,
        "peers": len(report.peers),
        "not_measured": [
            {
                "name": peer.name,
                "href": pages.get(peer.name),
                "why": peer.absent_because or "no snapshot of this night",
            }
            for peer in not_measured(report)
        ],
    }


def render_index(
    nights: list[date],
    tables: tuple[str, ...],
    settings: ReportSettings | None = None,
    with_pdf: set[date] | frozenset[date] = frozenset(),
) -> str:
    """Every night that has a report, newest first (`nights` as publish lists them)."""
    settings = settings or ReportSettings()
    return environment.get_template("index.html.j2").render(
        title=settings.title,
        nights=[
            {"key": night.isoformat(), "long": long_date(night), "pdf": night in with_pdf}
            for night in sorted(nights, reverse=True)
        ],
        tables=tables,
        css=stylesheet(),
    )


def table_script() -> Markup:
    """tables.js (sorting and filtering), inlined as it is: our file, not portal text."""
    return Markup((TEMPLATES / "tables.js").read_text(encoding="utf-8"))


def stylesheet() -> Markup:
    """report.css and tables.css, inlined as they are: our files, not portal text, and escaping
    them would turn their quotes into &#34;, which CSS reads literally (dropping "Segoe UI"
    and the PDF's page numbers)."""
    return Markup(
        "\n".join(
            (TEMPLATES / name).read_text(encoding="utf-8") for name in ("report.css", "tables.css")
        )
    )


def _targets_in_words(report: NightReport) -> list[str]:
    """Each target of the portal file in words: "Datasets missing metadata (MD-1): under 20%"."""
    words = []
    for metric_id, target in sorted(report.targets.items()):
        metric = METRICS_BY_ID.get(metric_id)
        if metric is None:
            continue
        # The unit is the stored values' (a percentage for every headline share).
        units = [
            value.unit
            for portal in report.portals
            for name, value in portal.values.items()
            if name in metric.names
        ]
        unit = units[0] if units else ""
        words.append(f"{metric.title} ({metric_id}): {target_words(target, unit)}")
    return words


def _portal_view(
    portal: PortalNight,
    index: int,
    targets: dict[str, Target],
    zone: ZoneInfo,
    pages: dict[str, str],
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": portal.name,
        "anchor": f"portal-{index}",
        "harvested": portal.harvested,
        "site": safe_href(portal.site),
        "site_text": urlsplit(portal.site).netloc if portal.site else None,
        "absent_because": portal.absent_because,
    }
    if not portal.harvested:
        return view
    assert portal.snapshot_time is not None
    view.update(
        snapshot_time=moment(portal.snapshot_time, zone),
        previous_date=portal.previous_date,
        cards=_cards(portal, view["anchor"], targets),
        changes=portal.changes,
        ranked=[_scorecard_row(row, pages) for row in portal.scorecard if row["ranked"]],
        unranked=[_scorecard_row(row, pages) for row in portal.scorecard if not row["ranked"]],
        work=build_work_lists(
            portal.name,
            portal.missing,
            portal.stale,
            portal.values,
            "the portal's",
            # No table yet reads as no rows: the list then says "not yet probed".
            silently_stale=(portal.silently_stale or []) if portal.kind != "dcat" else None,
            broken_links=portal.broken_links or [],
        ),
        unknown_note=_unknown_note(portal),
    )
    return view


def _cards(portal: PortalNight, anchor: str, targets: dict[str, Target]) -> list[Card]:
    values = portal.values
    missing_what = (
        "in-scope datasets miss a description, an update frequency or tags"
        if portal.kind == "socrata"
        else "in-scope datasets miss a required DCAT-US field or hold an invalid one"
    )
    coverage = values.get("column_doc_coverage")
    full = values.get("pct_full_data_dictionary")
    changes = [
        f"{format_count(values[name].value)} {name.removeprefix('datasets_')}"
        for name in ("datasets_added", "datasets_removed", "datasets_renamed", "datasets_rekeyed")
        if name in values and values[name].value is not None
    ]
    inventory = [
        f"{format_count(values['assets_total'].value)} assets of every type."
        if "assets_total" in values
        else None,
        f"Since {portal.previous_date}: " + ", ".join(changes) + "."
        if portal.previous_date and changes
        else "The portal's first snapshot: no changes to count yet."
        if not portal.previous_date
        else None,
    ]
    return [
        _card(
            portal,
            f"{anchor}-md1",
            "Datasets missing metadata (MD-1)",
            ["pct_missing_metadata"],
            [_of(values.get("pct_missing_metadata"), missing_what)],
            targets,
        ),
        _card(
            portal,
            f"{anchor}-fr2",
            "Stale datasets (FR-2), with freshness unknown (FR-3)",
            ["pct_stale", "pct_freshness_unknown"],
            [
                _of(values.get("pct_stale"), "datasets with a schedule are overdue or delinquent"),
                _of(
                    values.get("pct_freshness_unknown"),
                    "datasets have a freshness that cannot be judged (no known schedule or "
                    "date): FR-2 cannot see them",
                ),
            ],
            targets,
        ),
        _data_date_card(portal, anchor, targets),
        _links_card(portal, anchor, targets),
        _card(
            portal,
            f"{anchor}-md2",
            "Meeting CT's metadata standard (MD-2)",
            ["pct_meets_ct_standard"],
            [_of(values.get("pct_meets_ct_standard"), "in-scope datasets meet every requirement")],
            targets,
        ),
        _card(
            portal,
            f"{anchor}-md5",
            "Columns documented (MD-5)",
            ["column_doc_coverage"],
            [
                _of(coverage, "columns are described"),
                _of(full, "datasets with columns have every column described"),
                f"Not measurable: {coverage.note}." if coverage and coverage.note else None,
            ],
            targets,
        ),
        _card(
            portal,
            f"{anchor}-inv1",
            "Datasets in scope (INV-1, INV-2)",
            ["datasets_in_scope"],
            inventory,
            targets,
        ),
    ]


NOT_PROBED = "not yet probed"


def _not_probed(what: str) -> str:
    return (
        f"No probe result for {what} yet: the probes run after the night's snapshot and reach "
        "each dataset or link once every few nights, so this figure appears once they have. "
        "Nothing is counted good or bad before it is checked."
    )


def _data_date_card(portal: PortalNight, anchor: str, targets: dict[str, Target]) -> Card:
    """FR-5 on a Socrata portal (the rows' own dates against the declared frequency); on a DCAT
    feed, FR-2 by the data's own date (FR-8: the map layer's edit date)."""
    values = portal.values
    if portal.kind != "dcat":
        silent, coverage = values.get("pct_silently_stale"), values.get("content_date_coverage")
        lines = [
            _of(
                silent,
                "datasets the metadata calls current (fresh or due) hold no row newer than 3 "
                "update periods",
            ),
            _of(coverage, "datasets with a date column have a content date"),
        ]
        if silent is None:
            lines = [_not_probed("the datasets' date columns")]
        return _card(
            portal,
            f"{anchor}-fr5",
            "Silently stale datasets (FR-5), with content-date coverage",
            ["pct_silently_stale", "content_date_coverage"],
            lines,
            targets,
            unmeasured=NOT_PROBED,
        )
    stale, coverage = values.get("pct_stale_by_data_date"), values.get("layer_date_coverage")
    after = values.get("pct_modified_after_data_edit")
    lines = [
        _of(stale, "datasets with a schedule are overdue or delinquent by their data's own date"),
        _of(coverage, "datasets with a map layer state when its data was last edited"),
        _of(after, "of those were modified (Hub's date) more than a day after their data"),
    ]
    if stale is None and coverage is None:
        lines = [_not_probed("the map layers' edit dates")]
    return _card(
        portal,
        f"{anchor}-fr8",
        "Stale by the data's own date (FR-8), with layer-date coverage",
        ["pct_stale_by_data_date", "layer_date_coverage"],
        lines,
        targets,
        unmeasured=NOT_PROBED,
    )


def _links_card(portal: PortalNight, anchor: str, targets: dict[str, Target]) -> Card:
    """AC-1: datasets with a broken link, and how many links answer."""
    values = portal.values
    broken, ok = values.get("pct_datasets_with_broken_link"), values.get("pct_links_ok")
    unchecked = values.get("links_not_checked")
    lines = [
        _of(
            broken,
            "datasets with a checked link have a broken one (not OK twice, at least 20 hours "
            "apart)",
        ),
        _of(ok, "links checked answered (2xx or 3xx)"),
        f"{format_count(unchecked.value)} links not checked (no recent result, or robots.txt "
        "asks us not to): counted neither good nor bad."
        if unchecked is not None and unchecked.value
        else None,
    ]
    if broken is None:
        lines = [_not_probed("the catalog's links")]
    return _card(
        portal,
        f"{anchor}-ac1",
        "Datasets with a broken link (AC-1), with links that answer",
        ["pct_datasets_with_broken_link", "pct_links_ok"],
        lines,
        targets,
        unmeasured=NOT_PROBED,
    )


def _of(value: Value | None, what: str) -> str | None:
    """'n of d <what>.' for a value counted over a denominator, else nothing."""
    if value is None or not value.denominator:
        return None
    return f"{format_count(value.numerator)} of {format_count(value.denominator)} {what}."


def _card(
    portal: PortalNight,
    card_id: str,
    title: str,
    metrics: list[str],
    lines: list[str | None],
    targets: dict[str, Target],
    unmeasured: str = "n/a",
) -> Card:
    """`unmeasured`: what a value with no row reads (the probe cards: "not yet probed")."""
    shown = [
        _shown(metric, portal.values.get(metric))
        if metric in portal.values
        else _shown(metric, None, unmeasured)
        for metric in metrics
    ]
    card = Card(id=card_id, title=title, values=shown, lines=[line for line in lines if line])
    first = portal.values.get(metrics[0])
    before = portal.previous.get(metrics[0])
    first_id = metric_for(metrics[0]).metric_id
    # Each shown value with a target in the portal file is judged against it.
    for metric in metrics:
        target_of = targets.get(metric_for(metric).metric_id)
        stored = portal.values.get(metric)
        if target_of is not None and stored is not None:
            judgement = judge(target_of, stored.value, stored.unit)
            card.judged.append(Judged(judgement.met, judgement.verdict, judgement.words))
    if first is not None:
        card.change = movement(
            first_id,
            first.value,
            before.value if before is not None else None,
            portal.previous_date,
            first.unit,
            targets.get(first_id),
        )
    first_target = targets.get(first_id)
    target = (
        (first_target.level, f"plan target: {target_words(first_target, first.unit)}")
        if first_target is not None and first is not None
        else None
    )
    series = [
        Series(_label(metric), portal.series.get(metric, []))
        for metric in metrics
        if any(value is not None for _, value in portal.series.get(metric, []))
    ]
    if series and first is not None:
        caption = f"{title}, {portal.name}, every night to {portal.series[metrics[0]][-1][0]}."
        axis = _axis(metrics[0], first.unit)
        card.chart = trend_chart(f"{title} on {portal.name}", series, first.unit, target, axis)
        card.caption = caption
    return card


def _label(metric: str) -> str:
    return {
        "pct_missing_metadata": "missing",
        "pct_stale": "stale",
        "pct_freshness_unknown": "unknown",
        "pct_meets_ct_standard": "meets standard",
        "column_doc_coverage": "documented",
        "datasets_in_scope": "datasets",
        "pct_silently_stale": "silently stale",
        "content_date_coverage": "with a content date",
        "pct_stale_by_data_date": "stale by data date",
        "layer_date_coverage": "with a layer date",
        "pct_datasets_with_broken_link": "with a broken link",
        "pct_links_ok": "links that answer",
    }.get(metric, metric)


def _axis(metric: str, unit: str) -> str:
    """What a chart's y axis measures, with its unit."""
    if metric == "column_doc_coverage":
        return "% of columns"
    return "% of datasets" if unit == "percent" else "datasets"


def _shown(metric: str, value: Value | None, unmeasured: str = "n/a") -> Shown:
    if value is None or value.value is None:
        return Shown(metric, "", "n/a" if value is not None else unmeasured, _label(metric))
    return Shown(metric, repr(value.value), format_value(value.value, value.unit), _label(metric))


SCORECARD_CELLS = (
    ("md1_pct_missing_metadata", "md1_n", "percent"),
    ("md2_pct_meets_ct_standard", "md2_n", "percent"),
    ("md4_mean_metadata_score", "md4_n", "score"),
    ("md5_column_doc_coverage", "md5_n", "percent"),
    ("fr2_pct_stale", "fr2_n", "percent"),
    ("fr3_pct_freshness_unknown", "fr3_n", "percent"),
    ("us2_pct_unused", "us2_n", "percent"),
)


def _scorecard_row(row: dict[str, Any], pages: dict[str, str]) -> dict[str, Any]:
    return {
        "rank": row["rank"],
        "agency": row["agency"],
        "href": pages.get(row["agency"]),
        "datasets": row["datasets"],
        "cells": [
            {
                "raw": "" if row[value] is None else row[value],
                "text": format_value(row[value], unit),
                "n": row[n] if row[value] is not None else None,
            }
            for value, n, unit in SCORECARD_CELLS
        ],
    }


def _unknown_note(portal: PortalNight) -> str:
    unknown = portal.values.get("pct_freshness_unknown")
    if unknown and unknown.value is not None and unknown.value > 50:
        return f"but the freshness of {unknown.value:.0f}% of its datasets is unknown"
    return ""


def _method(report: NightReport) -> list[dict[str, Any]]:
    entries = []
    for metric in report.metrics:
        tonight = []
        for portal in report.portals:
            for name, value in sorted(portal.values.items()):
                if metric_for(name) is metric and not name.startswith("assets_total:"):
                    tonight.append(
                        {
                            "portal": portal.name,
                            "metric": name,
                            "label": metric_label(name),
                            "numerator": _number(value.numerator),
                            "denominator": _number(value.denominator),
                            "value": format_value(value.value, value.unit),
                            "note": value.note or "",
                        }
                    )
        entries.append(
            {
                "id": metric.metric_id,
                "title": metric.title,
                "definition": metric.definition,
                "numerator": metric.numerator,
                "denominator": metric.denominator,
                "tonight": tonight,
            }
        )
    return entries


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
