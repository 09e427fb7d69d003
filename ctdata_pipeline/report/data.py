"""What the Board report shows for one night, read from the board tables."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import duckdb

from ctdata_pipeline.metrics.definitions import METRICS, Metric
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import PortalFile, ReportSettings, Target

# The headline figures of the report, per portal: (metric name, short label).
HEADLINES = (
    ("pct_missing_metadata", "Datasets missing metadata (MD-1)"),
    ("pct_stale", "Stale datasets (FR-2)"),
    ("pct_freshness_unknown", "Freshness unknown (FR-3)"),
    ("pct_silently_stale", "Silently stale datasets (FR-5)"),
    ("pct_datasets_with_broken_link", "Datasets with a broken link (AC-1)"),
    ("pct_meets_ct_standard", "Meeting CT's metadata standard (MD-2)"),
    ("column_doc_coverage", "Columns documented (MD-5)"),
    ("pct_full_data_dictionary", "Datasets with a full data dictionary (MD-5)"),
    ("datasets_in_scope", "Datasets (INV-1)"),
    ("assets_total", "Assets of every type (INV-1)"),
    ("datasets_added", "Datasets added (INV-2)"),
    ("datasets_removed", "Datasets removed (INV-2)"),
    ("datasets_renamed", "Datasets renamed (INV-2)"),
)
BOARD_TABLES = (
    "plan_metrics",
    "missing_metadata",
    "stale_datasets",
    "agency_scorecard",
    "catalog_changes",
)
# The board tables the probe metrics write (metrics v2): a warehouse whose probes never ran
# has none, and the report says "not yet probed" rather than failing.
PROBE_BOARD_TABLES = ("silently_stale", "broken_links")
# Why a portal has no snapshot when no run harvested it that night (report/absence.py).
NOT_HARVESTED = "not harvested that night"


@dataclass(frozen=True)
class Value:
    """One metric value: the number and how it was counted."""

    value: float | None
    numerator: float | None
    denominator: float | None
    unit: str
    note: str | None


@dataclass
class PortalNight:
    """Everything the report says about one portal on one night."""

    name: str
    kind: str
    snapshot_time: datetime | None
    source: str | None
    # The portal's public address for readers (never the API's), None when it has none.
    site: str | None = None
    # Why there is no snapshot that night, when there is none and it is known.
    absent_because: str | None = None
    values: dict[str, Value] = field(default_factory=dict)  # tonight, portal-wide
    previous: dict[str, Value] = field(default_factory=dict)  # the night before
    previous_date: date | None = None
    series: dict[str, list[tuple[date, float | None]]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    scorecard: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    # The probe work lists (FR-5, AC-1); None when the warehouse has no such table yet.
    silently_stale: list[dict[str, Any]] | None = None
    broken_links: list[dict[str, Any]] | None = None
    role: str = "own"
    # The portal file's `url` (a DCAT feed, a Socrata site): the observatory's portal pages.
    url: str | None = None
    agencies: int | None = None  # agencies with in-scope datasets tonight (a peer's)

    @property
    def harvested(self) -> bool:
        return self.snapshot_time is not None


@dataclass
class NightReport:
    night: date
    portals: list[PortalNight]  # the Board's own (role: own): every section but the peers'
    metrics: tuple[Metric, ...] = METRICS
    settings: ReportSettings = field(default_factory=ReportSettings)
    targets: dict[str, Target] = field(default_factory=dict)  # metric id -> the plan's target
    # Why the night's folder has no report.pdf ("Chromium not found ..."), when it has none.
    pdf_missing: str | None = None
    # The portal file's peers (role: peer), tonight's portal-wide values only: what the
    # comparison with peers and the observatory read (report/peers.py).
    peers: list[PortalNight] = field(default_factory=list)

    @property
    def as_of(self) -> datetime:
        """When the newest of the night's stored snapshots was harvested (02:00 New York on the
        night when none was): the report's time. It is a fact of the stored data, not of the
        clock, so a night whose data did not change gets the same report, byte for byte."""
        everyone = [*self.portals, *self.peers]
        harvested = [p.snapshot_time for p in everyone if p.snapshot_time is not None]
        return max(harvested, default=night_instant(self.night))


def load_night(
    conn: duckdb.DuckDBPyConnection,
    night: date,
    portal_file: PortalFile,
    *,
    why_absent: Callable[[str], str] | None = None,
) -> NightReport:
    """The report's data for `night`, for each portal of the portal file (a portal with no
    snapshot that night is listed as such, with `why_absent(portal)` when given). The Board's
    own portals are `portals` (with a stored portal the file no longer names); its peers are
    `peers`, with their values of the night alone."""
    peer_names = portal_file.peer_names
    portal_names = portal_file.own_names
    stored = {
        row[0]: row[1:]
        for row in conn.execute(
            "SELECT portal, kind, snapshot_time, source_url FROM catalog.snapshots "
            "WHERE snapshot_date = ?",
            [night],
        ).fetchall()
    }
    names = portal_names + sorted(set(stored) - set(portal_names) - set(peer_names))
    portals, peers = [], []
    for name in names + peer_names:
        kind, snapshot_time, source = stored.get(name, ("", None, None))
        entry = next((p for p in portal_file.portals if p.name == name), None)
        portal = PortalNight(
            name=name,
            kind=kind,
            snapshot_time=snapshot_time,
            source=source,
            site=public_site(
                entry.kind if entry else kind,
                entry.url if entry else source,
                entry.domain if entry else None,
            ),
            role=entry.role if entry else "own",
            url=entry.url if entry else source,
        )
        if not portal.harvested and why_absent is not None:
            portal.absent_because = why_absent(name)
        (peers if portal.role == "peer" else portals).append(portal)
    for portal in portals:
        if portal.harvested:
            _fill(conn, portal, night)
    _fill_peers(conn, [peer for peer in peers if peer.harvested], night)
    return NightReport(
        night=night,
        portals=portals,
        settings=portal_file.report,
        targets=dict(portal_file.targets),
        peers=peers,
    )


def _fill_peers(conn: duckdb.DuckDBPyConnection, peers: list[PortalNight], night: date) -> None:
    """Tonight's portal-wide values and agency count of every peer, in two queries whatever
    the number of peers (an observatory may hold hundreds)."""
    if not peers:
        return
    by_name = {peer.name: peer for peer in peers}
    names = list(by_name)
    for portal, metric, value, numerator, denominator, unit, note in conn.execute(
        "SELECT portal, metric, value, numerator, denominator, unit, note "
        "FROM board.plan_metrics WHERE snapshot_date = ? AND agency IS NULL "
        "AND portal IN (SELECT unnest(?))",
        [night, names],
    ).fetchall():
        by_name[portal].values[metric] = Value(value, numerator, denominator, unit, note)
    for peer in peers:
        peer.agencies = 0
    for portal, agencies in conn.execute(
        "SELECT portal, count(*) FROM board.agency_scorecard WHERE snapshot_date = ? "
        "AND portal IN (SELECT unnest(?)) GROUP BY portal",
        [night, names],
    ).fetchall():
        by_name[portal].agencies = agencies


def public_site(kind: str, url: str | None, domain: str | None) -> str | None:
    """The address a reader can visit: scheme + host of the portal (a DCAT feed's site), never
    the API path. A portal served on this machine (the demo, the tests) has no public address:
    its Socrata `domain`, when the portal file names one, is the site its datasets belong to."""
    if url:
        parts = urlsplit(url)
        if parts.hostname and not on_this_machine(parts.hostname):
            return f"{parts.scheme}://{parts.netloc}"
    if kind == "socrata" and domain:
        return f"https://{domain}"
    return None


def on_this_machine(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fill(conn: duckdb.DuckDBPyConnection, portal: PortalNight, night: date) -> None:
    rows = conn.execute(
        """
        SELECT snapshot_date, metric, value, numerator, denominator, unit, note
        FROM board.plan_metrics
        WHERE portal = ? AND agency IS NULL AND snapshot_date <= ?
        ORDER BY snapshot_date
        """,
        [portal.name, night],
    ).fetchall()
    dates = sorted({row[0] for row in rows})
    portal.previous_date = dates[-2] if len(dates) > 1 and dates[-1] == night else None
    for snapshot_date, metric, value, numerator, denominator, unit, note in rows:
        stored = Value(value, numerator, denominator, unit, note)
        if snapshot_date == night:
            portal.values[metric] = stored
        elif snapshot_date == portal.previous_date:
            portal.previous[metric] = stored
        portal.series.setdefault(metric, []).append((snapshot_date, value))
    portal.changes = _records(
        conn,
        "SELECT change, asset_id, title, agency, previous_title, previous_asset_id "
        "FROM board.catalog_changes "
        "WHERE portal = ? AND snapshot_date = ? ORDER BY change, title",
        [portal.name, night],
    )
    portal.scorecard = _records(
        conn,
        "SELECT * FROM board.agency_scorecard WHERE portal = ? AND snapshot_date = ? "
        "ORDER BY ranked DESC, rank, agency",
        [portal.name, night],
    )
    portal.stale = _records(
        conn,
        "SELECT * FROM board.stale_datasets WHERE portal = ? AND snapshot_date = ? "
        "ORDER BY work_rank",
        [portal.name, night],
    )
    # md1_missing (metrics.datasets) says which of a row's gaps are MD-1's: the work list
    # that explains the MD-1 headline names those first.
    portal.missing = _records(
        conn,
        "SELECT missing.*, assessed.md1_missing FROM board.missing_metadata AS missing "
        "LEFT JOIN metrics.datasets AS assessed "
        "USING (snapshot_date, portal, asset_id) "
        "WHERE missing.portal = ? AND missing.snapshot_date = ? "
        "ORDER BY missing.agency, missing.title, missing.asset_id",
        [portal.name, night],
    )

    present = existing_probe_tables(conn)
    if "silently_stale" in present:
        # Longest past its promise first: content age in periods.
        portal.silently_stale = _records(
            conn,
            "SELECT * FROM board.silently_stale WHERE portal = ? AND snapshot_date = ? "
            "ORDER BY content_age_days / nullif(period_days, 0) DESC NULLS LAST, agency, title, "
            "asset_id",
            [portal.name, night],
        )
    if "broken_links" in present:
        portal.broken_links = _records(
            conn,
            "SELECT * FROM board.broken_links WHERE portal = ? AND snapshot_date = ? "
            "ORDER BY agency, title, asset_id, url",
            [portal.name, night],
        )


def existing_probe_tables(conn: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The PROBE_BOARD_TABLES the warehouse holds (none before the probes first ran)."""
    names = {
        row[0]
        for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'board'"
        ).fetchall()
    }
    return tuple(table for table in PROBE_BOARD_TABLES if table in names)


