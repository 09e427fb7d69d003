"""A page per agency and an index of every agency, inside a night's report folder
(`agencies/<slug>.html`, `agencies/<slug>.csv`, `agencies/index.html`).

An agency is a name in the night's board.agency_scorecard; one on several portals gets one
page with a section per portal. Its figures, trends and freshness counts are board.plan_metrics'
per-agency rows; its work lists are the night's board rows cut to the agency, so their counts
are its numerators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from slugify import slugify

from ctdata_pipeline.metrics.agencies import likely_agency_variants, published_agency_names
from ctdata_pipeline.metrics.targets import judge, movement
from ctdata_pipeline.portals import PortalFile
from ctdata_pipeline.report.data import NightReport, PortalNight, Value, format_count, format_value
from ctdata_pipeline.report.exports import write_csv
from ctdata_pipeline.report.html import environment, stylesheet, table_script
from ctdata_pipeline.report.worklists import RAW_AGENCY_COLUMN, WorkLists, build_work_lists

AGENCY_FOLDER = "agencies"
INDEX_PAGE = "index.html"
SLUG_MAX = 60
# Slugs that would overwrite another file of the folder, or mean nothing.
RESERVED_SLUGS = frozenset({"index", "agency", ""})

# The scorecard's figures (metrics.md GV-4), in its order: (metric id, plan_metrics name, words).
FIGURES = (
    ("MD-1", "pct_missing_metadata", "Missing metadata"),
    ("MD-2", "pct_meets_ct_standard", "Meets CT's standard"),
    ("MD-4", "mean_metadata_score", "Mean metadata score"),
    ("MD-5", "column_doc_coverage", "Columns documented"),
    ("FR-2", "pct_stale", "Stale"),
    ("FR-3", "pct_freshness_unknown", "Freshness unknown"),
    ("FR-5", "pct_silently_stale", "Silently stale"),
    ("AC-1", "pct_datasets_with_broken_link", "With a broken link"),
    ("US-2", "pct_unused", "Unused"),
)
# FR-1's states, in the order HDX shows them per organisation, then the states with no schedule.
FRESHNESS = (
    ("FRESH", "Fresh: updated within its declared frequency"),
    ("DUE", "Due: its update is due"),
    ("OVERDUE", "Overdue"),
    ("DELINQUENT", "Delinquent: long overdue"),
    ("UNKNOWN", "Unknown: no known schedule or date"),
    ("NOT_SCHEDULED", "Not scheduled: declared as updated irregularly or as needed"),
    ("STATIC", "Static: declared as never updated"),
)
CSV_COLUMNS = (
    "portal",
    "work_list",
    "asset_id",
    "title",
    "agency",
    RAW_AGENCY_COLUMN,
    "what_to_fix",
    "missing_fields",
    "freshness_state",
    "days_overdue",
    "data_updated_at",
    "views_last_month",
    "url",
)


def agency_slugs(names: Sequence[str]) -> dict[str, str]:
    """name -> a file name stem: ASCII, lower case, at most SLUG_MAX characters, never a path
    (python-slugify keeps only letters, digits and hyphens) and unique among `names` (in sorted
    order a later name whose slug is taken gets -2, -3...), so a night's pages never collide."""
    slugs: dict[str, str] = {}
    taken: set[str] = set()
    for name in sorted(set(names)):
        base = slugify(name, max_length=SLUG_MAX, word_boundary=True) or "agency"
        if base in RESERVED_SLUGS:
            base = f"agency-{base}".rstrip("-")
        slug, suffix = base, 2
        while slug in taken:
            slug = f"{base[: SLUG_MAX - len(str(suffix)) - 1]}-{suffix}"
            suffix += 1
        taken.add(slug)
        slugs[name] = slug
    return slugs


@dataclass
class AgencyOnPortal:
    """One agency on one portal: tonight's values and the portal's, trends, work lists."""

    portal: PortalNight
    scorecard: dict[str, Any]
    values: dict[str, Value] = field(default_factory=dict)
    series: dict[str, dict[date, float | None]] = field(default_factory=dict)
    previous: dict[str, Value] = field(default_factory=dict)
    previous_date: date | None = None
    missing: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    silently_stale: list[dict[str, Any]] = field(default_factory=list)
    broken_links: list[dict[str, Any]] = field(default_factory=list)
    published_as: list[str] = field(default_factory=list)


@dataclass
class Agency:
    name: str
    slug: str
    portals: list[AgencyOnPortal]

    @property
    def page(self) -> str:
        return f"{self.slug}.html"


