"""The readers' copy: every board table published read-only beside the warehouse, as one DuckDB
file and a Parquet file per table, so BI tools and notebooks never hold the warehouse's lock.

Layout of the publish folder (CTDATA_PUBLISH_DIR):

    ctdata_board.duckdb   the newest publication's DuckDB file (a hard link into its version)
    current -> v<UTC>     the newest publication's folder: ctdata_board.duckdb, <table>.parquet,
                          manifest.json
    v<UTC>/               the previous publication, kept until the next one is in place

A publication is built in a scratch folder, renamed into a version folder, and then made
current by replacing the `current` symlink and the stable DuckDB file with `os.replace`, each
atomic: a reader opening either path gets one whole night, and a reader holding the previous
file open keeps reading it (its inode lives until it is closed)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from filelock import FileLock

from ctdata_pipeline.durable import sync_to_disk
from ctdata_pipeline.processes import remove_abandoned_partials
from ctdata_pipeline.settings import PUBLISHED_DATABASE
from ctdata_pipeline.warehouse import scalar

CURRENT = "current"
MANIFEST = "manifest.json"
VERSION_PREFIX = "v"
SCHEMA = "board"
# The copy is attached under this name while it is written; readers see it as ctdata_board.
ATTACHED = "readers_copy"
READ_ONLY = 0o444
# Another publication (a second `ctdata nightly`) finishes its swap first; it takes seconds.
LOCK_WAIT_SECONDS = 600


@dataclass(frozen=True)
class Publication:
    database: Path  # the stable path readers open
    folder: Path  # this publication's version folder (what `current` points at)
    rows: dict[str, int]  # board.<table> -> rows
    parquet_bytes: dict[str, int]  # board.<table> -> bytes of its Parquet file
    database_bytes: int


def board_relations(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table and view of the warehouse's board schema (views are published as tables)."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_schema = ? ORDER BY table_name",
        [SCHEMA],
    ).fetchall()
    return [name for (name,) in rows]


def publish_readers_copy(
    conn: duckdb.DuckDBPyConnection, publish_dir: Path, night: date
) -> Publication:
    """Copy every board table and view of the warehouse open on `conn` (read-only is enough)
    into a new publication and make it current; remove all but it and the one before."""
    publish_dir.mkdir(parents=True, exist_ok=True)
    # Two runs publishing at once (two `ctdata nightly`) take turns swapping versions in.
    with FileLock(publish_dir / ".publish.lock", timeout=LOCK_WAIT_SECONDS):
        remove_abandoned_partials(publish_dir, ".*.partial-*")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        scratch = publish_dir / f".{VERSION_PREFIX}{stamp}.partial-{os.getpid()}"
        scratch.mkdir()
        try:
            rows, parquet_bytes = _write_copy(conn, scratch, night)
            version = publish_dir / f"{VERSION_PREFIX}{stamp}"
            scratch.rename(version)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        previous = _current_version(publish_dir)
        _make_current(publish_dir, version)
        _remove_versions(publish_dir, keep={version.name, previous})
    database = publish_dir / PUBLISHED_DATABASE
    return Publication(
        database=database,
        folder=version,
        rows=rows,
        parquet_bytes=parquet_bytes,
        database_bytes=database.stat().st_size,
    )


def _write_copy(
    conn: duckdb.DuckDBPyConnection, folder: Path, night: date
) -> tuple[dict[str, int], dict[str, int]]:
    """The DuckDB file and the Parquet files of every board relation, written and synced."""
    relations = board_relations(conn)
    # Qualified by the warehouse's catalog: the attached copy has a `board` schema too.
    source = f'"{scalar(conn, "SELECT current_database()")}".{SCHEMA}'
    database = folder / PUBLISHED_DATABASE
    # ATTACH and COPY take no bound parameters: the paths are quoted as SQL literals.
    conn.execute(f"ATTACH {_literal(database)} AS {ATTACHED} (READ_WRITE)")
    try:
        conn.execute(f"CREATE SCHEMA {ATTACHED}.{SCHEMA}")
        rows = {}
        for name in relations:
            # One statement per table; the warehouse cannot change meanwhile, since this
            # connection's lock keeps every writer out until it closes.
            conn.execute(f'CREATE TABLE {ATTACHED}.{SCHEMA}."{name}" AS FROM {source}."{name}"')
            rows[f"{SCHEMA}.{name}"] = scalar(
                conn, f'SELECT count(*) FROM {ATTACHED}.{SCHEMA}."{name}"'
            )
            conn.execute(
                f'COPY {ATTACHED}.{SCHEMA}."{name}" TO {_literal(folder / f"{name}.parquet")} '
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        conn.execute(f"CHECKPOINT {ATTACHED}")
    finally:
        conn.execute(f"DETACH {ATTACHED}")
    manifest = {
        "night": night.isoformat(),
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": PUBLISHED_DATABASE,
        "tables": {
            table: {"rows": count, "parquet": f"{table.split('.', 1)[1]}.parquet"}
            for table, count in rows.items()
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    for path in folder.iterdir():
        # Read-only files: a tool that would open the copy for writing is refused, instead of
        # changing (and locking) what the other readers read.
        path.chmod(READ_ONLY)
        sync_to_disk(path)
    sync_to_disk(folder)
    parquet_bytes = {
        table: (folder / f"{table.split('.', 1)[1]}.parquet").stat().st_size for table in rows
    }
    return rows, parquet_bytes


def _make_current(publish_dir: Path, version: Path) -> None:
    """Point `current` and the stable DuckDB file at `version`, each with one atomic rename."""
    link = publish_dir / f".{CURRENT}.partial-{os.getpid()}"
    link.unlink(missing_ok=True)
    # Relative, so the folder can be moved or copied (with its links) and still work.
    link.symlink_to(version.name, target_is_directory=True)
    current = publish_dir / CURRENT
    if current.is_dir() and not current.is_symlink():
        # A copy of the folder made without keeping links turned `current` into a folder,
        # which os.replace cannot replace.
        shutil.rmtree(current)
    os.replace(link, current)
    stable = publish_dir / PUBLISHED_DATABASE
    staged = publish_dir / f".{PUBLISHED_DATABASE}.partial-{os.getpid()}"
    staged.unlink(missing_ok=True)
    try:
        os.link(version / PUBLISHED_DATABASE, staged)
    except OSError:  # a file system without hard links: a copy costs the file's size once more
        shutil.copyfile(version / PUBLISHED_DATABASE, staged)
        sync_to_disk(staged)
    os.replace(staged, stable)
    sync_to_disk(publish_dir)


def _current_version(publish_dir: Path) -> str | None:
    current = publish_dir / CURRENT
    return os.readlink(current) if current.is_symlink() else None


def _remove_versions(publish_dir: Path, keep: set[str | None]) -> None:
    """Every version folder but those kept: the new one, and the one readers may still be
    reading through a path they resolved before the swap."""
    for path in publish_dir.iterdir():
        if path.name.startswith(VERSION_PREFIX) and path.is_dir() and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
