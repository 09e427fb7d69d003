"""Staged harvests: the raw records of one portal for one night, on disk between the harvest
step (network, no database) and the catalog step (database, no network).

A staged harvest is complete only when its summary file exists: the records are written to a
`.partial` file of the writer's own and renamed, then the summary is written, so a harvest that
dies half-way leaves nothing that the catalog step would load. Two runs of the same night and
portal (a retry launched while the first still runs) take turns through a file lock, so the
catalog step never reads one run's summary with the other's records.

Each line of the records file is one asset, ready for DuckDB's `read_json`: its id, the night's
counters (Socrata's view and download counts, the only fields that move every night), the rest
of the record as the portal sent it (keys sorted), and a hash of that rest, so the catalog step
can tell an unchanged record without parsing it in Python."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from filelock import FileLock

from ctdata_pipeline.processes import remove_abandoned_partials

# The night's counters of a Socrata asset, kept apart from its (deduplicated) record.
COUNTER_COLUMNS = ("views_last_week", "views_last_month", "views_total", "downloads_total")
NO_COUNTERS: dict[str, int | None] = dict.fromkeys(COUNTER_COLUMNS)
# How long a run waits for another run of the same night and portal to finish with the files.
LOCK_WAIT_SECONDS = 1800


@dataclass(frozen=True)
class HarvestSummary:
    """What the harvest saw, kept with the snapshot."""

    portal: str
    kind: str
    snapshot_date: date
    snapshot_time: datetime  # UTC; ages are measured from it
    source_url: str
    assets: int
    result_set_size: int | None  # what the portal said it had (Socrata), if it said
    pages: int
    paging: str  # 'offset', 'scroll' or 'feed'
    duplicates_dropped: int
    seconds: float

    def to_json(self) -> str:
        payload = asdict(self)
        payload["snapshot_date"] = self.snapshot_date.isoformat()
        payload["snapshot_time"] = self.snapshot_time.isoformat()
        return json.dumps(payload, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HarvestSummary:
        payload = json.loads(text)
        payload["snapshot_date"] = date.fromisoformat(payload["snapshot_date"])
        payload["snapshot_time"] = datetime.fromisoformat(payload["snapshot_time"])
        return cls(**payload)


class StagedWriter:
    """Appends records to a partial file; `reset` starts over (a re-crawl), `commit` publishes."""

    def __init__(self, records_path: Path, summary_path: Path, lock: FileLock) -> None:
        self._records_path = records_path
        self._summary_path = summary_path
        self._lock = lock
        unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._partial_path = records_path.with_name(f"{records_path.name}.partial-{unique}")
        self._file: IO[bytes] | None = None
        self.count = 0

    def __enter__(self) -> StagedWriter:
        self._partial_path.parent.mkdir(parents=True, exist_ok=True)
        self.reset()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._partial_path.unlink(missing_ok=True)

    def reset(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = self._partial_path.open("wb")
        self.count = 0

    def write(
        self, asset_id: str, record: dict[str, Any], counters: dict[str, int | None] = NO_COUNTERS
    ) -> None:
        """Append one asset: `record` without its nightly `counters`."""
        assert self._file is not None, "use StagedWriter as a context manager"
        self._file.write(staged_line(asset_id, record, counters))
        self.count += 1

    def commit(self, summary: HarvestSummary) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        with self._lock:
            os.replace(self._partial_path, self._records_path)
            _write_atomically(self._summary_path, summary.to_json())


class StagingArea:
    """The folder of staged harvests, one file pair per (night, portal)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, portal: str, snapshot_date: date) -> tuple[Path, Path]:
        folder = self.root / snapshot_date.isoformat()
        return folder / f"{portal}.ndjson", folder / f"{portal}.summary.json"

    def records_path(self, portal: str, snapshot_date: date) -> Path:
        """The night's records file (one JSON object per line, see the module docstring)."""
        return self._paths(portal, snapshot_date)[0]

    def writer(self, portal: str, snapshot_date: date) -> StagedWriter:
        records_path, summary_path = self._paths(portal, snapshot_date)
        remove_abandoned_partials(records_path.parent, f"{records_path.name}.partial-*")
        return StagedWriter(records_path, summary_path, self.lock(portal, snapshot_date))

    def lock(self, portal: str, snapshot_date: date) -> FileLock:
        """Held while a night's staged files are published, or read and then discarded. One
        lock file per portal, kept: deleting a lock file lets two processes hold it at once."""
        self.root.mkdir(parents=True, exist_ok=True)
        return FileLock(self.root / f".{portal}.lock", timeout=LOCK_WAIT_SECONDS)

    def summary(self, portal: str, snapshot_date: date) -> HarvestSummary | None:
        records_path, summary_path = self._paths(portal, snapshot_date)
        if not (summary_path.exists() and records_path.exists()):
            return None
        return HarvestSummary.from_json(summary_path.read_text(encoding="utf-8"))

    def records(self, portal: str, snapshot_date: date) -> Iterator[tuple[str, dict[str, Any]]]:
        """(asset id, record without its counters), in harvest order."""
        with self.records_path(portal, snapshot_date).open("rb") as lines:
            for line in lines:
                staged = orjson.loads(line)
                yield staged["asset_id"], staged["record"]

    def discard(self, portal: str, snapshot_date: date) -> None:
        """Remove a night's staged files once they are safely in the database."""
        for path in self._paths(portal, snapshot_date):
            path.unlink(missing_ok=True)
        folder = self.root / snapshot_date.isoformat()
        if folder.exists() and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def staged_line(asset_id: str, record: dict[str, Any], counters: dict[str, int | None]) -> bytes:
    """One line of a records file: {"asset_id", "record_hash", the counters..., "record"}."""
    body = record_json(record)
    head = orjson.dumps({"asset_id": asset_id, "record_hash": record_hash(body), **counters})
    return head[:-1] + b',"record":' + body + b"}\n"


def record_json(record: dict[str, Any]) -> bytes:
    """A record as compact UTF-8 JSON with its keys sorted: portals reorder keys between nights
    (opendata.fcc.gov's data.json does), which must not make a new version. orjson, because
    this runs for every asset of every night; the standard library is the fallback for what
    orjson refuses (integers beyond 64 bits, text with lone surrogates)."""
    try:
        return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(record, separators=(",", ":"), sort_keys=True, allow_nan=False)
        return text.encode("ascii")


def record_hash(body: bytes) -> str:
    """Identifies a record's content: a night that sees the same bytes again reuses its version."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()
