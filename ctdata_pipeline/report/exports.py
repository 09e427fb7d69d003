"""The board tables as files people open in a spreadsheet: one CSV each, and one workbook.

Text from portals is data, never a formula: in CSV a cell that a spreadsheet would run
(starting with =, +, -, @, a tab or a carriage return) is prefixed with an apostrophe (OWASP's
advice for CSV injection); in the workbook such a cell is stored as a text cell, which Excel
shows as typed and never evaluates."""

from __future__ import annotations

import csv
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from ctdata_pipeline.board.assets import COLUMN_HEADERS
from ctdata_pipeline.metrics.definitions import METRICS, Metric, metric_for
from ctdata_pipeline.metrics.targets import judge, movement
from ctdata_pipeline.report.data import HEADLINES, NightReport

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PERCENT_FORMAT = '0.0"%"'  # values are 0-100, as in the board tables
MIN_WIDTH, MAX_WIDTH = 8, 60  # characters
COPY_CHUNK = 1 << 20


def neutralize(value: str) -> str:
    """A CSV cell a spreadsheet will show as text, never run."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def csv_cell(value: Any) -> Any:
    if isinstance(value, str):
        return neutralize(value)
    if isinstance(value, list | tuple):
        return neutralize("; ".join(str(item) for item in value))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UTF-8, a header row, every portal text neutralized."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([csv_cell(value) for value in row])


Table = tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[Any]]]
SUMMARY_SHEET, DEFINITIONS_SHEET = "Summary", "Definitions"
SUMMARY_COLUMNS = (
    "Portal",
    "Headline",
    "Metric id",
    "Value",
    "Unit",
    "Target",
    "Met or not",
    "Against the target",
    "Since the night before",
)
DEFINITIONS_COLUMNS = (
    "Metric id",
    "Title",
    "Family",
    "Definition",
    "Numerator",
    "Denominator",
    "Which way is better",
    "Metric names in plan_metrics",
    "Definition version",
)
TABLE_STYLE = "TableStyleMedium2"
LINK_FONT = {"color": "0B5CAD", "underline": "single"}  # the page's link colour
WRAPPED_COLUMNS = {"Definition", "Against the target", "Since the night before"}
NO_TARGET = "no target"


def summary_rows(report: NightReport) -> list[tuple[Any, ...]]:
    """Each portal's headlines: the value, the plan's target in words, met or not, and how
    tonight moved it, in the words of metrics/targets.py (the page's and `ctdata demo`'s)."""
    rows: list[tuple[Any, ...]] = []
    for portal in report.portals:
        if not portal.harvested:
            rows.append((portal.name, "No snapshot of this portal for this night", *[None] * 7))
            continue
        for metric, label in HEADLINES:
            tonight = portal.values.get(metric)
            if tonight is None:
                continue
            metric_id = metric_for(metric).metric_id
            target = report.targets.get(metric_id)
            before = portal.previous.get(metric)
            judgement = judge(target, tonight.value, tonight.unit) if target else None
            rows.append(
                (
                    portal.name,
                    label,
                    metric_id,
                    tonight.value,
                    tonight.unit,
                    judgement.target if judgement else NO_TARGET,
                    judgement.verdict if judgement else NO_TARGET,
                    judgement.words if judgement else None,
                    movement(
                        metric_id,
                        tonight.value,
                        before.value if before else None,
                        portal.previous_date,
                        tonight.unit,
                        target,
                    )
                    or None,
                )
            )
    return rows


def definition_rows(metrics: Sequence[Metric] = METRICS) -> list[tuple[Any, ...]]:
    """The metric registry (metrics.md), one row per metric."""
    better = {"lower": "Lower is better", "higher": "Higher is better", None: "Neither"}
    return [
        (
            metric.metric_id,
            metric.title,
            metric.family,
            metric.definition,
            metric.numerator,
            metric.denominator,
            better[metric.better],
            "; ".join(metric.names),
            metric.version,
        )
        for metric in metrics
    ]


def write_workbook(path: Path, tables: Sequence[Table], report: NightReport) -> None:
    """A "Summary" sheet (each portal's headlines against the plan's targets), one sheet per
    board table (name, columns, DuckDB types, rows), and a "Definitions" sheet (the metric
    registry). Every sheet holds one Excel table (its header in words, filters, banded rows)
    with the header frozen, readable widths, dates as dates, percentages shown as percentages
    and web addresses as links. Written in openpyxl's streaming mode (it takes tables and
    links), so a large table costs memory for one row at a time. The workbook's times (its
    properties, its zip entries) are the report's `as_of`, the data's time, never the clock:
    the same tables make the same bytes."""
    # Imported here, not with the module: every ctdata command and run loads this module.
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    workbook = Workbook(write_only=True)
    stamp = report.as_of.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = workbook.properties.modified = stamp
    _write_sheet(
        workbook,
        SUMMARY_SHEET,
        list(SUMMARY_COLUMNS),
        [None] * len(SUMMARY_COLUMNS),
        summary_rows(report),
        value_column=SUMMARY_COLUMNS.index("Value"),
        unit_column=SUMMARY_COLUMNS.index("Unit"),
    )
    for name, columns, types, rows in tables:
        percent_value = _percent_value_column(columns)
        _write_sheet(
            workbook,
            name,
            [COLUMN_HEADERS.get(column, _in_words(column)) for column in columns],
            [
                _number_format(column, sql_type)
                for column, sql_type in zip(columns, types, strict=True)
            ],
            rows,
            value_column=percent_value,
            unit_column=columns.index("unit") if percent_value is not None else None,
        )
    _write_sheet(
        workbook,
        DEFINITIONS_SHEET,
        list(DEFINITIONS_COLUMNS),
        [None] * len(DEFINITIONS_COLUMNS),
        definition_rows(report.metrics),
    )
    # openpyxl's save() stamps the workbook with the clock; its ExcelWriter does not.
    with _ZipAtOneTime(path, stamp) as archive:
        ExcelWriter(workbook, archive).save()


def _write_sheet(
    workbook: Any,
    name: str,
    headers: list[str],
    formats: Sequence[str | None],
    rows: Sequence[Sequence[Any]],
    value_column: int | None = None,
    unit_column: int | None = None,
) -> None:
    """One sheet holding one Excel table. `value_column` holds numbers whose unit (percent,
    count, score, days) is in `unit_column`: percentages are formatted row by row."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.filters import AutoFilter
    from openpyxl.worksheet.table import Table, TableColumn, TableStyleInfo

    from ctdata_pipeline.report.html import safe_href

    sheet = workbook.create_sheet(title=name[:31])
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        shown = [len(header)] + [len(_shown(row[index - 1])) for row in rows[:500]]
        width = min(max(max(shown) + 2, MIN_WIDTH), MAX_WIDTH)
        sheet.column_dimensions[get_column_letter(index)].width = width
    last = get_column_letter(len(headers))
    # A table needs a data row: an empty sheet's table spans the header and one empty row.
    ref = f"A1:{last}{max(len(rows), 1) + 1}"
    table = Table(
        displayName=_table_name(name),
        ref=ref,
        autoFilter=AutoFilter(ref=ref),
        tableStyleInfo=TableStyleInfo(name=TABLE_STYLE, showRowStripes=True),
    )
    # The table's column names must be the header cells' text; openpyxl reads them from the
    # sheet, which a streamed sheet no longer holds, so they are given here.
    table.tableColumns = [
        TableColumn(id=index, name=header) for index, header in enumerate(headers, start=1)
    ]
    with warnings.catch_warnings():
        # openpyxl warns on every table of a streamed sheet that its columns must be given:
        # they are, above.
        warnings.filterwarnings("ignore", "In write-only mode you must add table columns")
        sheet.add_table(table)
    bold, link_font, wrap = Font(bold=True), Font(**LINK_FONT), Alignment(wrap_text=True)
    header_cells = []
    for header in headers:
        cell = WriteOnlyCell(sheet, value=header)
        cell.font = bold
        header_cells.append(cell)
    sheet.append(header_cells)
    wrapped = {index for index, header in enumerate(headers) if header in WRAPPED_COLUMNS}
    for row in rows:
        cells = []
        for position, (value, number_format) in enumerate(zip(row, formats, strict=True)):
            cell = WriteOnlyCell(sheet, value=_excel_value(value))
            if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
                cell.data_type = "s"  # text, never a formula
            elif (href := safe_href(value)) is not None:
                # The address itself, as portal text; never a HYPERLINK() formula.
                cell.hyperlink = href
                cell.font = link_font
            if position == value_column and unit_column is not None:
                number_format = UNIT_FORMATS.get(row[unit_column], number_format)
            if number_format:
                cell.number_format = number_format
            if position in wrapped:
                cell.alignment = wrap
            cells.append(cell)
        sheet.append(cells)


