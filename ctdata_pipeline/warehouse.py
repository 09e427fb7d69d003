"""The warehouse: the DuckDB file (one connection at a time, opened late, closed always), or a
DuckLake (CTDATA_WAREHOUSE=ducklake:...) that takes concurrent writers and readers."""

from __future__ import annotations

import importlib.resources
import os
import random
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import tenacity
from pydantic import Field

from ctdata_pipeline.failures import failing_clearly, storage_failure

# Another process (another run's step, an open DuckDB CLI) may hold the file's lock: wait this
# long for it (CTDATA_LOCK_WAIT_SECONDS), then fail naming the holder.
LOCK_WAIT_SECONDS = 120.0
# The Dagster concurrency pool of every step that writes the file: one at a time, across runs.
DUCKDB_POOL = "duckdb"
STORAGE_VERSION = "v1.2.0"
_PARAMETER = re.compile(r"\$([a-z_]+)")


class DuckDBWarehouse(dg.ConfigurableResource):
    """The pipeline's DuckDB file (CTDATA_DB): catalog snapshots and board tables.

    Like dagster-duckdb's DuckDBResource it retries while another process holds the file's
    lock; unlike it, it always closes the connection (also when the body raises), so a failed
    step never leaves the file locked, and it reads timestamps in UTC."""

    database: str = Field(description="Path of the DuckDB file (CTDATA_DB).")
    lock_wait_seconds: float = Field(
        default=LOCK_WAIT_SECONDS,
        description="How long to wait for another process's lock (CTDATA_LOCK_WAIT_SECONDS).",
    )
    readers_copy: str = Field(
        default="",
        description="The published copy readers should open instead (CTDATA_PUBLISH_DIR).",
    )
    lake_catalog: str = Field(
        default="",
        description="The DuckLake's catalog (CTDATA_WAREHOUSE after 'ducklake:'); empty: the file.",
    )
    lake_data: str = Field(
        default="", description="The DuckLake's folder of data files (CTDATA_WAREHOUSE_DATA)."
    )

    @property
    def lake(self) -> Lake | None:
        return Lake(self.lake_catalog, self.lake_data) if self.lake_catalog else None

    @property
    def location(self) -> str:
        """Where the tables are, for messages: the file, or the lake (never its password)."""
        lake = self.lake
        return lake.described if lake else self.database

    def exists(self) -> bool:
        """Whether anything may be stored yet (a file not created yet holds nothing). A lake in
        PostgreSQL is asked (a read-only connection refuses a lake never written to)."""
        lake = self.lake
        if lake is None:
            return Path(self.database).exists()
        if not lake.uses_postgres:
            return Path(lake.catalog).exists()
        try:
            connect_lake(lake, read_only=True).close()
        except LakeMissing:
            return False
        return True

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        lake = self.lake
        path = Path(lake.data_path if lake else self.database)
        action = "read the database" if read_only else "write the database"
        with failing_clearly(action, path, os_errors=False, writing=not read_only):
            try:
                if lake:
                    conn = connect_lake(lake, read_only=read_only)
                else:
                    conn = connect(path, read_only, lock_wait_seconds=self.lock_wait_seconds)
            except WarehouseLocked as locked:
                raise self.locked_failure(locked, read_only) from None
            try:
                yield conn
            except duckdb.TransactionException as error:
                if lake and "conflict" in str(error).lower():
                    raise lake_conflict() from None
                raise
            finally:
                conn.close()

    def locked_failure(self, locked: WarehouseLocked, read_only: bool) -> dg.Failure:
        """The one-line failure of a wait for another program's lock that ran out."""
        action = "read the database" if read_only else "write the database"
        reason = locked.reason(self.readers_copy)
        return storage_failure(action, Path(self.database), reason, writing=not read_only)


# DuckDB names a file's catalog after the file, so a file named like one of the pipeline's
# schemas ("metrics.duckdb") would make `metrics.datasets` ambiguous.
RESERVED_FILE_NAMES = frozenset({"catalog", "metrics", "board", "main", "temp", "system", "memory"})


class WarehouseNameError(ValueError):
    """The DuckDB file's name cannot be used."""


def check_database_name(path: Path) -> None:
    if path.stem.lower() in RESERVED_FILE_NAMES:
        raise WarehouseNameError(
            f"CTDATA_DB {path}: DuckDB would name the file's catalog {path.stem!r}, the same as "
            f"one of the pipeline's schemas; choose another file name (e.g. ctdata.duckdb)"
        )


