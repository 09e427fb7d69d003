"""The plan's targets, judged in words: whether a headline value meets its target (`targets:` in
the portal file) and whether tonight moved it the right way. The report's cards, `ctdata demo`'s
summary and the workbook's summary sheet all say it with these sentences."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from ctdata_pipeline.metrics.definitions import METRICS_BY_ID
from ctdata_pipeline.portals import PortalFile, PortalFileError, Target

UNCHANGED_BELOW = 0.05  # a move smaller than what the report prints (one decimal) is none


def check_targets(portal_file: PortalFile, source: str) -> None:
    """Every `targets:` key names a metric of metrics.md (raised when the definitions load)."""
    unknown = sorted(set(portal_file.targets) - set(METRICS_BY_ID))
    if unknown:
        raise PortalFileError(
            f"portal file {source}: targets: {', '.join(unknown)}: not a metric id of metrics.md "
            f"(known: {', '.join(METRICS_BY_ID)})"
        )


@dataclass(frozen=True)
class Judgement:
    """A value against its target: `met` is None when there is no value to judge."""

    met: bool | None
    target: str  # the target in words: "under 20%"
    words: str  # "Meets the plan's target (under 20%): 0.7 points below it."

    @property
    def verdict(self) -> str:
        """One word or two for a table cell: met, not met, not measured."""
        return {True: "met", False: "not met", None: "not measured"}[self.met]


def target_words(target: Target, unit: str) -> str:
    level = f"{target.level:g}{'%' if unit == 'percent' else ''}"
    return f"under {level}" if target.lower_is_better else f"over {level}"


def judge(target: Target, value: float | None, unit: str) -> Judgement:
    """Whether `value` meets `target`, and by how much, in a sentence."""
    wanted = target_words(target, unit)
    if value is None:
        return Judgement(
            None, wanted, f"Not measured, so not judged against the target ({wanted})."
        )
    gap = abs(value - target.level)
    amount = f"{gap:.1f} points" if unit == "percent" else f"{gap:,.1f}"
    side = "below" if value < target.level else "above"
    if target.met_by(value):
        return Judgement(True, wanted, f"Meets the plan's target ({wanted}): {amount} {side} it.")
    if gap < UNCHANGED_BELOW:
        return Judgement(
            False, wanted, f"Does not meet the plan's target ({wanted}): exactly at it."
        )
    return Judgement(
        False, wanted, f"Does not meet the plan's target ({wanted}): {amount} {side} it."
    )


def better_direction(metric_id: str, target: Target | None = None) -> str | None:
    """'lower' or 'higher' when progress has a direction (the target's, else the registry's)."""
    if target is not None:
        return "lower" if target.lower_is_better else "higher"
    metric = METRICS_BY_ID.get(metric_id)
    return metric.better if metric else None


def movement(
    metric_id: str,
    tonight: float | None,
    before: float | None,
    previous: date | None,
    unit: str,
    target: Target | None = None,
) -> str:
    """How the value moved since the previous night, and whether that is the right way:
    "Down 0.6 points since 2026-09-01 (6.9%): the right way, lower is better." """
    if tonight is None:
        return ""
    if previous is None or before is None:
        return "First night measured: no change to report."
    delta = tonight - before
    if abs(delta) < UNCHANGED_BELOW:
        return f"Unchanged since {previous}."
    amount = f"{_number(abs(delta), unit)}{' points' if unit == 'percent' else ''}"
    before_text = f"{_number(before, unit)}{'%' if unit == 'percent' else ''}"
    sentence = f"{'Up' if delta > 0 else 'Down'} {amount} since {previous} ({before_text})"
    better = better_direction(metric_id, target)
    if better is None:
        return sentence + "."
    right = (delta < 0) == (better == "lower")
    return f"{sentence}: the {'right' if right else 'wrong'} way, {better} is better."


def _number(value: float, unit: str) -> str:
    """Percentages, scores and days to one decimal (as the report prints them); counts whole."""
    return f"{value:,.1f}" if unit in ("percent", "score", "days") else f"{value:,.0f}"
