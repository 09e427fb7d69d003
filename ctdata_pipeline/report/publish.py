"""Write one night's report folder (CSV per board table, a workbook, the HTML page and its
printed PDF), atomically, then refresh `latest/` and the index of every night."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
from filelock import FileLock

from ctdata_pipeline.portals import PortalFile
from ctdata_pipeline.processes import remove_abandoned_partials
from ctdata_pipeline.report.agencies import (
    agency_links,
    unreconciled_variants,
    write_agency_pages,
)
from ctdata_pipeline.report.data import (
    BOARD_TABLES,
    NightReport,
    board_table,
    load_night,
    report_tables,
)
from ctdata_pipeline.report.exports import write_csv, write_workbook
from ctdata_pipeline.report.html import render_index, render_report
from ctdata_pipeline.report.observatory import portal_links, write_observatory
from ctdata_pipeline.report.pdf import try_print_pdf

REPORT_FILE = "report.html"
WORKBOOK_FILE = "board.xlsx"
PDF_FILE = "report.pdf"  # printed from the page where Chromium is installed
AGENCY_INDEX = "agencies/index.html"
LATEST = "latest"
NIGHT_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
LOCK_WAIT_SECONDS = 600


@dataclass(frozen=True)
class ReportWritten:
    folder: Path
    report: Path
    files: dict[str, int]  # file name -> bytes
    rows: dict[str, int]  # board table -> rows written
    latest: bool
    shown: NightReport  # what the page shows: each portal's values
    agency_pages: int  # pages in agencies/, one per agency of the night
    pdf_missing: str | None  # why there is no report.pdf, when there is none


def publish_report(
    conn: duckdb.DuckDBPyConnection,
    report_dir: Path,
    night: date,
    portal_file: PortalFile,
    *,
    why_absent: Callable[[str], str] | None = None,
) -> ReportWritten:
    """Build the night's report in a scratch folder and swap it in whole: a failure half-way
    leaves the previous report of the night (and every other night) as it was. `why_absent`
    says why a portal has no snapshot of the night (see report.absence)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    # Two runs writing reports at once (two `ctdata nightly`) take turns swapping folders in.
    with FileLock(report_dir / ".publish.lock", timeout=LOCK_WAIT_SECONDS):
        return _publish(conn, report_dir, night, portal_file, why_absent)


def _publish(
    conn: duckdb.DuckDBPyConnection,
    report_dir: Path,
    night: date,
    portal_file: PortalFile,
    why_absent: Callable[[str], str] | None,
) -> ReportWritten:
    remove_abandoned_partials(report_dir, ".*.partial-*")
    scratch = report_dir / f".{night}.partial-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        night_report = load_night(conn, night, portal_file, why_absent=why_absent)
        # The Board's files hold the Board's portals: the peers are in the observatory (and
        # in the warehouse and the readers' copy, every row).
        own = [portal.name for portal in night_report.portals]
        tables = [(table, *board_table(conn, table, night, own)) for table in report_tables(conn)]
        for table, columns, _, rows in tables:
            write_csv(scratch / f"{table}.csv", columns, rows)
        write_workbook(scratch / WORKBOOK_FILE, tables, night_report)
        variants = unreconciled_variants(conn, night_report, portal_file)
        agencies = write_agency_pages(scratch, conn, night_report, variant_groups=variants)
        links = agency_links(agencies)
        observed = write_observatory(scratch, night_report)
        portal_pages = portal_links(night_report) if observed else {}
        # The page links the files its folder holds, and the PDF printed from it next.
        files = [*_files_in(scratch), PDF_FILE]
        page = scratch / REPORT_FILE
        page.write_text(render_report(night_report, files, links, portal_pages), encoding="utf-8")
        # Printed from the scratch folder, so it is swapped in with the rest. Without it the
        # report is still published, and its page says why there is no PDF.
        night_report.pdf_missing = try_print_pdf(page, scratch / PDF_FILE, night_report.as_of)
        if night_report.pdf_missing is not None:
            files.remove(PDF_FILE)
            page.write_text(
                render_report(night_report, files, links, portal_pages), encoding="utf-8"
            )
        folder = report_dir / night.isoformat()
        _swap_in(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    nights = reported_nights(report_dir)
    is_latest = nights[0] == night
    if is_latest:
        latest = report_dir / f".{LATEST}.partial-{os.getpid()}"
        shutil.rmtree(latest, ignore_errors=True)
        shutil.copytree(folder, latest)
        _swap_in(latest, report_dir / LATEST)
    _write_atomically(
        report_dir / "index.html",
        render_index(
            nights,
            # Every night's folder holds these (the probe tables only from their first night).
            BOARD_TABLES,
            portal_file.report,
            with_pdf={n for n in nights if (report_dir / n.isoformat() / PDF_FILE).is_file()},
        ),
    )
    return ReportWritten(
        folder=folder,
        report=folder / REPORT_FILE,
        files={p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()},
        rows={table: len(rows) for table, _, _, rows in tables},
        latest=is_latest,
        shown=night_report,
        agency_pages=len(agencies),
        pdf_missing=night_report.pdf_missing,
    )


def reported_nights(report_dir: Path) -> list[date]:
    """Every night whose folder holds a report, newest first."""
    return sorted(
        (
            date.fromisoformat(p.name)
            for p in report_dir.iterdir()
            if NIGHT_FOLDER.match(p.name) and (p / REPORT_FILE).is_file()
        ),
        reverse=True,
    )


def _files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _swap_in(new: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
