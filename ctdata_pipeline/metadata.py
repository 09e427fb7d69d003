"""Asset metadata helpers: previews as Dagster tables (portal text is data, never markdown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

# Who answers for the pipeline's assets: OPM's Data and Policy Analytics division.
OWNERS = ["team:opm-dapa"]
# Units whose values people read to one decimal (the report prints them so); the rest are counts.
DECIMAL_UNITS = ("percent", "score", "days")


def metric_number(value: float, unit: str) -> dg.MetadataValue:
    """A metric value as a number Dagster plots, rounded as the report prints it: percentages,
    scores and days to one decimal, counts whole."""
    if unit in DECIMAL_UNITS:
        return dg.MetadataValue.float(round(value, 1))
    return dg.MetadataValue.int(round(value))


def metric_text(value: float | None, unit: str) -> str:
    """A metric value for a metadata table: `n/a`, `48.2%`, `65.9` or `1,131`."""
    if value is None:
        return "n/a"
    if unit in DECIMAL_UNITS:
        return f"{value:,.1f}" + ("%" if unit == "percent" else "")
    return f"{value:,.0f}"


def table_preview(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> dg.MetadataValue:
    """A structured table the UI renders cell by cell, so a title with `|` or `<script>` stays
    text. None becomes an empty cell."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name) for name in columns])
    records = [dg.TableRecord({name: _cell(row.get(name)) for name in columns}) for row in rows]
    return dg.MetadataValue.table(records=records, schema=schema)


def _cell(value: Any) -> str | int | float | bool:
    if value is None:
        return ""
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def column_schema(columns: dict[str, tuple[str, str]]) -> dg.TableSchema:
    """A table's column schema for the UI: name -> (type, description)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, sql_type, description=description)
            for name, (sql_type, description) in columns.items()
        ]
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small markdown table; cells are escaped so text cannot break or style the table."""
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in headers) + " |",
        "|" + "---|" * len(headers),
    ]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _markdown_cell(value: object) -> str:
    text = " ".join(str(value).split())
    for character in "\\|*_`[]<>#":
        text = text.replace(character, "\\" + character)
    return text
