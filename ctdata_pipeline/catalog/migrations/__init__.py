"""Numbered migrations of the warehouse's catalog tables, each applied once, in order.

A module `NNNN_what.py` here is one step: its `apply(conn)` takes a file at version NNNN - 1 to
NNNN. `main.schema_version` (schema_version.py) records the last step a file has had, written
in the step's own transaction, so a step that fails leaves the file at the version before it and
is tried again whole by the next write. A file written before versions were recorded counts as
version 0 (every step written so that it also finds the parts such a file already has).

A change to the catalog's tables is a new step with the next number, and SCHEMA_VERSION follows
it; an existing step is never edited (files already past it would never see the change)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import duckdb

from ctdata_pipeline.schema_version import check_schema_version, record_schema_version
from ctdata_pipeline.warehouse import transaction

_STEP_NAME = re.compile(r"(\d{4})_\w+")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[duckdb.DuckDBPyConnection], None]


@cache
def migrations() -> tuple[Migration, ...]:
    """The steps of this folder in order; their numbers run 1, 2, 3... without a gap."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        if match := _STEP_NAME.fullmatch(module.name):
            step = importlib.import_module(f"{__name__}.{module.name}")
            found.append(Migration(int(match.group(1)), module.name, step.apply))
    found.sort(key=lambda migration: migration.version)
    numbers = [migration.version for migration in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"catalog migrations are not numbered 1 to {len(found)}: {numbers}")
    return tuple(found)


def migrate(
    conn: duckdb.DuckDBPyConnection, steps: Sequence[Migration] | None = None
) -> list[Migration]:
    """Apply the steps the file has not had yet, each in one transaction with its version; the
    steps applied (none for a file that is up to date, which is then not written to).
    SchemaTooNew for a file a newer ctdata wrote."""
    stored = check_schema_version(conn, "the database") or 0
    pending = [step for step in (steps or migrations()) if step.version > stored]
    for step in pending:
        with transaction(conn):
            step.apply(conn)
            record_schema_version(conn, step.version)
    return pending
