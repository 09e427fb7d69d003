"""Restoring a backup: check it, keep the current file aside, put the backup in its place.

The backup is checked first, read-only, exactly as `ctdata check` checks the warehouse, and
refused (nothing changes) when it is not a DuckDB file, is damaged, fails a check, or comes
from a newer schema than this code knows. The swap is one rename over the warehouse's path, so
the path always holds either the old file or the restored one; the old file stays beside it
(a hard link made before the swap, or a rename where links are not possible)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ctdata_pipeline.backup.folder import STAMP, copy_synced
from ctdata_pipeline.board.verify import Verification, WarehouseDamaged, check_header, verify_file
from ctdata_pipeline.durable import sync_to_disk
from ctdata_pipeline.failures import duckdb_reason
from ctdata_pipeline.schema_version import SchemaTooNew, check_schema_version
from ctdata_pipeline.warehouse import connect


class RestoreRefused(Exception):
    """The backup was not put in place (one line saying why); the warehouse is unchanged."""


@dataclass(frozen=True)
class Restored:
    backup: Path
    db_path: Path
    aside: Path | None
    found: Verification


def check_backup(backup: Path) -> Verification:
    """What `ctdata check` finds in the backup; RestoreRefused if it must not be restored."""
    if not backup.is_file():
        raise RestoreRefused(f"{backup}: no such file")
    try:
        check_header(backup)
        conn = connect(backup, read_only=True)
        try:
            check_schema_version(conn, str(backup))
        finally:
            conn.close()
        found = verify_file(backup)
    except (WarehouseDamaged, SchemaTooNew) as refusal:
        raise RestoreRefused(str(refusal)) from None
    except duckdb.Error as error:
        raise RestoreRefused(f"{backup} cannot be opened: {duckdb_reason(error)}") from None
    if found.problems:
        raise RestoreRefused(
            f"{backup} fails `ctdata check` with {found.problems} problem(s) "
            f"(CTDATA_DB={backup} ctdata check lists them)"
        )
    return found


def restore_backup(backup: Path, db_path: Path) -> Restored:
    """Put `backup` in place of the warehouse at `db_path`, keeping the current file aside."""
    if db_path.exists() and backup.resolve() == db_path.resolve():
        raise RestoreRefused(f"{backup} is the warehouse itself")
    found = check_backup(backup)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    incoming = db_path.with_name(f".{db_path.name}.restoring")
    copy_synced(backup, incoming)
    try:
        aside = _set_aside(db_path) if db_path.exists() else None
        os.replace(incoming, db_path)
        sync_to_disk(db_path.parent)
    finally:
        incoming.unlink(missing_ok=True)
    return Restored(backup, db_path, aside, found)


def _set_aside(db_path: Path) -> Path:
    _wait_for_writers(db_path)
    stamp = datetime.now(UTC).strftime(STAMP)
    aside = db_path.with_name(f"{db_path.stem}.before-restore-{stamp}{db_path.suffix}")
    try:
        os.link(db_path, aside)
    except OSError:
        os.replace(db_path, aside)
    # A write-ahead log belongs to the file it was written for: left beside the restored file,
    # DuckDB would replay it into it.
    wal = db_path.with_name(db_path.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    return aside


def _wait_for_writers(db_path: Path) -> None:
    """A process writing the warehouse would go on writing the file set aside; wait (as every
    step does) until none holds it. A file too damaged to open has no writer."""
    try:
        connect(db_path, read_only=True).close()
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise RestoreRefused(
                f"{db_path} is held by another process ({duckdb_reason(error)}); "
                "stop it and restore again"
            ) from None
    except duckdb.Error:
        pass
