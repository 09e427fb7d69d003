"""Connecticut among its peers: each headline of the Board's own portals beside the peers'
(portal file `role: peer`) that night, and the observatory's ranking of every portal.

Every number here is a portal-wide value of the night in board.plan_metrics; nothing is
recomputed. A portal ranks on a headline when it has a value for it that night; ties share
the better rank (1, 2, 2, 4). Which way is better is the headline's target in the portal file
when it sets one, else metrics.md's (metrics/targets.py), as on the Board's own cards."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ctdata_pipeline.metrics.targets import better_direction
from ctdata_pipeline.report.data import NOT_HARVESTED, NightReport, PortalNight, Value

OBSERVATORY_PAGE = "observatory.html"
PORTAL_FOLDER = "portals"


@dataclass(frozen=True)
class Compared:
    """A headline the peers are compared on: its metric id, its `metric` name, its words."""

    metric_id: str
    metric: str
    words: str


# The Board's headlines that every portal of any kind measures from its catalog alone.
COMPARED = (
    Compared("MD-1", "pct_missing_metadata", "Datasets missing metadata"),
    Compared("MD-2", "pct_meets_ct_standard", "Meeting CT's metadata standard"),
    Compared("MD-4", "mean_metadata_score", "Mean metadata score"),
    Compared("FR-2", "pct_stale", "Stale datasets"),
    Compared("FR-3", "pct_freshness_unknown", "Freshness unknown"),
)


@dataclass(frozen=True)
class Ranked:
    """One portal's value on a headline and its rank among every portal measured."""

    portal: PortalNight
    value: Value
    rank: int


@dataclass(frozen=True)
class Ranking:
    """Every portal measured on one headline, best first, and who was not measured."""

    compared: Compared
    better: str  # lower or higher
    ranked: list[Ranked]
    unmeasured: list[PortalNight]

    def rank_of(self, name: str) -> Ranked | None:
        return next((entry for entry in self.ranked if entry.portal.name == name), None)

    @property
    def peers(self) -> list[Ranked]:
        return [entry for entry in self.ranked if entry.portal.role == "peer"]

    @property
    def peer_median(self) -> float | None:
        values = [entry.value.value for entry in self.peers if entry.value.value is not None]
        return statistics.median(values) if values else None

    @property
    def best_peer(self) -> Ranked | None:
        return self.peers[0] if self.peers else None


def night_has_peers(report: NightReport) -> bool:
    """Whether the night compares with peers: some peer was stored that night or its harvest
    was tried (a peer never run that night, like every peer before the first one, is not)."""
    return any(
        peer.harvested or (peer.absent_because not in (None, NOT_HARVESTED))
        for peer in report.peers
    )


def rankings(report: NightReport) -> list[Ranking]:
    """Each compared headline's ranking over the Board's portals and the peers."""
    everyone = [*report.portals, *report.peers]
    result = []
    for compared in COMPARED:
        target = report.targets.get(compared.metric_id)
        better = better_direction(compared.metric_id, target) or "lower"
        measured = [
            (portal, value)
            for portal in everyone
            if portal.harvested
            and (value := portal.values.get(compared.metric)) is not None
            and value.value is not None
        ]
        # Best first; a tie keeps the file's order for display, and shares its rank.
        measured.sort(key=lambda item: item[1].value if better == "lower" else -item[1].value)
        ranked: list[Ranked] = []
        for position, (portal, value) in enumerate(measured, 1):
            tied = ranked and ranked[-1].value.value == value.value
            ranked.append(Ranked(portal, value, ranked[-1].rank if tied else position))
        measured_names = {portal.name for portal, _ in measured}
        unmeasured = [portal for portal in everyone if portal.name not in measured_names]
        result.append(Ranking(compared, better, ranked, unmeasured))
    return result


def not_measured(report: NightReport) -> list[PortalNight]:
    """The peers with no snapshot of the night (their harvest failed, was refused, or did not
    run), each with why when it is known."""
    return [peer for peer in report.peers if not peer.harvested]
