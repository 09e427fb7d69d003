"""Trend charts for the report: small SVG line charts drawn with matplotlib, each with a text
alternative and the numbers behind it.

Following CT's data visualization guidance: the Okabe-Ito colour-blind-safe palette, and never
colour alone: every series also has its own marker and line style and is labelled at its last
point, so the chart reads in greyscale and in print.

Sized for how the report shows them: a card's chart is about 320 px wide on a phone and on a
desktop alike (the cards are a grid of columns at least 330 px wide), so the figure is narrow
and its text large enough to be at least 11 px on screen once the SVG is scaled to the card.
The labels of the series and of the target sit in the right margin, beside the plot, stacked so
that none covers another or the data."""

from __future__ import annotations

import hashlib
import io
import re
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

from ctdata_pipeline.report.data import format_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

# Okabe & Ito (2008), with a marker and a line style each.
STYLES = (
    ("#D55E00", "o", "-"),  # vermillion, circles, solid
    ("#0072B2", "s", "--"),  # blue, squares, dashed
    ("#009E73", "^", ":"),  # bluish green, triangles, dotted
    ("#E69F00", "D", "-."),  # orange, diamonds, dash-dot
)
TARGET_COLOUR = "#000000"

# The figure in points (its SVG viewBox units). Shown about 320 px wide, a point is 1.29 px: 9.5
# pt text is 12 px on screen, and still 11 px at 290 px, the narrowest a card's chart gets.
WIDTH, HEIGHT = 248.0, 176.0
FONT_SIZE = 9.5
TOP, BOTTOM = 8.0, 50.0  # margins: the bottom one holds two lines of dates and the axis title
LABEL_GAP = 7.0  # between the plot's right edge and the labels beside it
LABEL_CHARS = 14  # labels beside the plot wrap at this many characters
MAX_DATE_TICKS = 3  # "Sep 14" three times fits the narrowest plot with room between
MAX_MARKERS = 16  # per series: a year of nightly markers would blur into a thick line
PERCENT_TICKS = (0, 25, 50, 75, 100)


@cache
def _matplotlib() -> ModuleType:
    """matplotlib, set up once, when the first chart is drawn: not when the module loads, since
    every ctdata command, the code server and each run load it (matplotlib takes about a
    second to import)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; charts are only ever written to files
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text stays text: searchable, and read by screen readers
            "svg.hashsalt": "ctdata",  # stable element ids, so a report is reproducible
            "font.size": FONT_SIZE,
            "font.family": "sans-serif",
        }
    )
    return matplotlib


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[date, float | None]]


@dataclass(frozen=True)
class Chart:
    svg: str
    alt: str  # one or two sentences: what the chart shows
    header: list[str]  # the numbers behind it, as a table
    rows: list[list[str]]


@dataclass
class _Label:
    """A label beside the plot, for the line that ends at `y` (a value, then figure points)."""

    text: Text
    y: float
    colour: str
    height: float = 0.0
    centre: float = 0.0


def trend_chart(
    title: str,
    series: list[Series],
    unit: str,
    target: tuple[float, str] | None = None,
    axis: str | None = None,
) -> Chart:
    """A line chart of `series` by night; `axis` says what the y axis measures, with its unit
    (by default from `unit`: "%" or "count")."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / 72, HEIGHT / 72), dpi=72)  # 72 dpi: display units are pt
    FigureCanvasAgg(figure)  # to measure text before the chart is laid out
    axes = figure.add_axes((0.2, BOTTOM / HEIGHT, 0.5, (HEIGHT - TOP - BOTTOM) / HEIGHT))
    labels: list[_Label] = []  # beside the plot, at the end of each line
    shown: list[float] = []
    for index, ((colour, marker, line), one) in enumerate(zip(STYLES, series, strict=False), 1):
        points = [(night, value) for night, value in one.points if value is not None]
        if not points:
            continue
        values = [value for _, value in points]
        axes.plot(
            [night.toordinal() for night, _ in points],
            values,
            color=colour,
            marker=marker,
            linestyle=line,
            linewidth=1.8,
            markersize=4.5,
            markevery=_markers(len(points)),
            gid=f"series-{index}",
        )
        text = _wrap(one.label) + "\n" + format_value(values[-1], unit)
        labels.append(_label(figure, text, values[-1], colour, f"series-{index}-label"))
        shown.extend(values)
    if target is not None:
        level = target[0]
        axes.axhline(level, color=TARGET_COLOUR, linewidth=1.0, linestyle=(0, (1, 2)), gid="target")
        labels.append(_label(figure, _wrap(target[1]), level, TARGET_COLOUR, "target-label"))
        shown.append(level)
    _date_axis(
        axes, sorted({night for one in series for night, value in one.points if value is not None})
    )
    _value_axis(axes, unit, shown)
    axes.set_xlabel("Night")
    axes.set_ylabel(axis or ("%" if unit == "percent" else unit))
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    axes.spines[["top", "right"]].set_visible(False)
    _lay_out(figure, axes, labels)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return Chart(
        svg=_inline(buffer.getvalue(), title),
        alt=_alt_text(title, series, unit, target),
        header=["night", *(one.label for one in series)],
        rows=_rows(series, unit),
    )