class WarehouseLocked(Exception):
    """Another process held the file's lock for longer than the wait allowed."""

    def __init__(self, error: duckdb.Error, waited: float) -> None:
        super().__init__(str(error))
        self.waited = waited
        self.holder = lock_holder(str(error))

    def reason(self, readers_copy: str = "") -> str:
        """Why, who, and what to do, in one line (the run's failure, the command's stderr)."""
        holder = f": {self.holder}" if self.holder else ""
        readers = (
            f"; readers should open the published copy {readers_copy} instead, which never "
            "blocks the night"
            if readers_copy
            else ""
        )
        return (
            f"another program held its lock throughout the {self.waited:g} s waited "
            f"(CTDATA_LOCK_WAIT_SECONDS){holder}. Close that program's connection to the file "
            f"and run again{readers}"
        )


# DuckDB's words for a lock another process holds: "Conflicting lock is held in <program>
# (PID <n>) by user <name>" (the user part only when DuckDB can tell).
_LOCK_HOLDER = re.compile(
    r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)"
    r"(?: by user (?P<user>[^\s.]+))?"
)
_MAX_COMMAND_LINE = 200


def lock_holder(message: str) -> str | None:
    """Who holds the lock, from DuckDB's message: '<program> (PID n, user u) running "<its
    command line>"' (the command line when /proc lets us read it), or None if it does not say."""
    found = _LOCK_HOLDER.search(message)
    if found is None:
        return None
    pid = found["pid"]
    who = f"PID {pid}" + (f", user {found['user']}" if found["user"] else "")
    holder = f"{found['program']} ({who})"
    command_line = _command_line(int(pid))
    return f'{holder} running "{command_line}"' if command_line else holder


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone already, another machine's PID, or not Linux
        return None
    text = " ".join(part for part in raw.decode("utf-8", "replace").split("\0") if part)
    # The holder's own arguments could carry the app token; it never reaches a message.
    token = os.environ.get("SOCRATA_APP_TOKEN")
    if token:
        text = text.replace(token, "[redacted]")
    text = " ".join(text.split())
    if len(text) > _MAX_COMMAND_LINE:
        text = text[: _MAX_COMMAND_LINE - 1] + "…"
    return text or None


def connect(
    path: Path, read_only: bool = False, lock_wait_seconds: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """Open the file, waiting (with backoff) while another process holds its lock, at most
    `lock_wait_seconds`; then raise WarehouseLocked naming the holder."""
    check_database_name(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_is_lock_conflict),
        stop=tenacity.stop_after_delay(lock_wait_seconds),
        wait=tenacity.wait_exponential(multiplier=0.05, max=5),
        reraise=True,
    )
    # A new file in DuckDB's storage format 1.2 (readable by DuckDB 1.2 and later), which can
    # compress the raw records with zstd; an existing file keeps the format it has.
    config = {} if read_only else {"storage_compatibility_version": STORAGE_VERSION}
    try:
        conn = retrying(duckdb.connect, str(path), read_only=read_only, config=config)
    except duckdb.IOException as error:
        if not _is_lock_conflict(error):
            raise
        raise WarehouseLocked(error, lock_wait_seconds) from None
    conn.execute("SET TimeZone = 'UTC'")
    return conn


# The name the lake is attached under: a file's catalog is named after the file (ctdata.duckdb),
# so both backends see the same current_database().
LAKE_ALIAS = "ctdata"
# libpq's password=... (quoted or not) in a PostgreSQL catalog's connection string.
_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s\"]+)", re.IGNORECASE)
LAKE_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres": "duckdb_extension_postgres"}
_EXTENSION_NAMES = {"postgres": "postgres_scanner"}
# A step whose commit met another writer's runs again, up to this many times.
LAKE_CONFLICT_RETRIES = 10
LAKE_CONFLICT_PAUSE_SECONDS = 5.0


@dataclass(frozen=True)
class Lake:
    """A DuckLake: its catalog (a DuckDB file, `postgres:<libpq connection string>`, ...) and
    the folder its data files are written to."""

    catalog: str
    data_path: str

    @property
    def uses_postgres(self) -> bool:
        return self.catalog.startswith("postgres:")

    @property
    def described(self) -> str:
        """The lake in a message: its catalog without a password, and its data folder."""
        catalog = redacted(self.catalog)
        return f"the DuckLake ducklake:{catalog} (data in {self.data_path})"


