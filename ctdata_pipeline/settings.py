"""Where things live, from the environment (the names in the product spec's Configuration table)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from ctdata_pipeline.partitions import HARVEST_TIME
from ctdata_pipeline.portals import DEFAULT_PORTALS_FILE, PortalFile, load_portal_file
from ctdata_pipeline.warehouse import (
    LOCK_WAIT_SECONDS,
    DuckDBWarehouse,
    Lake,
    check_database_name,
)

# The readers' copy of the board tables, in CTDATA_PUBLISH_DIR: the file to point tools at.
PUBLISHED_DATABASE = "ctdata_board.duckdb"


@dataclass(frozen=True)
class Settings:
    """Paths resolved against the working directory, as the commands and `dagster dev` see them."""

    db_path: Path
    report_dir: Path
    portals_file: Path
    staging_dir: Path
    # A harvest that fails for a reason worth retrying (network, a 5xx) is tried again later.
    harvest_retries: int = 2
    harvest_retry_delay_seconds: float = 300.0
    # None: `published/` beside the DuckDB file.
    publish_dir: Path | None = None
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    # Backups of the DuckDB file (CTDATA_BACKUP_DIR; default backups/ beside it) and how many
    # are kept (CTDATA_BACKUP_KEEP, parsed by backup/retention.py).
    backup_dir: Path | None = None
    backup_keep: str = ""
    # When the nightly schedule fires, New York time (CTDATA_NIGHTLY_AT).
    nightly_at: time = HARVEST_TIME
    # Who receives the digests (CTDATA_RECIPIENTS, a YAML file); None: no digests are sent.
    recipients_file: Path | None = None
    # Where a dry run writes the digests as .eml files (CTDATA_OUTBOX_DIR; default outbox/ in
    # the working directory).
    outbox_dir: Path = field(default_factory=lambda: Path.cwd() / "outbox")
    # Where a night's steps run (CTDATA_EXECUTOR): None, in the run's own process; or on the
    # Celery workers of this broker (README, *Production*).
    celery: CelerySettings | None = None
    # A DuckLake instead of the DuckDB file (CTDATA_WAREHOUSE=ducklake:<catalog> with its data
    # files in CTDATA_WAREHOUSE_DATA); None: the file at db_path.
    lake: Lake | None = None

    @classmethod
    def from_env(cls, cwd: Path | None = None) -> Settings:
        cwd = cwd or Path.cwd()
        db_path = _path_from_env("CTDATA_DB", cwd / "data" / "ctdata.duckdb", cwd)
        check_database_name(db_path)
        return cls(
            db_path=db_path,
            report_dir=_path_from_env("CTDATA_REPORT_DIR", cwd / "reports", cwd),
            portals_file=_path_from_env("CTDATA_PORTALS", DEFAULT_PORTALS_FILE, cwd),
            # Staged harvests sit beside the database they are loaded into.
            staging_dir=_path_from_env("CTDATA_STAGING_DIR", db_path.parent / "staging", cwd),
            harvest_retries=int(_number_from_env("CTDATA_HARVEST_RETRIES", 2, whole=True)),
            harvest_retry_delay_seconds=_number_from_env("CTDATA_HARVEST_RETRY_DELAY", 300),
            backup_dir=_path_from_env("CTDATA_BACKUP_DIR", db_path.parent / "backups", cwd),
            backup_keep=os.environ.get("CTDATA_BACKUP_KEEP", ""),
            publish_dir=_path_from_env("CTDATA_PUBLISH_DIR", db_path.parent / "published", cwd),
            lock_wait_seconds=_number_from_env("CTDATA_LOCK_WAIT_SECONDS", LOCK_WAIT_SECONDS),
            nightly_at=_time_of_day_from_env("CTDATA_NIGHTLY_AT", HARVEST_TIME),
            recipients_file=_optional_path_from_env("CTDATA_RECIPIENTS", cwd),
            outbox_dir=_path_from_env("CTDATA_OUTBOX_DIR", cwd / "outbox", cwd),
            celery=celery_from_env(),
            lake=_lake_from_env(cwd),
        )

    @property
    def published_dir(self) -> Path:
        """The readers' copy's folder (CTDATA_PUBLISH_DIR)."""
        return self.publish_dir or self.db_path.parent / "published"

    @property
    def published_database(self) -> Path:
        """The one file readers open: always the newest night published, whole."""
        return self.published_dir / PUBLISHED_DATABASE

    def warehouse(self, path: Path | None = None) -> DuckDBWarehouse:
        """The warehouse as every step and command opens it: the DuckLake (CTDATA_WAREHOUSE)
        if there is one, else the DuckDB file (CTDATA_DB); or the DuckDB file at `path` (a
        backup), never the lake."""
        lake = self.lake if path is None or path == self.db_path else None
        return DuckDBWarehouse(
            database=str(path or self.db_path),
            lock_wait_seconds=self.lock_wait_seconds,
            readers_copy=str(self.published_database),
            lake_catalog=lake.catalog if lake else "",
            lake_data=lake.data_path if lake else "",
        )

    @property
    def backups(self) -> Path:
        return self.backup_dir or self.db_path.parent / "backups"

    def load_portals(self) -> PortalFile:
        return load_portal_file(self.portals_file)


IN_PROCESS_EXECUTOR = "in_process"
CELERY_EXECUTOR = "celery"
# A broker's URL carries its password: messages name the variable and the URL's scheme only.
_BROKER_SCHEMES = ("redis", "rediss", "sentinel", "amqp", "amqps", "pyamqp")
# A step that a worker took and never finished (the worker was killed) goes back to the queue
# after this long (Redis has no acknowledgements of its own); longer than any step should take.
DEFAULT_VISIBILITY_TIMEOUT = 3600


@dataclass(frozen=True)
class CelerySettings:
    """The Celery broker and result backend the steps go through (CTDATA_CELERY_BROKER,
    CTDATA_CELERY_BACKEND) and how long a task taken by a lost worker stays invisible
    (CTDATA_CELERY_VISIBILITY_TIMEOUT). The names of the variables holding the URLs are kept so
    that the executor's config points at the variables, never at their secret values."""

    broker_variable: str
    backend_variable: str
    visibility_timeout_seconds: float = DEFAULT_VISIBILITY_TIMEOUT

    @property
    def broker_url(self) -> str:
        return os.environ[self.broker_variable]

    @property
    def backend_url(self) -> str:
        return os.environ[self.backend_variable]