def _label(figure: Figure, text: str, value: float, colour: str, gid: str) -> _Label:
    """A label for the line at `value`, placed later by _lay_out."""
    return _Label(figure.text(0, 0, text, color=colour, va="center", gid=gid), value, colour)


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, LABEL_CHARS))


def _markers(count: int) -> list[int] | None:
    """Which points get a marker: all of a short series; of a long one, evenly spaced ones with
    the first and the last."""
    if count <= MAX_MARKERS:
        return None
    return sorted({round(i * (count - 1) / (MAX_MARKERS - 1)) for i in range(MAX_MARKERS)})


def _date_axis(axes: Axes, nights: list[date]) -> None:
    """Ticks at nights that were measured, evenly spread, labelled with their date; the year on
    the first and wherever it changes."""
    if not nights:
        return
    first, last = nights[0].toordinal(), nights[-1].toordinal()
    pad = max((last - first) * 0.05, 0.5) if last > first else 1.0
    axes.set_xlim(first - pad, last + pad)
    ticks = date_ticks(nights)
    labels = []
    for index, night in enumerate(ticks):
        label = f"{night:%b} {night.day}"
        if index == 0 or night.year != ticks[index - 1].year:
            label += f"\n{night.year}"
        labels.append(label)
    axes.set_xticks([night.toordinal() for night in ticks], labels)


def date_ticks(nights: list[date]) -> list[date]:
    """At most MAX_DATE_TICKS of `nights` (sorted), spread evenly in time: the nearest night to
    each of evenly spaced dates from the first to the last, none too close to the one before."""
    if len(nights) <= 1:
        return list(nights)
    count = min(MAX_DATE_TICKS, len(nights))
    span = (nights[-1] - nights[0]).days
    step = span / (count - 1)
    ticks: list[date] = []
    for index in range(count):
        wanted = nights[0] + timedelta(days=round(index * step))
        night = min(nights, key=lambda one: (abs((one - wanted).days), one))
        if not ticks or (night - ticks[-1]).days >= step / 2:
            ticks.append(night)
    if ticks[-1] != nights[-1]:  # the last night is the one the report is about: always shown
        if (nights[-1] - ticks[-1]).days < step / 2 and len(ticks) > 1:
            ticks.pop()
        ticks.append(nights[-1])
    return ticks


def _value_axis(axes: Axes, unit: str, values: list[float]) -> None:
    """Percentages on 0-100; other values (never negative) from 0, counts at whole numbers.
    The limits reach a little past the end ticks, so a line at 0 or at the top stays in view."""
    from matplotlib.ticker import MaxNLocator

    if unit == "percent":
        ticks = list(PERCENT_TICKS)
    else:
        locator = MaxNLocator(nbins=4, integer=unit == "count", min_n_ticks=2)
        top = max(values, default=0.0) or 1.0
        found = [float(tick) for tick in locator.tick_values(0, top) if tick >= 0]
        ticks = [tick for tick in found if tick < top] + [min(t for t in found if t >= top)]
    margin = ticks[-1] * 0.05
    axes.set_ylim(-margin, ticks[-1] + margin)
    axes.set_yticks(ticks, [_tick_label(tick, unit) for tick in ticks])
    axes.spines["left"].set_bounds(0, ticks[-1])


