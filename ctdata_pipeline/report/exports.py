"""The board tables as files people open in a spreadsheet: one CSV each, and one workbook.

Text from portals is data, never a formula: in CSV a cell that a spreadsheet would run
(starting with =, +, -, @, a tab or a carriage return) is prefixed with an apostrophe (OWASP's
advice for CSV injection); in the workbook such a cell is stored as a text cell, which Excel
shows as typed and never evaluates."""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

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


def write_workbook(
    path: Path,
    tables: Sequence[tuple[str, Sequence[str], Sequence[str], Sequence[Sequence[Any]]]],
    as_of: datetime,
) -> None:
    """One sheet per (name, columns, DuckDB types, rows): header frozen and in bold, filters
    on, readable widths, dates as dates, percentages shown as percentages. Written in openpyxl's
    streaming mode, so a large table costs memory for one row at a time. The workbook's times
    (its properties, its zip entries) are `as_of`, the data's time, never the clock: the same
    tables make the same bytes."""
    # Imported here, not with the module: every ctdata command and run loads this module.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    workbook = Workbook(write_only=True)
    stamp = as_of.astimezone(UTC).replace(tzinfo=None)
    workbook.properties.created = workbook.properties.modified = stamp
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
    # openpyxl's save() stamps the workbook with the clock; its ExcelWriter does not.
    with _ZipAtOneTime(path, stamp) as archive:
        ExcelWriter(workbook, archive).save()


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