def load_agencies(conn: duckdb.DuckDBPyConnection, report: NightReport) -> list[Agency]:
    """Every agency of the night's scorecards, with its per-agency plan_metrics rows up to the
    night and its share of the portal's work lists."""
    on_portals: dict[str, list[AgencyOnPortal]] = {}
    raw_names = _raw_names(conn, report.night)
    for portal in report.portals:
        if not portal.harvested:
            continue
        found = {
            row["agency"]: AgencyOnPortal(portal=portal, scorecard=row) for row in portal.scorecard
        }
        for row in portal.missing:
            if row["agency"] in found:
                found[row["agency"]].missing.append(row)
        for row in portal.stale:
            if row["agency"] in found:
                found[row["agency"]].stale.append(row)
        for row in portal.silently_stale or []:
            if row["agency"] in found:
                found[row["agency"]].silently_stale.append(row)
        for row in portal.broken_links or []:
            if row["agency"] in found:
                found[row["agency"]].broken_links.append(row)
        _fill_metrics(conn, portal.name, report.night, found)
        for name, entry in found.items():
            entry.published_as = raw_names.get((portal.name, name), [])
            on_portals.setdefault(name, []).append(entry)
    slugs = agency_slugs(list(on_portals))
    return [
        Agency(name=name, slug=slugs[name], portals=entries)
        for name, entries in sorted(on_portals.items(), key=lambda item: item[0].casefold())
    ]


def _fill_metrics(
    conn: duckdb.DuckDBPyConnection, portal: str, night: date, found: dict[str, AgencyOnPortal]
) -> None:
    wanted = [metric for _, metric, _ in FIGURES] + [f"freshness_state:{s}" for s, _ in FRESHNESS]
    rows = conn.execute(
        """
        SELECT snapshot_date, agency, metric, value, numerator, denominator, unit, note
        FROM board.plan_metrics
        WHERE portal = ? AND agency IS NOT NULL AND snapshot_date <= ?
          AND list_contains(?, metric)
        ORDER BY snapshot_date
        """,
        [portal, night, wanted],
    ).fetchall()
    nights: dict[str, list[date]] = {}
    for snapshot_date, agency, *_ in rows:
        if agency in found:
            known = nights.setdefault(agency, [])
            if not known or known[-1] != snapshot_date:
                known.append(snapshot_date)
    for name, entry in found.items():
        known = nights.get(name, [])
        entry.previous_date = known[-2] if len(known) > 1 and known[-1] == night else None
    for snapshot_date, agency, metric, value, numerator, denominator, unit, note in rows:
        entry = found.get(agency)
        if entry is None:
            continue
        stored = Value(value, numerator, denominator, unit, note)
        if snapshot_date == night:
            entry.values[metric] = stored
        elif snapshot_date == entry.previous_date:
            entry.previous[metric] = stored
        entry.series.setdefault(metric, {})[snapshot_date] = value


def _raw_names(conn: duckdb.DuckDBPyConnection, night: date) -> dict[tuple[str, str], list[str]]:
    """(portal, agency) -> the other names its datasets were published under (grouped under
    the canonical name by the portal file's agency_aliases)."""
    names: dict[tuple[str, str], list[str]] = {}
    for portal, agency, raw in conn.execute(
        f"SELECT DISTINCT portal, agency, {RAW_AGENCY_COLUMN} FROM metrics.datasets "
        f"WHERE snapshot_date = ? AND {RAW_AGENCY_COLUMN} IS NOT NULL "
        f"AND {RAW_AGENCY_COLUMN} <> agency ORDER BY 1, 2, 3",
        [night],
    ).fetchall():
        names.setdefault((portal, agency), []).append(raw)
    return names


# --- views -------------------------------------------------------------------------------------


def figure_rows(entry: AgencyOnPortal, report: NightReport) -> list[dict[str, Any]]:
    """The agency's FIGURES on one portal beside the portal's, judged and with their movement
    since the night before, as its page shows them (and its digest)."""
    rows = []
    for metric_id, metric, words in FIGURES:
        mine = entry.values.get(metric)
        portal = entry.portal.values.get(metric)
        target = report.targets.get(metric_id)
        unit = (mine or portal).unit if (mine or portal) else "percent"
        judged = judge(target, mine.value if mine else None, unit) if target else None
        before = entry.previous.get(metric)
        rows.append(
            {
                "id": metric_id,
                "words": words,
                "agency": _shown(mine),
                "agency_n": _of(mine),
                "portal": _shown(portal),
                "portal_n": _of(portal),
                "target": judged.target if judged else "no target set",
                "verdict": judged.verdict if judged else "",
                "judgement": judged.words if judged else "",
                "movement": movement(
                    metric_id,
                    mine.value if mine else None,
                    before.value if before else None,
                    entry.previous_date,
                    unit,
                    target,
                ),
                "note": mine.note if mine and mine.note else "",
            }
        )
    return rows


