"""The report's trend charts: their dates, axes and labels, drawn by real matplotlib, and the
report page with them opened in headless Chromium at a phone's, a tablet's and a desktop's
width, where their text must be readable and no label may cover the data or another label."""

import itertools
import re
from datetime import UTC, date, datetime, timedelta
from xml.etree import ElementTree

import pytest

from ctdata_pipeline.portals import Target
from ctdata_pipeline.report.charts import Chart, Series, trend_chart
from ctdata_pipeline.report.data import NightReport, PortalNight, Value
from ctdata_pipeline.report.html import render_report

SVG = "{http://www.w3.org/2000/svg}"
NIGHT = date(2026, 9, 14)
WIDTHS = (390, 768, 1400)
MIN_TEXT_PX = 11


def nights(count: int, last: date = NIGHT) -> list[date]:
    return [last - timedelta(days=back) for back in range(count - 1, -1, -1)]


def series(label: str, days: list[date], value) -> Series:
    return Series(label, [(night, value(index)) for index, night in enumerate(days)])


def percent(*lines: Series, target: tuple[float, str] | None = None) -> Chart:
    return trend_chart("a test chart", list(lines), "percent", target, "% of datasets")


def groups(chart: Chart, suffix: str) -> list[list[str]]:
    """The texts of each <g> whose id ends with `suffix` (a regular expression), in order."""
    root = ElementTree.fromstring(chart.svg)
    return [
        [text.text or "" for text in group.iter(f"{SVG}text")]
        for group in root.iter(f"{SVG}g")
        if re.search(suffix + "$", group.get("id", ""))
    ]


def x_ticks(chart: Chart) -> list[str]:
    return [" ".join(texts) for texts in groups(chart, r"-xtick_\d+")]


def y_ticks(chart: Chart) -> list[str]:
    return [" ".join(texts) for texts in groups(chart, r"-ytick_\d+")]


def as_date(label: str, year: int) -> date:
    """'Sep 14 2026' or 'Sep 14' (in `year`) as a date."""
    parts = label.split()
    return datetime.strptime(
        f"{parts[0]} {parts[1]} {parts[2] if len(parts) > 2 else year}", "%b %d %Y"
    ).date()


def test_one_night_is_one_tick_with_that_date():
    chart = percent(series("stale", nights(1), lambda _: 12.5))
    assert x_ticks(chart) == ["Sep 14 2026"]
    assert "Night" in [text for texts in groups(chart, r"-axes_\d+") for text in texts]


def test_two_nights_are_two_ticks():
    chart = percent(series("stale", nights(2), lambda i: 10.0 + i))
    assert x_ticks(chart) == ["Sep 13 2026", "Sep 14"]


@pytest.mark.parametrize(
    "days",
    [
        nights(35),
        nights(365),
        nights(60, last=date(2027, 1, 20)),  # across New Year
        [date(2026, 1, 1), date(2026, 1, 2), date(2026, 3, 1)],  # a gap between nights
    ],
    ids=["35 nights", "a year", "across a new year", "with a gap"],
)
def test_many_nights_get_a_few_distinct_ticks_at_measured_nights(days):
    chart = percent(series("stale", days, lambda i: float(i % 100)))
    labels = x_ticks(chart)
    assert 2 <= len(labels) <= 3 and len(set(labels)) == len(labels)
    assert labels[0].endswith(str(days[0].year))  # the year on the first tick
    shown, year = [], days[0].year
    for label in labels:
        year = int(label.split()[2]) if len(label.split()) > 2 else year
        shown.append(as_date(label, year))
    assert shown[0] == days[0] and shown[-1] == days[-1]
    assert set(shown) <= set(days) and shown == sorted(shown)
    for before, after in itertools.pairwise(shown):  # a year change is labelled
        assert (before.year == after.year) or labels[shown.index(after)].endswith(str(after.year))