def celery_from_env() -> CelerySettings | None:
    """CTDATA_EXECUTOR=celery with its broker, or None for the default (steps in the run's own
    process, `in_process`)."""
    executor = os.environ.get("CTDATA_EXECUTOR", "").strip() or IN_PROCESS_EXECUTOR
    if executor == IN_PROCESS_EXECUTOR:
        return None
    if executor != CELERY_EXECUTOR:
        raise SettingsError(
            f"CTDATA_EXECUTOR={executor!r} must be {IN_PROCESS_EXECUTOR} (the default) or "
            f"{CELERY_EXECUTOR}"
        )
    _check_broker_url("CTDATA_CELERY_BROKER", required=True)
    # The result backend is the broker unless said otherwise (one Redis does both).
    backend = "CTDATA_CELERY_BACKEND"
    if not _check_broker_url(backend, required=False):
        backend = "CTDATA_CELERY_BROKER"
    timeout = _number_from_env("CTDATA_CELERY_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT)
    if timeout < 1:
        raise SettingsError(
            "CTDATA_CELERY_VISIBILITY_TIMEOUT must be at least 1 second (longer than any step)"
        )
    return CelerySettings("CTDATA_CELERY_BROKER", backend, timeout)


def _check_broker_url(name: str, required: bool) -> bool:
    """Whether the variable is set, refusing a value that is not a broker URL (naming its
    scheme only: the rest may hold a password)."""
    value = os.environ.get(name, "").strip()
    if not value:
        if required:
            raise SettingsError(
                f"{name} must be set when CTDATA_EXECUTOR=celery: the broker's URL, e.g. "
                "redis://127.0.0.1:6379/0"
            )
        return False
    scheme, separator, rest = value.partition("://")
    if not separator or not rest or scheme not in _BROKER_SCHEMES:
        shown = f"scheme {scheme!r}" if separator else "no scheme"
        raise SettingsError(
            f"{name} must be a broker URL such as redis://127.0.0.1:6379/0 (it has {shown}; "
            f"one of {', '.join(_BROKER_SCHEMES)} is needed)"
        )
    return True


def socrata_app_token() -> str | None:
    """The optional Socrata app token; read where it is used so it never sits in run config."""
    return os.environ.get("SOCRATA_APP_TOKEN") or None


class SettingsError(ValueError):
    """An environment variable that cannot be used; the message names it and its value."""


def _number_from_env(name: str, default: float, whole: bool = False) -> float:
    """A count or a number of seconds from the environment: not negative, and whole for a
    count."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
    except ValueError:
        number = -1
    if not number >= 0:  # also refuses NaN
        kind = "a whole number, 0 or more" if whole else "a number of seconds, 0 or more"
        raise SettingsError(f"{name}={value!r} must be {kind}")
    return number


def _time_of_day_from_env(name: str, default: time) -> time:
    """A time of day written HH:MM (24-hour clock)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value)
    hour, minute = (int(part) for part in match.groups()) if match else (-1, -1)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise SettingsError(
            f"{name}={value!r} must be a time of day HH:MM, 24-hour, New York time (e.g. 02:00)"
        )
    return time(hour, minute)


