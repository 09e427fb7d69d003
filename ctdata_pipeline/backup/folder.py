"""The backup folder (CTDATA_BACKUP_DIR): one DuckDB file per backup, named by the UTC time it
was taken so the names sort as the backups do (`ctdata-20250601-061502Z.duckdb`), each with a
manifest beside it (`.json`: when, how big, how long, the content fingerprint)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from ctdata_pipeline.backup.retention import KeepPolicy, backups_to_keep
from ctdata_pipeline.durable import sync_to_disk

STAMP = "%Y%m%d-%H%M%SZ"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}-\d{6}Z)\.duckdb$")
# Where a backup is written before it is renamed into place (removed when empty).
PARTIAL = ".partial"


@dataclass(frozen=True)
class Manifest:
    """What is known of a backup without opening it."""

    taken_at: str  # ISO 8601, UTC
    warehouse: str
    bytes: int
    seconds: float  # the whole backup: checkpoint, copy, and the checks run on the copy
    check_seconds: float
    fingerprint: str  # board/verify.py's content_fingerprint of what was copied
    schema_version: int | None
    snapshots: int
    last_night: str | None
    duckdb_version: str


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime

    @property
    def manifest_path(self) -> Path:
        return self.path.with_suffix(".json")

    def manifest(self) -> Manifest | None:
        """The manifest, or None if it is missing or unreadable (the backup is still one)."""
        try:
            return Manifest(**json.loads(self.manifest_path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def backup_name(db_path: Path, taken_at: datetime) -> str:
    return f"{db_path.stem}-{taken_at.astimezone(UTC).strftime(STAMP)}.duckdb"


def parse_backup(path: Path, stem: str | None = None) -> Backup | None:
    """The backup a file name stands for (of the warehouse `stem`, if given), else None."""
    match = _NAME.match(path.name)
    if not match or (stem is not None and match["stem"] != stem):
        return None
    taken_at = datetime.strptime(match["stamp"], STAMP).replace(tzinfo=UTC)
    return Backup(path, taken_at)


def list_backups(folder: Path, db_path: Path) -> list[Backup]:
    """The warehouse's backups in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    found = (parse_backup(path, db_path.stem) for path in folder.iterdir() if path.is_file())
    return sorted((backup for backup in found if backup), key=lambda backup: backup.taken_at)


def newest_backup(folder: Path, db_path: Path) -> Backup | None:
    backups = list_backups(folder, db_path)
    return backups[-1] if backups else None


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One backup or retention pass at a time on a folder (two processes may both take one)."""
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".backup.lock"):
        yield


def write_manifest(path: Path, manifest: Manifest) -> None:
    _write_synced(path, json.dumps(asdict(manifest), indent=2).encode("utf-8"))


def place(partial: Path, final: Path) -> None:
    """Rename a finished backup into place and make the rename durable."""
    os.replace(partial, final)
    sync_to_disk(final.parent)


def clear_partials(folder: Path) -> None:
    """Backups a killed process left half-written (the folder lock is held)."""
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)


def apply_retention(
    folder: Path, db_path: Path, policy: KeepPolicy
) -> tuple[list[Backup], list[Backup]]:
    """Delete the backups the policy does not keep: (kept, deleted), oldest first."""
    backups = list_backups(folder, db_path)
    keep = backups_to_keep((backup.taken_at for backup in backups), policy)
    kept = [backup for backup in backups if backup.taken_at in keep]
    deleted = [backup for backup in backups if backup.taken_at not in keep]
    for backup in deleted:
        backup.path.unlink(missing_ok=True)
        backup.manifest_path.unlink(missing_ok=True)
    if deleted:
        sync_to_disk(folder)
    return kept, deleted


def copy_synced(source: Path, target: Path) -> None:
    """Copy a file and flush it to disk before anyone relies on it."""
    shutil.copyfile(source, target)
    with target.open("rb") as copied:
        os.fsync(copied.fileno())


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
