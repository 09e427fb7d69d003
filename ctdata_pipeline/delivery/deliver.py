"""One run's digests delivered: each sent through the SMTP server (or, in a dry run, written to
the outbox as an .eml file) to the addresses it has not gone to yet, each send recorded in
delivery.sends the moment the server accepted it, and whatever could not go kept as a Problem
while the others still go.

The warehouse is opened only for a moment: once read-only before the first message (what went
already), then for writing right after each message went. Nothing holds the DuckDB file while
the SMTP server is being talked to, so a slow server never blocks the night."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb

from ctdata_pipeline.delivery.model import BOARD_AUDIENCE, Digest, Problem
from ctdata_pipeline.delivery.outbox import write_eml
from ctdata_pipeline.delivery.recipients import address_problem
from ctdata_pipeline.delivery.records import SendRecord, already_sent, record_sent
from ctdata_pipeline.delivery.smtp import DeliveryError, SmtpSender, SmtpSettings, addressed
from ctdata_pipeline.report.agencies import agency_slugs
from ctdata_pipeline.warehouse import DuckDBWarehouse

BOARD_SLUG = "board"
# The From of a dry run's messages when CTDATA_MAIL_FROM is not set: nothing is sent.
DRY_RUN_FROM = "CT open data digests <digests@localhost>"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivered:
    """A digest that went: to whom (the addresses the server accepted) and as which message."""

    audience: str
    addresses: tuple[str, ...]
    message_id: str


@dataclass
class DeliveryReport:
    """What became of one run's digests."""

    sent: dict[str, Delivered] = field(default_factory=dict)  # audience -> what went
    # audience -> the addresses skipped because the digest went to them before
    already_sent: dict[str, tuple[str, ...]] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)  # a dry run's .eml files
    problems: list[Problem] = field(default_factory=list)

    @property
    def sent_count(self) -> int:
        """Addresses the digests went to in this run."""
        return sum(len(delivered.addresses) for delivered in self.sent.values())

    @property
    def already_sent_count(self) -> int:
        return sum(len(addresses) for addresses in self.already_sent.values())


def outbox_path(outbox_dir: Path, digest: Digest, slug: str) -> Path:
    """Where a dry run writes a digest: <outbox>/<kind>/<period key>/<audience slug>.eml."""
    return outbox_dir / digest.kind / digest.period.key / f"{slug}.eml"


def audience_slugs(digests: Sequence[Digest]) -> dict[str, str]:
    """audience -> its .eml file's stem: "board" for the Board, an agency's as its report page's
    (report.agencies.agency_slugs: a file name, never a path, unique among the agencies)."""
    agencies = agency_slugs([digest.audience for digest in digests if digest.kind == "agency"])
    return {
        digest.audience: BOARD_SLUG if digest.kind == "board" else agencies[digest.audience]
        for digest in digests
    }


def deliver(
    digests: Sequence[Digest],
    problems: Sequence[Problem],
    *,
    warehouse: DuckDBWarehouse,
    smtp: SmtpSettings | None,
    dry_run: bool,
    outbox_dir: Path,
    mail_from: str | None = None,
    log: logging.Logger | None = None,
) -> DeliveryReport:
    """Send (or, `dry_run`, write to `outbox_dir`) every digest to its addresses that it has not
    gone to yet. `problems` (from composing: an unknown agency) are carried into the report;
    a malformed address, an address the server refuses, a message that cannot go are added to
    them, and the other messages still go. A real send needs `smtp`."""
    log = log or _log
    report = DeliveryReport(problems=list(problems))
    if not dry_run and smtp is None:
        raise ValueError("a real send needs the SMTP settings (CTDATA_SMTP_HOST)")
    sender_from = smtp.mail_from if smtp is not None else (mail_from or DRY_RUN_FROM)
    before = _sent_before(warehouse, digests)
    slugs = audience_slugs(digests)
    sender = SmtpSender(smtp) if smtp is not None and not dry_run else None
    try:
        for digest in digests:
            to = _addresses_to_send(digest, before[_key(digest)], report)
            if not to:
                continue
            if sender is None:
                message = addressed(digest, sender_from, to)
                path = write_eml(message, outbox_path(outbox_dir, digest, slugs[digest.audience]))
                report.written.append(path)
                log.info(f"{digest.audience}: dry run, written to {path} (not sent, not recorded)")
                continue
            if not _send(sender, digest, to, warehouse, report, log):
                # The sends can no longer be recorded: what went next could be sent again by
                # the next run, so nothing more goes in this one.
                for rest in digests[digests.index(digest) + 1 :]:
                    report.problems.append(
                        Problem(rest.audience, "not sent: the sends could not be recorded")
                    )
                break
    finally:
        if sender is not None:
            sender.close()
    return report