def _shown(value: Value | None) -> str:
    return "n/a" if value is None else format_value(value.value, value.unit)


def _of(value: Value | None) -> str:
    if value is None or value.value is None or value.denominator is None:
        return ""
    if value.unit == "score":
        return f"mean of {value.denominator:,.0f} datasets"
    return f"{value.numerator:,.0f} of {value.denominator:,.0f}"


def _trend(entry: AgencyOnPortal) -> dict[str, Any]:
    nights = sorted({night for series in entry.series.values() for night in series}, reverse=True)
    units = {metric: entry.values.get(metric) for _, metric, _ in FIGURES}
    return {
        "header": ["Night"] + [f"{words} ({metric_id})" for metric_id, _, words in FIGURES],
        "rows": [
            [night.isoformat()]
            + [
                format_value(
                    entry.series.get(metric, {}).get(night),
                    units[metric].unit if units[metric] else "percent",
                )
                for _, metric, _ in FIGURES
            ]
            for night in nights
        ],
        "nights": len(nights),
    }


def _freshness(entry: AgencyOnPortal) -> list[dict[str, Any]]:
    rows = []
    for state, words in FRESHNESS:
        value = entry.values.get(f"freshness_state:{state}")
        rows.append(
            {"state": state, "words": words, "count": format_count(value.value if value else None)}
        )
    return rows


def agency_work_lists(entry: AgencyOnPortal) -> WorkLists:
    """The portal's work lists cut to the agency (the probe lists as on the main page)."""
    return build_work_lists(
        entry.portal.name,
        entry.missing,
        entry.stale,
        entry.values,
        "this agency's",
        silently_stale=entry.silently_stale if entry.portal.kind != "dcat" else None,
        broken_links=entry.broken_links,
    )


def _portal_section(entry: AgencyOnPortal, report: NightReport, index: int) -> dict[str, Any]:
    work: WorkLists = agency_work_lists(entry)
    return {
        "name": entry.portal.name,
        "anchor": f"portal-{index}",
        "datasets": entry.scorecard["datasets"],
        "rank": entry.scorecard["rank"],
        "ranked": entry.scorecard["ranked"],
        "ranked_of": sum(1 for row in entry.portal.scorecard if row["ranked"]),
        "figures": figure_rows(entry, report),
        "trend": _trend(entry),
        "freshness": _freshness(entry),
        "work": work,
        "published_as": entry.published_as,
        "show_agency": work.has_raw_names,
    }


def render_agency(agency: Agency, report: NightReport) -> str:
    sections = [_portal_section(entry, report, i) for i, entry in enumerate(agency.portals, 1)]
    return environment.get_template("agency.html.j2").render(
        agency=agency.name,
        night=report.night.isoformat(),
        portals=sections,
        csv=f"{agency.slug}.csv",
        css=stylesheet(),
        tables_js=table_script(),
    )


def render_agency_index(
    agencies: Sequence[Agency],
    report: NightReport,
    variant_groups: Sequence[Sequence[str]] | None = None,
) -> str:
    """The index of every agency. `variant_groups`: names that may be one agency, for a person
    to confirm (unreconciled_variants); None leaves the section out, an empty list says none
    were found."""
    rows = []
    for agency in agencies:
        for entry in agency.portals:
            md1 = entry.values.get("pct_missing_metadata")
            fr2 = entry.values.get("pct_stale")
            rows.append(
                {
                    "agency": agency.name,
                    "href": agency.page,
                    "portal": entry.portal.name,
                    "portals": len(agency.portals),
                    "datasets": entry.scorecard["datasets"],
                    "md1": _shown(md1),
                    "md1_raw": "" if md1 is None or md1.value is None else md1.value,
                    "md1_n": _of(md1),
                    "fr2": _shown(fr2),
                    "fr2_raw": "" if fr2 is None or fr2.value is None else fr2.value,
                    "fr2_n": _of(fr2),
                }
            )
    pages = {agency.name: agency.page for agency in agencies}
    groups = None
    if variant_groups is not None:
        groups = [[{"name": n, "href": pages.get(n)} for n in group] for group in variant_groups]
    return environment.get_template("agencies_index.html.j2").render(
        night=report.night.isoformat(),
        agencies=len(agencies),
        rows=rows,
        variant_groups=groups,
        css=stylesheet(),
        tables_js=table_script(),
    )


