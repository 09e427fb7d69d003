"""Taking a backup: a checkpointed copy of the DuckDB file, checked, then renamed into place.

The copy is made while this process holds the file open for writing (DuckDB's lock: no other
process can write, or open it, meanwhile) and right after a CHECKPOINT, so the file on disk
holds every committed write and nothing is in the write-ahead log. The copy is checked the way
`ctdata check` checks a file before it is put in place: every backup in the folder is one that
`ctdata restore` accepts. (Why a file copy, not EXPORT DATABASE: README, *Backups*.)"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ctdata_pipeline.backup.folder import (
    PARTIAL,
    Backup,
    Manifest,
    apply_retention,
    backup_name,
    clear_partials,
    copy_synced,
    folder_lock,
    parse_backup,
    place,
    write_manifest,
)
from ctdata_pipeline.backup.retention import KeepPolicy
from ctdata_pipeline.board.verify import Verification, WarehouseDamaged, verify_file
from ctdata_pipeline.schema_version import stored_schema_version
from ctdata_pipeline.warehouse import connect


class BackupRefused(Exception):
    """No backup was taken (one line saying why); the backups already there are kept."""


@dataclass(frozen=True)
class Taken:
    backup: Backup
    manifest: Manifest
    kept: list[Backup]
    deleted: list[Backup]


def take_backup(db_path: Path, folder: Path, policy: KeepPolicy) -> Taken:
    """Back the warehouse up into `folder`, then apply the retention policy."""
    if not db_path.exists():
        raise BackupRefused(f"no database at {db_path} to back up (CTDATA_DB)")
    with folder_lock(folder):
        clear_partials(folder)
        started = time.perf_counter()
        taken_at = _unused_time(folder, db_path)
        final = folder / backup_name(db_path, taken_at)
        partial = folder / PARTIAL / final.name
        partial.parent.mkdir()
        try:
            schema_version = _copy_checkpointed(db_path, partial)
            checked = time.perf_counter()
            found = _checked(db_path, partial)
            finished = time.perf_counter()
            manifest = Manifest(
                taken_at=taken_at.isoformat(),
                warehouse=str(db_path),
                bytes=partial.stat().st_size,
                seconds=round(finished - started, 3),
                check_seconds=round(finished - checked, 3),
                fingerprint=found.fingerprint,
                schema_version=schema_version,
                snapshots=found.snapshots,
                last_night=found.last_night.isoformat() if found.last_night else None,
                duckdb_version=duckdb.__version__,
            )
            # The manifest first: a backup file never appears without it.
            write_manifest(final.with_suffix(".json"), manifest)
            place(partial, final)
        finally:
            clear_partials(folder)
        kept, deleted = apply_retention(folder, db_path, policy)
    return Taken(parse_backup(final) or Backup(final, taken_at), manifest, kept, deleted)


def _copy_checkpointed(db_path: Path, partial: Path) -> int | None:
    conn = connect(db_path)
    try:
        conn.execute("CHECKPOINT")
        schema_version = stored_schema_version(conn)
        copy_synced(db_path, partial)
    finally:
        conn.close()
    return schema_version


def _checked(db_path: Path, partial: Path) -> Verification:
    try:
        found = verify_file(partial)
    except WarehouseDamaged as damage:
        reason = str(damage).replace(str(partial), "the copy")
        raise BackupRefused(f"{db_path} cannot be read whole, no backup taken: {reason}") from None
    if found.problems:
        raise BackupRefused(
            f"{db_path} fails ctdata check ({found.problems} problem(s)): no backup taken, "
            "the backups already taken are kept; run `ctdata check` to see them"
        )
    return found


def _unused_time(folder: Path, db_path: Path) -> datetime:
    """Now, to the second; a second later if a backup already has this second's name."""
    while True:
        taken_at = datetime.now(UTC).replace(microsecond=0)
        if not (folder / backup_name(db_path, taken_at)).exists():
            return taken_at
        time.sleep(1.05 - datetime.now(UTC).microsecond / 1e6)
