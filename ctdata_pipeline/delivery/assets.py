"""The digest assets: board_digest (the Board's, monthly by default) and agency_digests (each
data officer's, weekly by default), one partition per period (its first day), sent after the
period's last reported night and recorded in delivery.sends so a period goes once to each
address. Who receives them is the recipients file (CTDATA_RECIPIENTS); the SMTP server is read
from the environment in the step (smtp.SmtpSettings.from_env), never from config."""

import os
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from ctdata_pipeline.board.after_night import nothing_stored_failure
from ctdata_pipeline.delivery.compose import compose_agency_digests, compose_board_digest
from ctdata_pipeline.delivery.deliver import DeliveryReport, deliver
from ctdata_pipeline.delivery.model import (
    AGENCY_DIGESTS,
    BOARD_DIGEST,
    Cadence,
    Digest,
    DigestKind,
    Period,
    Problem,
)
from ctdata_pipeline.delivery.recipients import (
    DigestSchedule,
    RecipientsError,
    RecipientsFile,
    load_recipients,
)
from ctdata_pipeline.delivery.smtp import SmtpSettings
from ctdata_pipeline.metadata import table_preview
from ctdata_pipeline.partitions import NEW_YORK
from ctdata_pipeline.report.assets import REPORT, ReportFolder
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.settings import SettingsError
from ctdata_pipeline.warehouse import DuckDBWarehouse

DELIVERY_GROUP = "delivery"
RECIPIENTS_VARIABLE = "CTDATA_RECIPIENTS"


class DigestConfig(dg.Config):
    """A digest run's one option."""

    dry_run: bool = Field(
        default=False,
        description=(
            "Write the digests as .eml files to the outbox (CTDATA_OUTBOX_DIR) instead of "
            "sending them; nothing is recorded, so a later real send still happens."
        ),
    )


class DeliverySettings(dg.ConfigurableResource):
    """Who receives the digests (CTDATA_RECIPIENTS) and where a dry run writes them
    (CTDATA_OUTBOX_DIR). The SMTP settings are not here: the password never enters config."""

    recipients_file: str = Field(
        default="", description="The recipients file (CTDATA_RECIPIENTS); empty when unset."
    )
    outbox_dir: str = Field(description="Where dry runs write .eml files (CTDATA_OUTBOX_DIR).")

    def recipients(self) -> RecipientsFile:
        """The recipients file, or one dg.Failure naming CTDATA_RECIPIENTS and the problem."""
        if not self.recipients_file:
            raise dg.Failure(
                description=(
                    f"{RECIPIENTS_VARIABLE} is not set: no recipients file says who receives "
                    "the digests (README: Recipients and SMTP)"
                ),
                allow_retries=False,
            )
        try:
            return load_recipients(Path(self.recipients_file))
        except RecipientsError as error:
            raise dg.Failure(
                description=f"{RECIPIENTS_VARIABLE}: {error}", allow_retries=False
            ) from None

    def outbox(self) -> Path:
        return Path(self.outbox_dir)


def digest_schedule(recipients_file: Path | None) -> DigestSchedule:
    """How often each digest goes, as the recipients file says (the partitions and schedules
    are built from it); the defaults (Board monthly, agencies weekly) when there is no file or
    it cannot be read: the digest's run then fails saying why."""
    if recipients_file is None:
        return DigestSchedule()
    try:
        return load_recipients(recipients_file).schedule
    except RecipientsError:
        return DigestSchedule()


def digest_partitions(cadence: Cadence, first_night: date) -> dg.TimeWindowPartitionsDefinition:
    """Calendar months, or weeks Monday to Sunday, New York time, from the period of the portal
    file's first night. `end_offset=1`: the current period is a partition too, so a digest of
    the period so far can be sent (the demo's)."""
    start = Period.containing(cadence, first_night).key
    if cadence == "monthly":
        return dg.MonthlyPartitionsDefinition(start_date=start, timezone=NEW_YORK.key, end_offset=1)
    return dg.WeeklyPartitionsDefinition(
        start_date=start, day_offset=1, timezone=NEW_YORK.key, end_offset=1
    )


BOARD_DIGEST_DESCRIPTION = """The DATA Board's digest of the period (a month by default, sent on
its first Monday at 08:00 New York for the month before), e-mailed to the Board's addresses of
the recipients file: each portal's headline figures against their targets in words and their
movement over the period, the agencies with the most to fix, the period's last report attached
(report.pdf, board.xlsx) and linked. Sent once per address and period (delivery.sends); with
`dry_run` written to `CTDATA_OUTBOX_DIR/board/<period>/board.eml` instead."""
AGENCY_DIGESTS_DESCRIPTION = """Each agency's digest of the period (a week, Monday to Sunday, by
default, sent on Monday at 08:00 New York for the week before), e-mailed to its data officers of
the recipients file (matched through the agency aliases): its figures on each portal and its
work lists, dataset by dataset with links, its CSV attached. An agency with nothing to fix hears
nothing unless it asked (`send_when_clean`). Sent once per address and period
(delivery.sends); with `dry_run` written to `CTDATA_OUTBOX_DIR/agency/<period>/<agency>.eml`
instead."""