def test_percent_axes_run_from_0_to_100_for_a_series_at_0_and_one_at_100():
    for value in (0.0, 100.0):
        chart = percent(series("stale", nights(5), lambda _, value=value: value))
        assert y_ticks(chart) == ["0", "25", "50", "75", "100"]
    both = percent(
        series("stale", nights(3), lambda _: 0.0), series("unknown", nights(3), lambda _: 0.0)
    )
    assert y_ticks(both) == ["0", "25", "50", "75", "100"]
    assert "% of datasets" in [text for texts in groups(both, r"-axes_\d+") for text in texts]


@pytest.mark.parametrize(
    ("values", "top"), [([0, 0, 0], 1), ([3, 4, 5], 5), ([640, 655, 674], 674), ([1, 1234], 1234)]
)
def test_count_axes_start_at_0_with_whole_distinct_ticks(values, top):
    chart = trend_chart(
        "datasets", [series("datasets", nights(len(values)), lambda i: values[i])], "count"
    )
    ticks = [int(label.replace(",", "")) for label in y_ticks(chart)]
    assert ticks[0] == 0 and ticks[-1] >= top and ticks[-2] < top
    assert ticks == sorted(set(ticks)) and len(ticks) >= 2
    assert all(label.replace(",", "").isdigit() for label in y_ticks(chart))


def test_labels_say_the_last_value_and_the_target():
    chart = percent(
        series("missing", nights(4), lambda i: 25.0 - i), target=(20.0, "plan target: under 20%")
    )
    assert groups(chart, "-series-1-label") == [["missing", "22.0%"]]
    assert groups(chart, "-target-label") == [["plan target:", "under 20%"]]
    assert chart.alt.startswith("Line chart, a test chart: missing went from 25.0% on ")
    assert chart.alt.endswith("A dotted line marks plan target: under 20%.")


def test_the_same_data_draws_the_same_bytes_and_two_charts_share_no_id():
    one = series("stale", nights(35), lambda i: i * 1.5)
    assert percent(one).svg == percent(one).svg
    ids = [
        re.findall(r'\bid="([^"]+)"', trend_chart(title, [one], "percent").svg) for title in "ab"
    ]
    assert ids[0] and not set(ids[0]) & set(ids[1])


def portal(days: list[date], values: dict[str, object]) -> PortalNight:
    """A harvested portal whose metrics took `values[metric](index)` on each of `days`."""
    night = PortalNight(
        name="data.ct.gov",
        kind="socrata",
        snapshot_time=datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(hours=6),
        source="https://data.ct.gov/api/views/metadata/v1",
    )
    for metric, value in values.items():
        unit = "count" if metric == "datasets_in_scope" else "percent"
        night.series[metric] = [(day, float(value(i))) for i, day in enumerate(days)]
        night.values[metric] = Value(night.series[metric][-1][1], 1, 2, unit, None)
    return night


# Hard cases: MD-1 runs through its target and ends on it; FR-2 and FR-3 both end at 0; MD-2 at
# 100; the count climbs to its top.
HARD = {
    "pct_missing_metadata": lambda i: (22.0, 18.0)[i % 2] if i < 34 else 20.0,
    "pct_stale": lambda i: 0.0,
    "pct_freshness_unknown": lambda i: 0.0 if i > 30 else 5.0,
    "pct_meets_ct_standard": lambda i: 100.0,
    "column_doc_coverage": lambda i: 50.0,
    "datasets_in_scope": lambda i: 600 + i,
}

