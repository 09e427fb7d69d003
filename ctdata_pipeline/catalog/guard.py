"""The shrink guard: a stored night is never replaced by far less than the portal had.

Every write that replaces a night (a harvest, `ctdata import`, re-normalizing a stored night)
is compared, before anything is written, with the larger of two references: the stored
snapshot of the same night (the one the write would replace) and the last good snapshot
before it. Both the in-scope dataset count and the total asset count must reach
`min_ratio` x their reference; a catalog with no assets is never stored. A portal's first
night has no reference. The only way past a refusal is explicit: `accept_shrink`, or a lower
ratio in the portal file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# How to accept a shrink on each path that writes a night (the end of a refusal message).
HARVEST_OVERRIDE = (
    "run the night again with `ctdata nightly --portal {portal} --accept-shrink` (or "
    "accept_shrink: true in catalog_snapshot's run config), or lower min_in_scope_ratio for it "
    "in the portal file"
)
RENORMALIZE_OVERRIDE = (
    "materialize catalog_snapshot for the night again with accept_shrink: true in its run "
    "config, or lower min_in_scope_ratio for it in the portal file"
)
IMPORT_OVERRIDE = (
    "run `ctdata import` again with --accept-shrink, or lower min_in_scope_ratio for it in "
    "the portal file"
)
FIRST_NIGHT = "no reference: the first night of this portal"
OVERRIDDEN = "overridden: accept_shrink"


class SnapshotRefused(Exception):
    """A write that must not replace a stored night (empty, or far smaller than before)."""


@dataclass(frozen=True)
class StoredCounts:
    """A stored snapshot's size, as catalog.snapshots records it."""

    snapshot_date: date
    assets_total: int
    datasets_in_scope: int


@dataclass(frozen=True)
class Reference:
    """What one count of the night being written is compared with."""

    count: int
    snapshot: StoredCounts
    same_night: bool  # the stored snapshot of this night, not the last good one before it

    @property
    def named(self) -> str:
        if self.same_night:
            return f"the stored snapshot of this night ({self.snapshot.snapshot_date})"
        return f"the last good snapshot before it ({self.snapshot.snapshot_date})"


@dataclass(frozen=True)
class Comparison:
    """One count of the night being written against its reference."""

    label: str  # "in-scope datasets" / "assets"
    short: str  # "in scope" / "assets", for metadata
    count: int
    reference: Reference

    def shrunk(self, min_ratio: float) -> bool:
        return self.count < min_ratio * self.reference.count


def reference(
    this_night: StoredCounts | None, before: StoredCounts | None, field: str
) -> Reference | None:
    """The larger of the two candidates for one count (the stored snapshot of this night wins
    a tie: it is what the write would replace)."""
    candidates = [
        Reference(getattr(snapshot, field), snapshot, same_night)
        for snapshot, same_night in ((this_night, True), (before, False))
        if snapshot is not None
    ]
    return max(candidates, key=lambda candidate: candidate.count, default=None)


def check_not_shrunken(
    portal: str,
    night: date,
    assets_total: int,
    in_scope: int,
    this_night: StoredCounts | None,
    before: StoredCounts | None,
    *,
    min_ratio: float,
    accept_shrink: bool = False,
    override: str = HARVEST_OVERRIDE,
) -> str:
    """What the guard compared, for the write's metadata; SnapshotRefused (one line: the
    reference used, both numbers, nothing written, how to override) when the write would
    replace a night with far less."""
    in_scope_reference = reference(this_night, before, "datasets_in_scope")
    assets_reference = reference(this_night, before, "assets_total")
    if assets_total == 0:
        had = (
            f", against {assets_reference.count} in {assets_reference.named}"
            if assets_reference
            else ""
        )
        raise SnapshotRefused(
            f"{portal}: refused: the catalog for {night} holds no assets at all{had}; an empty "
            "catalog is never stored, so nothing was written (a portal that is gone is taken "
            "out of the portal file)"
        )
    if in_scope_reference is None or assets_reference is None:
        return FIRST_NIGHT
    comparisons = [
        Comparison("in-scope datasets", "in scope", in_scope, in_scope_reference),
        Comparison("assets", "assets", assets_total, assets_reference),
    ]
    compared = _compared(comparisons, min_ratio)
    shrunk = [comparison for comparison in comparisons if comparison.shrunk(min_ratio)]
    if not shrunk:
        return f"{compared}: passed"
    if accept_shrink:
        return f"{OVERRIDDEN}; {compared} would have been refused"
    if len(shrunk) == 2 and len({c.reference.named for c in shrunk}) == 1:
        below = (
            f"{shrunk[0].count} {shrunk[0].label} and {shrunk[1].count} {shrunk[1].label} are "
            f"below {min_ratio:g} x the {shrunk[0].reference.count} and "
            f"{shrunk[1].reference.count} of {shrunk[0].reference.named}"
        )
    else:
        below = " and ".join(
            f"{c.count} {c.label} is below {min_ratio:g} x the {c.reference.count} of "
            f"{c.reference.named}"
            for c in shrunk
        )
    raise SnapshotRefused(
        f"{portal}: refused: for {night}, {below}; nothing was written. If the portal really "
        f"shrank, {override.format(portal=portal)}."
    )


def _compared(comparisons: list[Comparison], min_ratio: float) -> str:
    """'in scope 640 vs 648 and assets 900 vs 910 of the stored snapshot of this night
    (2026-11-30) (ratio 0.5)': each count with its reference, named once when they share it."""
    if len({c.reference.named for c in comparisons}) == 1:
        counts = " and ".join(f"{c.short} {c.count} vs {c.reference.count}" for c in comparisons)
        return f"{counts} of {comparisons[0].reference.named} (ratio {min_ratio:g})"
    counts = " and ".join(
        f"{c.short} {c.count} vs {c.reference.count} of {c.reference.named}" for c in comparisons
    )
    return f"{counts} (ratio {min_ratio:g})"