def extension_file(name: str) -> Path:
    """The extension binary the PyPI package `duckdb-extension-<name>` carries for this DuckDB
    (DuckDB cannot download extensions where the pipeline runs)."""
    package = importlib.resources.files(LAKE_EXTENSIONS[name])
    return Path(str(package / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"))


def connect_lake(lake: Lake, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached and in use, so the pipeline's SQL runs on it
    unchanged. Writers and readers do not wait for each other: DuckLake commits are snapshots
    in its catalog, and a reader sees the last one committed."""
    conn = duckdb.connect(
        ":memory:",
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    try:
        for name in ("postgres", "ducklake") if lake.uses_postgres else ("ducklake",):
            _load_extension(conn, name)
        if not read_only:
            Path(lake.data_path).mkdir(parents=True, exist_ok=True)
        options = f"DATA_PATH {_quoted(lake.data_path)}" + (", READ_ONLY" if read_only else "")
        try:
            conn.execute(
                f"ATTACH {_quoted('ducklake:' + lake.catalog)} AS {LAKE_ALIAS} ({options})"
            )
        except duckdb.Error as error:
            # DuckDB's message repeats the connection string, password and all.
            message = redacted(str(error))
            if read_only and "creating a new DuckLake is explicitly disabled" in message:
                raise LakeMissing(message) from None
            raise type(error)(message) from None
        conn.execute(f"USE {LAKE_ALIAS}")
        conn.execute("SET TimeZone = 'UTC'")
    except BaseException:
        conn.close()
        raise
    return conn


def lake_conflict() -> dg.RetryRequested:
    """Another writer committed to the same table first (DuckLake checks at commit: two
    nights deleting their old rows from one table conflict). The step's writes are all or
    nothing and replace its night whole, so the step runs again, after a pause that differs
    between writers so they do not meet again."""
    return dg.RetryRequested(
        max_retries=LAKE_CONFLICT_RETRIES,
        seconds_to_wait=random.uniform(0.5, LAKE_CONFLICT_PAUSE_SECONDS),
    )


class LakeMissing(duckdb.IOException):
    """A read-only connection to a DuckLake nothing was ever written to (no catalog yet)."""


def redacted(text: str) -> str:
    """`text` without the password of a libpq connection string it quotes."""
    return _PASSWORD.sub(r"\1[redacted]", text)


def _load_extension(conn: duckdb.DuckDBPyConnection, name: str) -> None:
    """INSTALL the package's binary once (into DuckDB's extension folder, under the name the
    binary declares: postgres_scanner for postgres), then LOAD it."""
    loaded_as = _EXTENSION_NAMES.get(name, name)
    installed = scalar(
        conn, "SELECT installed FROM duckdb_extensions() WHERE extension_name = ?", [loaded_as]
    )
    if not installed:
        conn.execute(f"INSTALL {_quoted(str(extension_file(name)))}")
    conn.execute(f"LOAD {loaded_as}")


def _quoted(text: str) -> str:
    """A SQL string literal (ATTACH and LOAD take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One all-or-nothing write. A COMMIT that fails (a full disk) has already ended the
    transaction, so the ROLLBACK after it fails too; that must not hide why the write failed."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise


def first_row(
    conn: duckdb.DuckDBPyConnection, query: str, parameters: Sequence[Any] | None = None
) -> tuple[Any, ...] | None:
    """The first row of a query, read to the end (DuckDB 2 keeps a half-read result open and
    refuses the connection's next relational call)."""
    rows = conn.execute(query, parameters or []).fetchall()
    return rows[0] if rows else None


def scalar(
    conn: duckdb.DuckDBPyConnection, query: str, parameters: Sequence[Any] | None = None
) -> Any:
    """The single value a query returns."""
    row = first_row(conn, query, parameters)
    return row[0] if row else None


@cache
def sql(name: str, folder: Path) -> str:
    """The text of a query file of the pipeline's (each module keeps its own `sql/` folder)."""
    return (folder / name).read_text(encoding="utf-8")


def run_sql(conn: duckdb.DuckDBPyConnection, text: str, parameters: dict[str, Any]) -> None:
    """Execute one statement with the named parameters it uses (DuckDB refuses extra ones)."""
    used = set(_PARAMETER.findall(text))
    conn.execute(text, {name: value for name, value in parameters.items() if name in used})


def _is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()