def _tick_label(value: float, unit: str) -> str:
    if unit in ("percent", "count"):
        return f"{value:,.0f}"
    return f"{value:,g}"


def _lay_out(figure: Figure, axes: Axes, labels: list[_Label]) -> None:
    """Fit the plot between the y axis and the labels beside it, then stack the labels at the
    heights of their lines, moved apart where they would overlap (a short leader line then
    joins a label to its line)."""
    from matplotlib.lines import Line2D

    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    figure.draw_without_rendering()  # places the y axis title beside the tick labels
    left = axes.bbox.x0 - axes.yaxis.get_tightbbox(renderer).x0 + 3
    widest = 0.0
    for label in labels:
        extent = label.text.get_window_extent(renderer)
        label.height = extent.height
        widest = max(widest, extent.width)
    right = WIDTH - (widest + LABEL_GAP + 2 if labels else 8)
    axes.set_position(
        (left / WIDTH, BOTTOM / HEIGHT, (right - left) / WIDTH, (HEIGHT - TOP - BOTTOM) / HEIGHT)
    )
    x = axes.get_xlim()[0]
    for label in labels:
        y = float(axes.transData.transform((x, label.y))[1])
        label.y = min(max(y, axes.bbox.y0), axes.bbox.y1)  # a leader never leaves the plot
    _stack(sorted(labels, key=lambda label: label.y), low=BOTTOM - 2, high=HEIGHT - 2)
    for label in labels:
        label.text.set_position(((right + LABEL_GAP) / WIDTH, label.centre / HEIGHT))
        if abs(label.centre - label.y) > 2:
            figure.add_artist(
                Line2D(
                    [(right + 1) / WIDTH, (right + LABEL_GAP - 1) / WIDTH],
                    [label.y / HEIGHT, label.centre / HEIGHT],
                    transform=figure.transFigure,
                    color=label.colour,
                    linewidth=0.8,
                )
            )


def _stack(labels: list[_Label], low: float, high: float, gap: float = 1.5) -> None:
    """Centres for `labels` (sorted by height) as near their lines as they can be without
    overlapping, between `low` and `high`: pushed up from below, then down from the top."""
    for index, label in enumerate(labels):
        label.centre = max(label.y, low + label.height / 2)
        if index:
            below = labels[index - 1]
            label.centre = max(label.centre, below.centre + (below.height + label.height) / 2 + gap)
    for index in range(len(labels) - 1, -1, -1):
        label = labels[index]
        label.centre = min(label.centre, high - label.height / 2)
        if index < len(labels) - 1:
            above = labels[index + 1]
            label.centre = min(label.centre, above.centre - (above.height + label.height) / 2 - gap)


def _alt_text(title: str, series: list[Series], unit: str, target: tuple[float, str] | None) -> str:
    parts = []
    for one in series:
        points = [(night, value) for night, value in one.points if value is not None]
        if not points:
            parts.append(f"{one.label}: no values")
            continue
        (first_night, first), (last_night, last) = points[0], points[-1]
        values = [value for _, value in points]
        if len(points) == 1:
            parts.append(f"{one.label} was {format_value(last, unit)} on {last_night}")
        else:
            parts.append(
                f"{one.label} went from {format_value(first, unit)} on {first_night} to "
                f"{format_value(last, unit)} on {last_night} "
                f"(lowest {format_value(min(values), unit)}, "
                f"highest {format_value(max(values), unit)}, {len(points)} nights)"
            )
    text = f"Line chart, {title}: " + "; ".join(parts) + "."
    if target is not None:
        text += f" A dotted line marks {target[1]}."
    return text


def _rows(series: list[Series], unit: str) -> list[list[str]]:
    nights = sorted({night for one in series for night, _ in one.points})
    by_series = [dict(one.points) for one in series]
    return [
        [night.isoformat(), *(format_value(values.get(night), unit) for values in by_series)]
        for night in nights
    ]


def _inline(svg: str, title: str) -> str:
    """The <svg> element alone, to embed in HTML (no XML declaration or doctype), hidden from
    screen readers, which read the figure's text alternative instead. Its ids are prefixed with
    one of the chart's own, since a page holds many charts and ids must be unique in it."""
    key = "chart-" + hashlib.sha1(title.encode()).hexdigest()[:8]
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{key}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{key}-\1"', svg)
    return svg.replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1)