MEASURE = r"""figures => figures.map(figure => {
    const svg = figure.querySelector('svg');
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    const box = r => ({left: r.left, right: r.right, top: r.top, bottom: r.bottom});
    const texts = [...svg.querySelectorAll('text')].map(t => {
        const r = t.getBoundingClientRect();
        return {text: t.textContent, px: parseFloat(getComputedStyle(t).fontSize) * scale,
                // the text's height on screen: across the line, for the turned y axis title too
                tall: /rotate\(-90/.test(t.getAttribute('transform')) ? r.width : r.height};
    });
    const labels = [...svg.querySelectorAll('g[id$="-label"]')].map(g => ({
        id: g.id.replace(/^chart-[0-9a-f]+-/, ''), ...box(g.getBoundingClientRect())}));
    const points = [];
    for (const line of svg.querySelectorAll('g[id*="-series-"]:not([id$="-label"]) > path')) {
        const ctm = line.getScreenCTM(), length = line.getTotalLength();
        for (let at = 0; at <= length; at += 0.5) {
            const p = line.getPointAtLength(at);
            const q = new DOMPoint(p.x, p.y).matrixTransform(ctm);
            points.push([q.x, q.y]);
        }
    }
    const markers = [...svg.querySelectorAll('g[id*="-series-"]:not([id$="-label"]) use')]
        .map(u => box(u.getBoundingClientRect()));
    const plot = box(svg.querySelector('g[id$="-patch_2"]').getBoundingClientRect());
    return {alt: figure.querySelector('[role=img]').getAttribute('aria-label'),
            rows: figure.querySelectorAll('details table tbody tr').length,
            svg: box(svg.getBoundingClientRect()), texts, labels, points, markers, plot};
})"""


def overlaps(a: dict, b: dict) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[int, object]:
    """Report pages of 1, 2 and 35 nights of the hard cases."""
    folder = tmp_path_factory.mktemp("charts")
    written = {}
    for count in (1, 2, 35):
        path = folder / f"report-{count}.html"
        days = nights(count)
        path.write_text(
            render_report(
                NightReport(
                    night=days[-1],
                    portals=[portal(days, HARD)],
                    targets={"MD-1": Target(below=20)},
                )
            )
        )
        written[count] = path
    return written


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("count", [1, 2, 35])
def test_chart_text_is_readable_and_no_label_covers_the_data(browser, pages, width, count):
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(pages[count].resolve().as_uri(), wait_until="load")
    figures = page.eval_on_selector_all("figure", MEASURE)
    page.close()
    assert len(figures) == 5  # MD-1, FR-2 with FR-3, MD-2, MD-5, INV-1
    for figure in figures:
        # The text alternative and the numbers table stay.
        assert figure["alt"].startswith("Line chart, ")
        assert figure["rows"] == count
        # Every tick label, axis title and line label is at least 11 px on screen.
        texts = {text["text"] for text in figure["texts"]}
        assert "Night" in texts and ({"% of datasets", "% of columns", "datasets"} & texts)
        for text in figure["texts"]:
            assert text["px"] >= MIN_TEXT_PX, (width, text)
            assert text["tall"] >= MIN_TEXT_PX, (width, text)
        # Labels: inside the chart, clear of each other, of every line and every marker.
        labels = figure["labels"]
        assert labels and all(
            figure["svg"]["left"] <= label["left"] and label["right"] <= figure["svg"]["right"]
            for label in labels
        )
        for index, label in enumerate(labels):
            for other in labels[index + 1 :]:
                assert not overlaps(label, other), (label, other)
            for marker in figure["markers"]:
                assert not overlaps(label, marker), (label, marker)
            for x, y in figure["points"]:
                near = {"left": x - 2, "right": x + 2, "top": y - 2, "bottom": y + 2}
                assert not overlaps(label, near), (label, x, y)
        # The lines at 0% and at 100% are in view, not cut off at the plot's edge.
        assert figure["points"] and all(
            figure["plot"]["top"] + 1 < y < figure["plot"]["bottom"] - 1
            for _, y in figure["points"]
        )
    md1 = next(figure for figure in figures if "missing metadata" in figure["alt"])
    assert {label["id"] for label in md1["labels"]} == {"series-1-label", "target-label"}
    fr2 = next(figure for figure in figures if "Stale" in figure["alt"])
    assert {label["id"] for label in fr2["labels"]} == {"series-1-label", "series-2-label"}
