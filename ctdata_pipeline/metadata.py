"""Asset metadata helpers: previews as Dagster tables (portal text is data, never markdown)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

# Who answers for the pipeline's assets: OPM's Data and Policy Analytics division.
OWNERS = ["team:opm-dapa"]


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
