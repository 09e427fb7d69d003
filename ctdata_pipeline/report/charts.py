"""Trend charts for the report: small SVG line charts drawn with matplotlib, each with a text
alternative and the numbers behind it.

Following CT's data visualization guidance: the Okabe-Ito colour-blind-safe palette, and never
colour alone: every series also has its own marker and line style and is labelled at its last
point, so the chart reads in greyscale and in print."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from types import ModuleType

from ctdata_pipeline.report.data import format_value

# Okabe & Ito (2008), with a marker and a line style each.
STYLES = (
    ("#D55E00", "o", "-"),  # vermillion, circles, solid
    ("#0072B2", "s", "--"),  # blue, squares, dashed
    ("#009E73", "^", ":"),  # bluish green, triangles, dotted
    ("#E69F00", "D", "-."),  # orange, diamonds, dash-dot
)
TARGET_COLOUR = "#000000"


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
            "font.size": 8,
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


def trend_chart(
    title: str, series: list[Series], unit: str, target: tuple[float, str] | None = None
) -> Chart:
    _matplotlib()
    from matplotlib import dates as mdates
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8, 2.0))
    axes = figure.add_subplot()
    top = 0.0
    for (colour, marker, line), one in zip(STYLES, series, strict=False):
        points = [(night, value) for night, value in one.points if value is not None]
        if not points:
            continue
        nights, values = zip(*points, strict=True)
        axes.plot(
            nights,
            values,
            color=colour,
            marker=marker,
            linestyle=line,
            linewidth=1.6,
            markersize=3.5,
            label=one.label,
        )
        axes.annotate(
            f"{one.label}: {format_value(values[-1], unit)}",
            (nights[-1], values[-1]),
            textcoords="offset points",
            xytext=(6, 0),
            va="center",
            color=colour,
            fontsize=7.5,
        )
        top = max(top, *values)
    if target is not None:
        level, label = target
        axes.axhline(level, color=TARGET_COLOUR, linewidth=0.8, linestyle=(0, (1, 2)))
        axes.annotate(
            label,
            (0.01, level),
            xycoords=("axes fraction", "data"),
            textcoords="offset points",
            xytext=(0, 3),
            fontsize=7,
        )
        top = max(top, level)
    axes.set_ylim(0, (top * 1.25) or 1)
    if unit == "percent":
        axes.yaxis.set_major_formatter(lambda value, _: f"{value:.0f}%")
    axes.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=2, maxticks=6))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.spines[["top", "right"]].set_visible(False)
    axes.margins(x=0.05)
    figure.subplots_adjust(left=0.1, right=0.72, top=0.95, bottom=0.18)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return Chart(
        svg=_inline(buffer.getvalue()),
        alt=_alt_text(title, series, unit, target),
        header=["night", *(one.label for one in series)],
        rows=_rows(series, unit),
    )


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


def _inline(svg: str) -> str:
    """The <svg> element alone, to embed in HTML (no XML declaration or doctype), hidden from
    screen readers, which read the figure's text alternative instead."""
    start = svg.index("<svg")
    return svg[start:].replace("<svg ", '<svg aria-hidden="true" focusable="false" ', 1)