def _table_name(sheet: str) -> str:
    """An Excel table name (letters, digits, '_'; unique, as each sheet's is): PlanMetrics."""
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", sheet) if part)
    return f"{name}Table"


def _in_words(column: str) -> str:
    return column.replace("_", " ").capitalize()


class _ZipAtOneTime(ZipFile):
    """A zip archive whose every entry carries one time (zipfile stamps each with the clock, or
    with the mtime of the file it copies)."""

    def __init__(self, path: Path, when: datetime) -> None:
        super().__init__(path, "w", ZIP_DEFLATED, allowZip64=True)
        self._date_time = when.timetuple()[:6]

    def writestr(
        self,
        zinfo_or_arcname: str | ZipInfo,
        data: str | bytes,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        if not isinstance(zinfo_or_arcname, ZipInfo):
            zinfo_or_arcname = self._entry(zinfo_or_arcname)
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)

    def write(
        self,
        filename: str | os.PathLike[str],
        arcname: str | None = None,
        compress_type: int | None = None,
        compresslevel: int | None = None,
    ) -> None:
        entry = self._entry(arcname or os.fspath(filename))
        entry.file_size = os.path.getsize(filename)  # zipfile decides on zip64 from it
        with open(filename, "rb") as source, self.open(entry, "w") as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)

    def _entry(self, name: str) -> ZipInfo:
        entry = ZipInfo(name, date_time=self._date_time)
        entry.compress_type = self.compression
        entry.external_attr = 0o600 << 16  # what zipfile gives an entry written from bytes
        return entry


UNIT_FORMATS = {"percent": PERCENT_FORMAT}  # counts, scores and days as stored


def _percent_value_column(columns: Sequence[str]) -> int | None:
    """In plan_metrics, `value` is a percentage on the rows whose unit says so."""
    return columns.index("value") if "unit" in columns and "value" in columns else None


def _number_format(column: str, sql_type: str) -> str | None:
    if sql_type == "DATE":
        return "yyyy-mm-dd"
    if sql_type.startswith("TIMESTAMP"):
        return 'yyyy-mm-dd hh:mm "UTC"'
    if column.startswith(("md1_pct", "md2_pct", "md5_", "fr2_pct", "fr3_pct", "us2_pct")) and not (
        column.endswith("_n")
    ):
        return PERCENT_FORMAT
    if column in ("age_days", "days_overdue", "metadata_score", "md4_mean_metadata_score"):
        return "0.0"
    return None


def _excel_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Excel has no time zones: the time is UTC, as the number format says
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, list | tuple):
        return "; ".join(str(item) for item in value)
    return value


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return "2026-01-01 00:00 UTC" if isinstance(value, datetime) else "2026-01-01"
    if isinstance(value, list | tuple):
        return "; ".join(str(item) for item in value)
    return str(value)
