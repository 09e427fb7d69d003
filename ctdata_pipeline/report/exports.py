"""The board tables as files people open in a spreadsheet: one CSV each, and one workbook.

Text from portals is data, never a formula: in CSV a cell that a spreadsheet would run
(starting with =, +, -, @, a tab or a carriage return) is prefixed with an apostrophe (OWASP's
advice for CSV injection); in the workbook such a cell is stored as a text cell, which Excel
shows as typed and never evaluates."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PERCENT_FORMAT = '0.0"%"'  # values are 0-100, as in the board tables
MIN_WIDTH, MAX_WIDTH = 8, 60  # characters


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


def write_workbook(
    path: Path, tables: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[Any]]]]
) -> None:
    """One sheet per (name, columns, DuckDB types, rows): header frozen and in bold, filters
    on, readable widths, dates as dates, percentages shown as percentages. Written in openpyxl's
    streaming mode, so a large table costs memory for one row at a time."""
    workbook = Workbook(write_only=True)
    for name, columns, types, rows in tables:
        sheet = workbook.create_sheet(title=name[:31])
        sheet.freeze_panes = "A2"
        for index, column in enumerate(columns, start=1):
            shown = [len(column)] + [len(_shown(row[index - 1])) for row in rows[:500]]
            width = min(max(max(shown) + 2, MIN_WIDTH), MAX_WIDTH)
            sheet.column_dimensions[get_column_letter(index)].width = width
        if rows:
            sheet.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{len(rows) + 1}"
        header = []
        for column in columns:
            cell = WriteOnlyCell(sheet, value=column)
            cell.font = Font(bold=True)
            header.append(cell)
        sheet.append(header)
        formats = [
            _number_format(column, sql_type)
            for column, sql_type in zip(columns, types, strict=True)
        ]
        percent_value = _percent_value_column(columns)
        for row in rows:
            cells = []
            for position, (value, number_format) in enumerate(zip(row, formats, strict=True)):
                cell = WriteOnlyCell(sheet, value=_excel_value(value))
                if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
                    cell.data_type = "s"  # text, never a formula
                if position == percent_value and row[columns.index("unit")] == "percent":
                    number_format = PERCENT_FORMAT
                if number_format:
                    cell.number_format = number_format
                cells.append(cell)
            sheet.append(cells)
    workbook.save(path)


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
