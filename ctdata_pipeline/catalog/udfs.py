"""The DuckDB functions the Socrata normalization SQL calls: the text macros of sql/text.sql and
the Python functions behind them (clean_text, the FR-0 frequency code), registered per
connection."""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path

import duckdb

from ctdata_pipeline.catalog.frequency import normalize_frequency
from ctdata_pipeline.catalog.text import clean_text
from ctdata_pipeline.warehouse import sql

SQL_DIR = Path(__file__).parent / "sql"


def register_text_functions(conn: duckdb.DuckDBPyConnection) -> None:
    """The text macros of sql/text.sql, and the Python functions they call, on `conn`."""
    registered = {
        row[0]
        for row in conn.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'ctdata_%'"
        ).fetchall()
    }
    if "ctdata_clean_text" not in registered:
        conn.create_function(
            "ctdata_clean_text", _clean_text, ["VARCHAR"], "VARCHAR", null_handling="special"
        )
    if "ctdata_frequency_code" not in registered:
        conn.create_function("ctdata_frequency_code", _frequency_code, ["VARCHAR"], "VARCHAR")
    conn.execute(sql("text.sql", SQL_DIR).replace("{plain_text}", _plain_text_pattern()))


# The values that reach Python repeat across datasets ("&nbsp;", the same column described the
# same way in a family of datasets): clean each once.
@lru_cache(maxsize=1 << 16)
def _clean_text(text: str) -> str | None:
    return clean_text(text)


@cache
def _frequency_code(raw: str) -> str:
    return normalize_frequency(raw)[0]


@cache
def _plain_text_pattern() -> str:
    """RE2: text that clean_text returns unchanged: words without markup, braces or Python's
    whitespace (every character `\\s` matches in Python, not only RE2's ASCII ones), separated by
    single spaces."""
    whitespace = "".join(
        f"\\x{{{code:x}}}" for code in range(0x3001) if re.fullmatch(r"\s", chr(code))
    )
    word = f"[^<&{{}}{whitespace}]+"
    return f"{word}( {word})*"