def _key(digest: Digest) -> tuple[str, str, str]:
    return (digest.kind, digest.period.key, digest.audience)


def _sent_before(
    warehouse: DuckDBWarehouse, digests: Sequence[Digest]
) -> dict[tuple[str, str, str], set[str]]:
    """For each digest, the addresses it already went to, read in one read-only connection."""
    before: dict[tuple[str, str, str], set[str]] = {_key(digest): set() for digest in digests}
    if not digests or not warehouse.exists():
        return before
    with warehouse.get_connection(read_only=True) as conn:
        for digest in digests:
            before[_key(digest)] = already_sent(
                conn, digest.kind, digest.period.key, digest.audience
            )
    return before


def _addresses_to_send(
    digest: Digest, sent_before: set[str], report: DeliveryReport
) -> tuple[str, ...]:
    """The digest's addresses, each once, without those it went to before and those that are
    not e-mail addresses (each a Problem)."""
    to: list[str] = []
    skipped: list[str] = []
    for address in dict.fromkeys(address.strip() for address in digest.to):
        if address in sent_before:
            skipped.append(address)
        elif (problem := address_problem(address)) is not None:
            report.problems.append(Problem(digest.audience, problem))
        else:
            to.append(address)
    if skipped:
        report.already_sent[digest.audience] = tuple(skipped)
    return tuple(to)


def _send(
    sender: SmtpSender,
    digest: Digest,
    to: tuple[str, ...],
    warehouse: DuckDBWarehouse,
    report: DeliveryReport,
    log: logging.Logger,
) -> bool:
    """Send one digest and record whom it went to; False when the record could not be written."""
    try:
        sent = sender.send(digest, to)
    except DeliveryError as error:
        report.problems.append(Problem(digest.audience, f"not sent: {error}"))
        return True
    for address, said in sent.refused.items():
        report.problems.append(
            Problem(
                digest.audience,
                f"{address} refused by the SMTP server {sender.settings.server}: {said}",
            )
        )
    if not sent.accepted:
        return True
    at = datetime.now(UTC)
    rows = [
        SendRecord(digest.kind, digest.period.start, digest.audience, address, sent.message_id, at)
        for address in sent.accepted
    ]
    try:
        with warehouse.get_connection() as conn:
            record_sent(conn, rows)
    except (dg.Failure, duckdb.Error) as error:
        why = error.description if isinstance(error, dg.Failure) else str(error)
        report.problems.append(
            Problem(
                digest.audience,
                f"sent as {sent.message_id} to {', '.join(sent.accepted)}, but not recorded "
                f"({why}); a re-run of the period would send it to them again",
            )
        )
        return False
    report.sent[digest.audience] = Delivered(digest.audience, sent.accepted, sent.message_id)
    who = "the Board" if digest.audience == BOARD_AUDIENCE else digest.audience
    log.info(
        f"{who}: {digest.kind} digest for {digest.period.words} sent as {sent.message_id} to "
        f"{len(sent.accepted)} address(es)"
    )
    return True
