"""The observatory: `observatory.html`, every portal of the night (the Board's own and the peers)
ranked on each compared headline, and `portals/<slug>.html`, a page per portal with its figures,
datasets, agencies and catalog address. Written beside the report on a night with peers."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from ctdata_pipeline.report.agencies import agency_slugs
from ctdata_pipeline.report.data import (
    HEADLINES,
    NightReport,
    PortalNight,
    Value,
    format_count,
    format_value,
    on_this_machine,
)
from ctdata_pipeline.report.html import environment, moment, stylesheet, table_script
from ctdata_pipeline.report.peers import (
    COMPARED,
    OBSERVATORY_PAGE,
    PORTAL_FOLDER,
    Ranking,
    night_has_peers,
    rankings,
)
from ctdata_pipeline.report.worklists import safe_href


def portal_slugs(report: NightReport) -> dict[str, str]:
    """portal name -> its page's file stem, path-safe and unique (the agency pages' rule)."""
    return agency_slugs([portal.name for portal in (*report.portals, *report.peers)])


def portal_links(report: NightReport, prefix: str = "") -> dict[str, str]:
    """portal name -> its page, relative to a page in the night's folder (`prefix` ''), or to
    one in portals/ (`prefix` '../')."""
    return {
        name: f"{prefix}{PORTAL_FOLDER}/{slug}.html" for name, slug in portal_slugs(report).items()
    }


def write_observatory(folder: Path, report: NightReport) -> int:
    """observatory.html and portals/<slug>.html in the night's (scratch) folder when the night
    has peers; returns how many portal pages were written (0 without peers)."""
    if not night_has_peers(report):
        return 0
    ranked = rankings(report)
    (folder / OBSERVATORY_PAGE).write_text(render_observatory(report, ranked), encoding="utf-8")
    pages = folder / PORTAL_FOLDER
    pages.mkdir()
    slugs = portal_slugs(report)
    for portal in (*report.portals, *report.peers):
        (pages / f"{slugs[portal.name]}.html").write_text(
            render_portal_page(report, portal, ranked), encoding="utf-8"
        )
    return len(slugs)


def _counted(value: Value) -> str:
    if value.denominator:
        return f"{format_count(value.numerator)} of {format_count(value.denominator)}"
    return ""


def render_observatory(report: NightReport, ranked: list[Ranking]) -> str:
    links = portal_links(report)
    tables = []
    for ranking in ranked:
        tables.append(
            {
                "id": ranking.compared.metric_id,
                "words": ranking.compared.words,
                "better": ranking.better,
                "rows": [
                    {
                        "rank": entry.rank,
                        "name": entry.portal.name,
                        "href": links[entry.portal.name],
                        "own": entry.portal.role != "peer",
                        "value": format_value(entry.value.value, entry.value.unit),
                        "raw": repr(entry.value.value),
                        "counted": _counted(entry.value),
                    }
                    for entry in ranking.ranked
                ],
                "unmeasured": [
                    {"name": portal.name, "href": links[portal.name]}
                    for portal in ranking.unmeasured
                    if portal.harvested
                ],
            }
        )
    everyone = [*report.portals, *report.peers]
    return environment.get_template("observatory.html.j2").render(
        title=report.settings.title,
        night=report.night.isoformat(),
        tables=tables,
        own=len(report.portals),
        peers=len(report.peers),
        absent=[
            {
                "name": portal.name,
                "href": links[portal.name],
                "own": portal.role != "peer",
                "why": portal.absent_because or "no snapshot of this night",
            }
            for portal in everyone
            if not portal.harvested
        ],
        css=stylesheet(),
        tables_js=table_script(),
        as_of=moment(report.as_of, report.settings.zone),
    )


def _catalog_address(portal: PortalNight) -> tuple[str | None, str | None]:
    """(link, text) of the catalog the portal file names: a link only for an http(s) address
    off this machine (a loopback address means nothing to a reader)."""
    if not portal.url:
        return None, None
    host = urlsplit(portal.url).hostname or ""
    if on_this_machine(host):
        return None, None
    return safe_href(portal.url), portal.url


def render_portal_page(report: NightReport, portal: PortalNight, ranked: list[Ranking]) -> str:
    by_metric = {ranking.compared.metric: ranking for ranking in ranked}
    figures = []
    # The report's headlines, and the compared ones it shows only in its scorecards (MD-4).
    shown = [*HEADLINES]
    shown += [
        (c.metric, f"{c.words} ({c.metric_id})") for c in COMPARED if c.metric not in dict(shown)
    ]
    for metric, words in shown:
        value = portal.values.get(metric)
        if value is None:
            continue
        ranking = by_metric.get(metric)
        mine = ranking.rank_of(portal.name) if ranking else None
        figures.append(
            {
                "metric": metric,
                "words": words,
                "value": format_value(value.value, value.unit),
                "raw": "" if value.value is None else repr(value.value),
                "counted": _counted(value),
                "rank": f"{mine.rank} of {len(ranking.ranked)}" if mine and ranking else "",
            }
        )
    href, text = _catalog_address(portal)
    agencies = portal.agencies if portal.role == "peer" else len(portal.scorecard)
    return environment.get_template("portal.html.j2").render(
        title=report.settings.title,
        night=report.night.isoformat(),
        name=portal.name,
        own=portal.role != "peer",
        kind={"socrata": "Socrata", "dcat": "DCAT-US feed"}.get(portal.kind, portal.kind),
        harvested=portal.harvested,
        absent_because=portal.absent_because or "no snapshot of this night",
        snapshot_time=moment(portal.snapshot_time, report.settings.zone)
        if portal.snapshot_time
        else None,
        catalog_href=href,
        catalog_text=text,
        datasets=_count_of(portal, "datasets_in_scope"),
        assets=_count_of(portal, "assets_total"),
        agencies=agencies if portal.harvested else None,
        figures=figures,
        css=stylesheet(),
    )


def _count_of(portal: PortalNight, metric: str) -> str | None:
    value = portal.values.get(metric)
    return format_count(value.value) if value is not None else None
