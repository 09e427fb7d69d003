"""Past snapshots from archived catalog files (`ctdata import`): a saved Discovery API response
for a Socrata portal, a saved data.json for a DCAT portal. The file must be what the harvester
would have stored for that night, whole, or nothing is written."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from ctdata_pipeline.catalog.guard import IMPORT_OVERRIDE, SnapshotRefused
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.stage import stage_records
from ctdata_pipeline.catalog.write import SnapshotWritten, stored_summary, write_snapshot
from ctdata_pipeline.harvest.dcat import dcat_asset_id
from ctdata_pipeline.harvest.staging import HarvestSummary
from ctdata_pipeline.partitions import night_instant, today_in_new_york
from ctdata_pipeline.portals import DEFAULT_PORTALS_FILE, Portal

IMPORT_ORIGIN = "import"


class ImportRefused(Exception):
    """The archive cannot stand for the night; nothing was written."""


@dataclass(frozen=True)
class Archive:
    records: list[tuple[str, dict[str, Any]]]
    declared_size: int | None
    pages: int
    duplicates: int


def read_archive(portal: Portal, path: Path) -> Archive:
    """The records of an archived catalog file, checked against the portal it is for."""
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise ImportRefused(f"{path}: cannot be read ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportRefused(f"{path}: not valid JSON ({error})") from None
    if portal.kind == "socrata":
        return _socrata_archive(portal, path, document)
    return _dcat_archive(path, document)


def _socrata_archive(portal: Portal, path: Path, document: Any) -> Archive:
    pages = document if isinstance(document, list) else [document]
    if not pages or not all(
        isinstance(page, dict) and isinstance(page.get("results"), list) for page in pages
    ):
        hint = " (it looks like a data.json feed)" if _looks_like_dcat(document) else ""
        raise ImportRefused(
            f"{path}: not a Discovery API response (an object with a 'results' list, or a list "
            f"of them){hint}; {portal.name} is a socrata portal"
        )
    sizes = {page.get("resultSetSize") for page in pages}
    if len(sizes) != 1 or not isinstance(next(iter(sizes)), int):
        raise ImportRefused(f"{path}: the pages do not agree on one resultSetSize ({sizes})")
    declared = next(iter(sizes))
    records: dict[str, dict[str, Any]] = {}
    duplicates = 0
    domains: Counter[str] = Counter()
    for position, result in enumerate(r for page in pages for r in page["results"]):
        resource = result.get("resource") if isinstance(result, dict) else None
        asset_id = resource.get("id") if isinstance(resource, dict) else None
        if not isinstance(asset_id, str) or not asset_id.strip():
            raise ImportRefused(f"{path}: result {position} has no resource.id")
        domains[str((result.get("metadata") or {}).get("domain"))] += 1
        if asset_id in records:
            duplicates += 1
        records.setdefault(asset_id, result)
    allowed = {portal.socrata_domain, *portal.federated_domains}
    foreign = {domain: n for domain, n in domains.items() if domain not in allowed}
    if foreign:
        listed = ", ".join(f"{domain} ({n})" for domain, n in sorted(foreign.items()))
        raise ImportRefused(
            f"{path}: holds assets of {listed}, not of {portal.name}'s domain(s) "
            f"{', '.join(sorted(allowed))}"
        )
    if len(records) < declared:
        raise ImportRefused(
            f"{path}: holds {len(records)} of the {declared} assets its resultSetSize declares; "
            "an incomplete catalog cannot stand for the night"
        )
    return Archive(list(records.items()), declared, len(pages), duplicates)


def _dcat_archive(path: Path, document: Any) -> Archive:
    if not isinstance(document, dict) or not isinstance(document.get("dataset"), list):
        hint = (
            " (it looks like a Socrata Discovery API response)"
            if isinstance(document, dict) and "results" in document
            else ""
        )
        raise ImportRefused(f"{path}: not a DCAT-US catalog with a 'dataset' list{hint}")
    records: dict[str, dict[str, Any]] = {}
    duplicates = 0
    for position, dataset in enumerate(document["dataset"]):
        if not isinstance(dataset, dict):
            raise ImportRefused(f"{path}: dataset[{position}] is not an object")
        asset_id = dcat_asset_id(dataset)
        if asset_id in records:
            duplicates += 1
        records.setdefault(asset_id, dataset)
    return Archive(list(records.items()), None, 1, duplicates)


def check_importable_night(night: date, first_night: date, portal_file_path: Path) -> None:
    """Refuse a night that is not a partition: a future one, or one before the portal file's
    `first_night` (saying how to move it). Checked before the database is even opened."""
    today = today_in_new_york()
    if night > today:
        raise ImportRefused(f"{night} is in the future (today is {today} in New York)")
    if night < first_night:
        raise ImportRefused(
            f"{night} is before the first night ({first_night}); "
            f"{_how_to_move_first_night(night, portal_file_path)}"
        )


def _how_to_move_first_night(night: date, portal_file_path: Path) -> str:
    setting = f"first_night: {night.isoformat()} (or earlier)"
    if portal_file_path.resolve() == DEFAULT_PORTALS_FILE.resolve():
        # The shipped file is inside the installed package: a change there is lost on upgrade.
        return (
            f"to import it, set {setting} in a copy of {portal_file_path} "
            "and point CTDATA_PORTALS at the copy"
        )
    return f"to import it, set {setting} in {portal_file_path}"


def _looks_like_dcat(document: Any) -> bool:
    return isinstance(document, dict) and "dataset" in document


def import_archive(
    conn: duckdb.DuckDBPyConnection,
    portal: Portal,
    snapshot_date: date,
    path: Path,
    *,
    first_night: date,
    portal_file_path: Path,
    min_ratio: float,
    accept_shrink: bool = False,
) -> SnapshotWritten:
    """Store an archived catalog as the portal's snapshot of `snapshot_date` (at 02:00 New York,
    the nightly harvest's hour), with the same checks and shrink guard as a harvest: an import
    over an imported night is compared with that night too."""
    check_importable_night(snapshot_date, first_night, portal_file_path)
    archive = read_archive(portal, path)
    ensure_schema(conn)
    stored = stored_summary(conn, portal.name, snapshot_date)
    if stored is not None and stored[1] != IMPORT_ORIGIN:
        raise ImportRefused(
            f"{portal.name} already has a {stored[1]}ed snapshot for {snapshot_date}; an import "
            "never replaces a night the pipeline took itself"
        )
    summary = HarvestSummary(
        portal=portal.name,
        kind=portal.kind,
        snapshot_date=snapshot_date,
        snapshot_time=night_instant(snapshot_date),
        source_url=f"archive:{path.name}",
        assets=len(archive.records),
        result_set_size=archive.declared_size,
        pages=archive.pages,
        paging="archive",
        duplicates_dropped=archive.duplicates,
        seconds=0.0,
    )
    report = stage_records(conn, portal, archive.records)
    try:
        return write_snapshot(
            conn,
            portal,
            summary,
            report,
            origin=IMPORT_ORIGIN,
            min_ratio=min_ratio,
            accept_shrink=accept_shrink,
            override=IMPORT_OVERRIDE,
        )
    except SnapshotRefused as refusal:
        raise ImportRefused(str(refusal)) from None
