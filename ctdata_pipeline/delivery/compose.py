"""The digests' contents: the Board's (headlines with their targets in words, the period's
movement, the report PDF and workbook attached, links to the published report) and each
agency's (its figures and work lists, dataset by dataset, its CSV attached)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ctdata_pipeline.delivery.model import Digest, Period, Problem
from ctdata_pipeline.delivery.recipients import RecipientsFile
from ctdata_pipeline.portals import PortalFile


def compose_board_digest(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    portal_file: PortalFile,
    report_dir: Path,
    recipients: RecipientsFile,
) -> Digest | None:
    """The Board's digest for `period` from the last night reported in it; None when no night
    of the period has a report."""
    raise NotImplementedError


def compose_agency_digests(
    conn: duckdb.DuckDBPyConnection,
    period: Period,
    portal_file: PortalFile,
    report_dir: Path,
    recipients: RecipientsFile,
) -> tuple[list[Digest], list[Problem]]:
    """One digest per agency of the recipients file with something to fix in the period's last
    reported night (or send_when_clean); a Problem for each entry that matches no agency."""
    raise NotImplementedError