def report_tables(conn: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The board tables a night's folder holds as CSV and in the workbook."""
    return BOARD_TABLES + existing_probe_tables(conn)


def _records(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def board_table(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    night: date,
    portals: Sequence[str] | None = None,
) -> tuple[list[str], list[str], list[tuple]]:
    """(columns, DuckDB types, rows) of one board table for the night: of `portals`, or of
    every portal when None."""
    order = {
        "plan_metrics": "portal, agency NULLS FIRST, metric_id, metric",
        "missing_metadata": "portal, agency, title, asset_id",
        "stale_datasets": "portal, work_rank",
        "agency_scorecard": "portal, ranked DESC, rank, agency",
        "catalog_changes": "portal, change, asset_id",
        "silently_stale": "portal, agency, title, asset_id",
        "broken_links": "portal, agency, title, asset_id, url",
    }[table]
    only = "" if portals is None else "AND portal IN (SELECT unnest(?)) "
    params: list[Any] = [night] if portals is None else [night, list(portals)]
    cursor = conn.execute(
        f"SELECT * FROM board.{table} WHERE snapshot_date = ? {only}ORDER BY {order}", params
    )
    columns = [column[0] for column in cursor.description]
    types = [str(column[1]) for column in cursor.description]
    return columns, types, cursor.fetchall()


def format_value(value: float | None, unit: str) -> str:
    """A metric value as the report prints it: percentages and scores to one decimal."""
    if value is None:
        return "n/a"
    if unit == "percent":
        return f"{value:.1f}%"
    if unit in ("score", "days"):
        return f"{value:.1f}"
    return f"{value:,.0f}"


def format_count(value: float | None) -> str:
    """A count as the report prints it: whole, with thousands separators; n/a when absent."""
    return format_value(value, "count")