def write_agency_csv(path: Path, agency: Agency) -> int:
    """The agency's work-list rows, every portal, neutralized as exports.write_csv does."""
    rows: list[tuple[Any, ...]] = []
    for entry in agency.portals:
        work = agency_work_lists(entry)
        raw = {row["asset_id"]: row.get(RAW_AGENCY_COLUMN) for row in entry.missing + entry.stale}
        by_id = {row["asset_id"]: row for row in entry.missing}
        stale_by_id = {row["asset_id"]: row for row in entry.stale}
        for listed in (work.md1, work.md2):
            for row in listed.rows:
                source = by_id[row["asset_id"]]
                rows.append(
                    (
                        entry.portal.name,
                        listed.title,
                        row["asset_id"],
                        source["title"],
                        source["agency"],
                        raw.get(row["asset_id"]),
                        " ".join(part for part in (row["fix"], row["also"]) if part),
                        list(source["missing_fields"]),
                        None,
                        None,
                        None,
                        None,
                        source["url"],
                    )
                )
        for row in work.stale.rows:
            source = stale_by_id[row["asset_id"]]
            rows.append(
                (
                    entry.portal.name,
                    work.stale.title,
                    row["asset_id"],
                    source["title"],
                    source["agency"],
                    raw.get(row["asset_id"]),
                    row["fix"],
                    None,
                    source["freshness_state"],
                    source["days_overdue"],
                    source["data_updated_at"],
                    source["views_last_month"],
                    source["url"],
                )
            )
        for row, source in zip(
            work.silent.rows if work.silent else [],
            entry.silently_stale if work.silent else [],
            strict=True,
        ):
            rows.append(
                (
                    entry.portal.name,
                    "Silently stale datasets (FR-5)",
                    row["asset_id"],
                    source["title"],
                    source["agency"],
                    source.get(RAW_AGENCY_COLUMN),
                    row["fix"],
                    None,
                    None,
                    None,
                    source["data_updated_at"],
                    None,
                    source["permalink"],
                )
            )
        for row, source in zip(
            work.broken.rows if work.broken else [],
            entry.broken_links if work.broken else [],
            strict=True,
        ):
            rows.append(
                (
                    entry.portal.name,
                    "Broken links (AC-1)",
                    row["asset_id"],
                    source["title"],
                    source["agency"],
                    source.get(RAW_AGENCY_COLUMN),
                    row["fix"],
                    None,
                    None,
                    None,
                    None,
                    None,
                    source["url"],
                )
            )
    write_csv(path, CSV_COLUMNS, rows)
    return len(rows)


def write_agency_pages(
    folder: Path,
    conn: duckdb.DuckDBPyConnection,
    report: NightReport,
    variant_groups: Sequence[Sequence[str]] | None = None,
) -> list[Agency]:
    """`folder/agencies/`: a page and a CSV per agency, and the index. Returns the agencies."""
    agencies = load_agencies(conn, report)
    target = folder / AGENCY_FOLDER
    target.mkdir()
    for agency in agencies:
        (target / agency.page).write_text(render_agency(agency, report), encoding="utf-8")
        write_agency_csv(target / f"{agency.slug}.csv", agency)
    (target / INDEX_PAGE).write_text(
        render_agency_index(agencies, report, variant_groups), encoding="utf-8"
    )
    return agencies


def unreconciled_variants(
    conn: duckdb.DuckDBPyConnection, report: NightReport, portal_file: PortalFile
) -> list[tuple[str, ...]]:
    """The night's agency names that look like one agency but are not grouped by the portal
    file's `agency_aliases:` (metrics/agencies.py's rule), over every harvested portal."""
    groups: set[tuple[str, ...]] = set()
    in_file = {portal.name: portal for portal in portal_file.portals}
    for portal in report.portals:
        if not portal.harvested:
            continue
        aliases = portal_file.aliases_for(in_file.get(portal.name))
        names = published_agency_names(conn, portal.name, report.night)
        groups.update(likely_agency_variants(names, aliases))
    return sorted(groups)


def agency_links(agencies: Sequence[Agency]) -> dict[str, str]:
    """agency name -> its page, relative to the night's report.html."""
    return {agency.name: f"{AGENCY_FOLDER}/{agency.page}" for agency in agencies}