def build_delivery_assets(schedule: DigestSchedule, first_night: date) -> list[dg.AssetsDefinition]:
    """board_digest and agency_digests, partitioned by the recipients file's periods."""
    return [
        _digest_asset(BOARD_DIGEST, "board", schedule.board, first_night, BOARD_DIGEST_DESCRIPTION),
        _digest_asset(
            AGENCY_DIGESTS, "agency", schedule.agencies, first_night, AGENCY_DIGESTS_DESCRIPTION
        ),
    ]


def _digest_asset(
    name: str, kind: DigestKind, cadence: Cadence, first_night: date, description: str
) -> dg.AssetsDefinition:
    @dg.asset(
        name=name,
        description=description,
        group_name=DELIVERY_GROUP,
        partitions_def=digest_partitions(cadence, first_night),
        deps=[REPORT],
        kinds={"email"},
    )
    def digest_asset(
        context: dg.AssetExecutionContext,
        config: DigestConfig,
        warehouse: DuckDBWarehouse,
        reports: ReportFolder,
        portals: PortalList,
        delivery: DeliverySettings,
    ) -> dg.MaterializeResult:
        # Compose the period's digests (read-only, the file closed after), deliver them, then
        # fail naming every one that did not go, once the others went.
        recipients = delivery.recipients()
        smtp = None if config.dry_run else _smtp_settings()
        period = Period.from_key(cadence, context.partition_key)
        if not warehouse.exists():
            raise nothing_stored_failure(warehouse.location)
        digests, problems = _compose(kind, period, warehouse, reports, portals, recipients)
        if not digests:
            context.log.info(f"{period.words}: no {kind} digest to send")
        report = deliver(
            digests,
            problems,
            warehouse=warehouse,
            smtp=smtp,
            dry_run=config.dry_run,
            outbox_dir=delivery.outbox(),
            mail_from=os.environ.get("CTDATA_MAIL_FROM") or None,
            log=context.log,
        )
        for problem in report.problems:
            context.log.error(str(problem))
        metadata = _metadata(period, digests, report, config.dry_run)
        if report.problems:
            went = "written" if config.dry_run else "sent"
            raise dg.Failure(
                description=(
                    f"{len(report.problems)} problem(s) with the {kind} digests of {period.words} "
                    f"(the others were {went}):\n" + "\n".join(str(p) for p in report.problems)
                ),
                metadata=metadata,
                allow_retries=False,
            )
        return dg.MaterializeResult(metadata=metadata)

    return digest_asset


def _compose(
    kind: DigestKind,
    period: Period,
    warehouse: DuckDBWarehouse,
    reports: ReportFolder,
    portals: PortalList,
    recipients: RecipientsFile,
) -> tuple[list[Digest], list[Problem]]:
    report_dir = reports.path()
    if not report_dir.is_dir():
        return [], []
    with warehouse.get_connection(read_only=True) as conn:
        if kind == "board":
            digest = compose_board_digest(
                conn, period, portals.portal_file(), report_dir, recipients
            )
            return ([digest] if digest is not None else []), []
        digests, problems = compose_agency_digests(
            conn, period, portals.portal_file(), report_dir, recipients
        )
        return list(digests), list(problems)


def _smtp_settings() -> SmtpSettings:
    """The SMTP server from the environment, or one dg.Failure saying what to set."""
    try:
        smtp = SmtpSettings.from_env()
    except SettingsError as error:
        raise dg.Failure(description=str(error), allow_retries=False) from None
    if smtp is None:
        raise dg.Failure(
            description=(
                "no SMTP server to send through: set CTDATA_SMTP_HOST (and CTDATA_MAIL_FROM), "
                "or run with dry_run: true to write the digests to the outbox"
            ),
            allow_retries=False,
        )
    return smtp


def _metadata(
    period: Period, digests: list[Digest], report: DeliveryReport, dry_run: bool
) -> dict[str, dg.MetadataValue]:
    nights = sorted({digest.night for digest in digests})
    metadata: dict[str, dg.MetadataValue] = {
        "period": dg.MetadataValue.text(f"{period.start} to {period.end}"),
        "night": dg.MetadataValue.text(
            ", ".join(str(night) for night in nights) or "none reported in the period"
        ),
        "digests": dg.MetadataValue.int(len(digests)),
        "dry_run": dg.MetadataValue.bool(dry_run),
        "sent": dg.MetadataValue.int(report.sent_count),
        "already_sent": dg.MetadataValue.int(report.already_sent_count),
        "failed": dg.MetadataValue.int(len(report.problems)),
    }
    if report.sent:
        metadata["sent_to"] = table_preview(
            [
                {
                    "audience": sent.audience,
                    "addresses": ", ".join(sent.addresses),
                    "message_id": sent.message_id,
                }
                for sent in report.sent.values()
            ],
            ["audience", "addresses", "message_id"],
        )
    if report.problems:
        # Text, not markdown: agency names are portal data.
        metadata["failed_lines"] = dg.MetadataValue.text("\n".join(map(str, report.problems)))
    if report.written:
        metadata["eml_files"] = dg.MetadataValue.json([str(p.resolve()) for p in report.written])
    return metadata