def _path_from_env(name: str, default: Path, cwd: Path) -> Path:
    value = os.environ.get(name)
    path = Path(value).expanduser() if value else default
    return path if path.is_absolute() else (cwd / path)


def _optional_path_from_env(name: str, cwd: Path) -> Path | None:
    """A file the pipeline reads only when the variable is set (blank counts as unset)."""
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (cwd / path)


LAKE_PREFIX = "ducklake:"
_LAKE_EXAMPLE = (
    "ducklake:postgres:dbname=lake host=127.0.0.1 user=ctdata, or ducklake:/srv/lake.ducklake"
)


def _lake_from_env(cwd: Path) -> Lake | None:
    """The DuckLake of CTDATA_WAREHOUSE (unset or blank: the DuckDB file at CTDATA_DB)."""
    value = os.environ.get("CTDATA_WAREHOUSE", "").strip()
    if not value:
        return None
    catalog = value.removeprefix(LAKE_PREFIX).strip()
    if not value.startswith(LAKE_PREFIX) or not catalog:
        # The value can hold a PostgreSQL password: only its kind is named.
        shown = value.split(":", 1)[0] + ":..." if ":" in value else repr(value)
        raise SettingsError(
            f"CTDATA_WAREHOUSE={shown} must be ducklake:<catalog> ({_LAKE_EXAMPLE}), or unset "
            "for the DuckDB file at CTDATA_DB"
        )
    data = os.environ.get("CTDATA_WAREHOUSE_DATA", "").strip()
    if not data:
        raise SettingsError(
            "CTDATA_WAREHOUSE_DATA is not set: a DuckLake (CTDATA_WAREHOUSE) needs the folder "
            "its data files are written to"
        )
    if not catalog.startswith("postgres:") and ":" not in catalog.split("/", 1)[0]:
        # A catalog file, resolved like every other path, so each step finds the same one.
        catalog = str(_resolved(catalog, cwd))
    return Lake(catalog=catalog, data_path=str(_resolved(data, cwd)))


def _resolved(value: str, cwd: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else cwd / path
