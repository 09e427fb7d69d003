"""report.pdf: the night's page printed by headless Chromium, for a meeting packet.

The page's print styles (report.css) paginate it and number every page in the margin; Chromium's
own header and footer (the file's path, the date) are turned off. The printed file is then made a
function of the page alone: Chromium stamps it with the clock and links the page's local files
(board.xlsx, the agency pages) by their absolute path in the scratch folder, so the dates become
the report's time and those links are dropped (a packet is read away from the folder; its links
to datasets on the portals stay)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

CHROMIUM_ENV = "CTDATA_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
PRINT_TIMEOUT_SECONDS = 120
STDERR_TAIL_CHARS = 300

log = logging.getLogger(__name__)


class PdfNotPrinted(Exception):
    """Why there is no report.pdf: one line, for the log, the page and the asset's metadata."""


def find_chromium() -> Path:
    """CTDATA_CHROMIUM when set, else the first Chromium or Chrome on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PdfNotPrinted(f"{CHROMIUM_ENV}={configured} is not an executable file")
        return path
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    raise PdfNotPrinted(
        f"no Chromium found ({', '.join(CHROMIUM_NAMES)} not on PATH; set {CHROMIUM_ENV})"
    )


def print_pdf(page: Path, target: Path, as_of: datetime) -> None:
    """Print `page` (a self-contained HTML file) to `target`, dated `as_of`; PdfNotPrinted
    when Chromium is missing, fails or takes longer than PRINT_TIMEOUT_SECONDS."""
    chromium = find_chromium()
    with tempfile.TemporaryDirectory(prefix="ctdata-chromium-") as profile:
        printed = Path(profile) / "printed.pdf"
        command = [
            str(chromium),
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            "--no-pdf-header-footer",
            # Its own profile: never the user's, never shared with a browser already running.
            f"--user-data-dir={profile}",
            f"--print-to-pdf={printed}",
            page.resolve().as_uri(),
        ]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to start as root with one
        _run(command, chromium)
        if not printed.is_file() or printed.read_bytes()[:5] != b"%PDF-":
            raise PdfNotPrinted(f"{chromium} exited cleanly but wrote no PDF")
        _normalize(printed, target, as_of)


def _run(command: list[str], chromium: Path) -> None:
    # Its own process group: on a timeout the whole browser (zygote, renderers) is ended.
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise PdfNotPrinted(f"{chromium} could not be started: {error}") from None
    with process:
        try:
            _, stderr = process.communicate(timeout=PRINT_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise PdfNotPrinted(
                f"{chromium} did not print within {PRINT_TIMEOUT_SECONDS} s (stopped)"
            ) from None
    if process.returncode != 0:
        raise PdfNotPrinted(f"{chromium} exited with {process.returncode}: {_last_error(stderr)}")


def _last_error(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    errors = [line for line in lines if line] or ["no message"]
    return errors[-1][-STDERR_TAIL_CHARS:]


def _normalize(printed: Path, target: Path, as_of: datetime) -> None:
    """The same page makes the same bytes: dates from the data, no scratch-folder paths, and
    the file's /ID derived from its content."""
    import pikepdf  # here, not with the module: only the report prints

    stamp = as_of.astimezone(UTC).strftime("D:%Y%m%d%H%M%S+00'00'")
    try:
        pdf = pikepdf.open(printed)
    except pikepdf.PdfError as error:
        raise PdfNotPrinted(f"Chromium wrote an unreadable PDF: {error}") from None
    with pdf:
        pdf.docinfo["/CreationDate"] = stamp
        pdf.docinfo["/ModDate"] = stamp
        for page in pdf.pages:
            annotations = page.obj.get("/Annots")
            if annotations is None:
                continue
            kept = []
            for annotation in annotations:
                if not _links_a_local_file(annotation):
                    kept.append(annotation)
                    continue
                # The tagged PDF's structure tree may still point at the annotation: it
                # loses its action (the scratch folder's path) as well as its place on the page.
                del annotation["/A"]
            if len(kept) != len(annotations):
                page.obj["/Annots"] = pikepdf.Array(kept)
        pdf.save(target, deterministic_id=True)


def _links_a_local_file(annotation: object) -> bool:
    action = annotation.get("/A") if hasattr(annotation, "get") else None
    uri = action.get("/URI") if action is not None else None
    return uri is not None and str(uri).startswith("file:")


def try_print_pdf(page: Path, target: Path, as_of: datetime) -> str | None:
    """print_pdf, for publishing: None when report.pdf was written, else why not (logged as
    one line); the report is published either way."""
    try:
        print_pdf(page, target, as_of)
    except PdfNotPrinted as problem:
        log.warning("report.pdf not written: %s", problem)
        return str(problem)
    return None
