"""The digests delivered by real Dagster runs through the instance (delivery/assets.py,
deliver.py, records.py, `ctdata digests`): to a real SMTP server on loopback (aiosmtpd), each
address once per period even when the period is run again, one refused address and bad entries
reported while the other messages go, a dry run's .eml files, the password nowhere, and the
Monday schedules asking for the period before."""

from __future__ import annotations

import email
from dataclasses import dataclass, replace
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._serdes import serialize_value  # to read the event log as it is stored

from ctdata_pipeline.cli import DigestResult, run_digests
from ctdata_pipeline.code_location import build_definitions
from ctdata_pipeline.delivery.deliver import DRY_RUN_FROM
from ctdata_pipeline.delivery.model import AGENCY_DIGESTS, BOARD_AUDIENCE, BOARD_DIGEST, Period
from ctdata_pipeline.harvest.resources import LivePortalClient
from ctdata_pipeline.jobs import AGENCY_DIGEST_SCHEDULE, BOARD_DIGEST_SCHEDULE
from ctdata_pipeline.partitions import NEW_YORK
from ctdata_pipeline.resources import PortalFileResource
from ctdata_pipeline.settings import Settings
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.smtp_servers import PASSWORD, USER, Recorder, Servers, authenticator
from ctdata_pipeline_tests.support import History, run_ctdata, settings_for, write_portal_file

BOARD = ["chair@example.org", "secretary@example.org"]
SENDER = "CT open data <digests@opendata.example.gov>"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Delivery:
    """The real definitions over a stored, reported night, with a recipients file."""

    history: History
    settings: Settings
    defs: dg.Definitions
    agencies: list[str]  # two agencies of the night with something to fix

    def run(
        self, instance: dg.DagsterInstance, *kinds: str, dry_run: bool = False
    ) -> list[DigestResult]:
        return run_digests(
            self.defs,
            self.settings,
            kinds or ("board", "agency"),  # type: ignore[arg-type]
            self.history.last_night,
            instance,
            "ERROR",
            dry_run,
        )

    def sends(self) -> list[tuple[Any, ...]]:
        if not self.history.db_path.exists():
            return []
        with connect(self.history.db_path, read_only=True) as conn:
            exists = conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'delivery'"
            ).fetchone()
            if not exists or not exists[0]:
                return []
            return conn.execute(
                "SELECT kind, period, audience, address, message_id FROM delivery.sends "
                "ORDER BY kind, audience, address"
            ).fetchall()

    @property
    def outbox(self) -> Path:
        return self.settings.outbox_dir

    @property
    def env(self) -> dict[str, str]:
        """The environment `ctdata` needs to find all of it."""
        return {
            "CTDATA_DB": str(self.settings.db_path),
            "CTDATA_REPORT_DIR": str(self.settings.report_dir),
            "CTDATA_PORTALS": str(self.settings.portals_file),
            "CTDATA_RECIPIENTS": str(self.settings.recipients_file),
            "CTDATA_OUTBOX_DIR": str(self.settings.outbox_dir),
        }


def agencies_to_fix(history: History) -> list[str]:
    """The agencies with datasets on ct's work lists of the night, straight from the tables."""
    with connect(history.db_path, read_only=True) as conn:
        rows = conn.execute(
            """
            SELECT DISTINCT agency FROM (
                SELECT agency FROM board.missing_metadata WHERE portal = 'ct' AND snapshot_date = $n
                UNION ALL
                SELECT agency FROM board.stale_datasets WHERE portal = 'ct' AND snapshot_date = $n
            ) WHERE agency IS NOT NULL ORDER BY agency
            """,
            {"n": history.last_night},
        ).fetchall()
    return [agency for (agency,) in rows]


def delivery_for(history: History, recipients: dict[str, Any] | None = None) -> Delivery:
    agencies = agencies_to_fix(history)[:2]
    assert len(agencies) == 2
    document = recipients or {
        "board": BOARD,
        "agencies": {
            agencies[0]: ["officer-a@example.org"],
            agencies[1]: ["officer-b@example.org"],
        },
        "report_url": "https://reports.example.gov/ctdata/",
    }
    folder = history.folder / "delivery"
    folder.mkdir(exist_ok=True)
    recipients_file = folder / "recipients.yaml"
    recipients_file.write_text(yaml.safe_dump(document), encoding="utf-8")
    entries = [
        {"name": "ct", "kind": "socrata", "url": "http://127.0.0.1:9", "domain": "data.ct.gov"},
        {"name": "hub", "kind": "dcat", "url": "http://127.0.0.1:9/data.json"},
    ]
    portals_file = write_portal_file(folder, entries, targets={"MD-1": {"below": 20}})
    settings = replace(
        settings_for(history.folder, portals_file),
        recipients_file=recipients_file,
        outbox_dir=history.folder / "outbox",
    )
    defs = build_definitions(
        settings, PortalFileResource(path=str(portals_file)), LivePortalClient()
    )
    return Delivery(history, settings, defs, agencies)


@pytest.fixture
def smtp_server(smtp_servers: Servers, monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, int]:
    """A loopback SMTP server, and the environment naming it."""
    handler = Recorder()
    port = smtp_servers(handler)
    for name, value in {
        "CTDATA_SMTP_HOST": "127.0.0.1",
        "CTDATA_SMTP_PORT": str(port),
        "CTDATA_SMTP_SECURITY": "none",
        "CTDATA_SMTP_TIMEOUT": "5",
        "CTDATA_MAIL_FROM": SENDER,
    }.items():
        monkeypatch.setenv(name, value)
    return handler, port


def by_recipients(handler: Recorder) -> dict[tuple[str, ...], EmailMessage]:
    return {tuple(received["rcpt_tos"]): received["message"] for received in handler.received}


def attachment_types(message: EmailMessage) -> dict[str, str]:
    return {part.get_filename(): part.get_content_type() for part in message.iter_attachments()}


def materialized(instance: dg.DagsterInstance, asset: str, key: str) -> dict[str, Any]:
    """The metadata of the asset partition's latest materialization."""
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
    ).records
    materialization = record.asset_materialization
    assert materialization is not None
    return {name: value.value for name, value in materialization.metadata.items()}


def test_the_digests_reach_their_recipients_once_per_period(history, instance, smtp_server):
    handler, _ = smtp_server
    delivery = delivery_for(history)
    month = Period.containing("monthly", history.last_night)
    week = Period.containing("weekly", history.last_night)

    results = delivery.run(instance)
    assert [(r.kind, r.period, r.success) for r in results] == [
        ("board", month, True),
        ("agency", week, True),
    ], [r.reason for r in results]

    received = by_recipients(handler)
    assert set(received) == {tuple(BOARD), ("officer-a@example.org",), ("officer-b@example.org",)}
    board = received[tuple(BOARD)]
    assert board["From"] == SENDER
    assert board["Subject"].startswith(f"Connecticut's open data portals, {month.words}:")
    files = attachment_types(board)
    assert files["board.xlsx"] == XLSX
    assert set(files) <= {"report.pdf", "board.xlsx"}
    text = board.get_body(("plain",))
    assert text is not None
    assert f"https://reports.example.gov/ctdata/{history.last_night}/report.html" in (
        text.get_content()
    )
    for agency, address in zip(delivery.agencies, ("officer-a", "officer-b"), strict=True):
        message = received[(f"{address}@example.org",)]
        assert message["Subject"].startswith(f"{agency}, {week.words.removeprefix('the ')}:")
        [(csv_name, csv_type)] = attachment_types(message).items()
        assert csv_name.endswith(".csv") and csv_type == "text/csv"

    # Every address recorded with the Message-ID it went in.
    ids = {addresses: message["Message-ID"] for addresses, message in received.items()}
    assert delivery.sends() == [
        (
            "agency",
            week.start,
            delivery.agencies[0],
            "officer-a@example.org",
            ids[("officer-a@example.org",)],
        ),
        (
            "agency",
            week.start,
            delivery.agencies[1],
            "officer-b@example.org",
            ids[("officer-b@example.org",)],
        ),
        ("board", month.start, BOARD_AUDIENCE, BOARD[0], ids[tuple(BOARD)]),
        ("board", month.start, BOARD_AUDIENCE, BOARD[1], ids[tuple(BOARD)]),
    ]
    board_metadata = materialized(instance, BOARD_DIGEST, month.key)
    assert (board_metadata["sent"], board_metadata["already_sent"]) == (2, 0)
    assert board_metadata["night"] == str(history.last_night)

    # The period again (a retried run, a schedule tick run twice): nothing goes twice.
    recorded = delivery.sends()
    again = delivery.run(instance)
    assert all(result.success for result in again)
    assert len(handler.received) == 3
    assert delivery.sends() == recorded
    assert materialized(instance, BOARD_DIGEST, month.key)["already_sent"] == 2
    agency_metadata = materialized(instance, AGENCY_DIGESTS, week.key)
    assert (agency_metadata["sent"], agency_metadata["already_sent"]) == (0, 2)


def test_a_refused_address_and_bad_entries_do_not_stop_the_others(history, instance, smtp_server):
    handler, port = smtp_server
    handler.refuse = {"secretary@example.org"}
    agencies = agencies_to_fix(history)[:2]
    delivery = delivery_for(
        history,
        {
            "board": BOARD,
            "agencies": {
                agencies[0]: ["officer-a@example.org", "not-an-address@"],
                agencies[1]: ["officer-b@example.org"],
                "Department of Nowhere": ["nobody@example.org"],
            },
        },
    )
    board, agency = delivery.run(instance)

    assert not board.success
    assert f"secretary@example.org refused by the SMTP server 127.0.0.1:{port}" in board.reason
    assert "(the others were sent)" in board.reason
    assert not agency.success
    assert "Department of Nowhere" in agency.reason
    assert "'not-an-address@' is not an e-mail address" in agency.reason
    # The others went, and only they are recorded.
    received = by_recipients(handler)
    assert set(received) == {
        ("chair@example.org",),
        ("officer-a@example.org",),
        ("officer-b@example.org",),
    }
    assert [row[3] for row in delivery.sends()] == [
        "officer-a@example.org",
        "officer-b@example.org",
        "chair@example.org",
    ]

    # Once the server takes the address, the period run again reaches only the one it missed.
    handler.refuse = set()
    [board_again] = delivery.run(instance, "board")
    assert board_again.success, board_again.reason
    assert handler.received[-1]["rcpt_tos"] == ["secretary@example.org"]
    assert len(handler.received) == 4


def test_a_dry_run_writes_eml_files_a_mail_client_opens_and_records_nothing(
    history, instance, smtp_servers, monkeypatch
):
    delivery = delivery_for(history)
    month = Period.containing("monthly", history.last_night)
    week = Period.containing("weekly", history.last_night)
    board, agency = delivery.run(instance, dry_run=True)  # no SMTP server is set
    assert board.success and agency.success, (board.reason, agency.reason)
    assert board.eml_files == (delivery.outbox / "board" / month.key / "board.eml",)
    assert len(agency.eml_files) == 2
    assert {path.parent for path in agency.eml_files} == {delivery.outbox / "agency" / week.key}

    message = email.message_from_bytes(board.eml_files[0].read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message["From"] == DRY_RUN_FROM
    assert message["To"] == ", ".join(BOARD)
    assert message["Message-ID"] and message["Date"]
    assert message["Subject"].startswith("Connecticut's open data portals")
    assert "board.xlsx" in attachment_types(message)
    assert message.get_body(("html",)) is not None
    assert delivery.sends() == []
    assert materialized(instance, BOARD_DIGEST, month.key)["dry_run"] is True

    # Written, not sent: a real send of the period afterwards still goes to everyone.
    handler = Recorder()
    port = smtp_servers(handler)
    monkeypatch.setenv("CTDATA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CTDATA_SMTP_PORT", str(port))
    monkeypatch.setenv("CTDATA_SMTP_SECURITY", "none")
    monkeypatch.setenv("CTDATA_MAIL_FROM", SENDER)
    [sent] = delivery.run(instance, "board")
    assert sent.success, sent.reason
    assert [received["rcpt_tos"] for received in handler.received] == [BOARD]


def files_holding(folder: Path, secret: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and secret in p.read_bytes()]


def test_the_smtp_password_reaches_no_log_metadata_table_or_file(
    history, instance, smtp_servers, monkeypatch
):
    handler = Recorder()
    port = smtp_servers(handler, authenticator=authenticator, auth_require_tls=False)
    for name, value in {
        "CTDATA_SMTP_HOST": "127.0.0.1",
        "CTDATA_SMTP_PORT": str(port),
        "CTDATA_SMTP_SECURITY": "none",
        "CTDATA_SMTP_USER": USER,
        "CTDATA_SMTP_PASSWORD": PASSWORD,
        "CTDATA_MAIL_FROM": SENDER,
    }.items():
        monkeypatch.setenv(name, value)
    delivery = delivery_for(history)
    results = delivery.run(instance)
    assert all(result.success for result in results), [r.reason for r in results]
    assert len(handler.received) == 3
    assert all(received["authenticated"] for received in handler.received)

    # A wrong password fails the run with one line, naming the user and not the password.
    wrong = "Wr0ng-pa55-also-secret"
    monkeypatch.setenv("CTDATA_SMTP_PASSWORD", wrong)
    folder = history.folder / "delivery"
    (folder / "recipients.yaml").write_text(
        yaml.safe_dump({"board": ["new-member@example.org"]}), encoding="utf-8"
    )
    [refused] = delivery.run(instance, "board")
    assert not refused.success
    assert f"authentication refused for user '{USER}'" in refused.reason
    assert wrong not in refused.reason

    for run in instance.get_runs():
        assert PASSWORD not in serialize_value(run)
        for entry in instance.all_logs(run.run_id):
            stored = serialize_value(entry)
            assert PASSWORD not in stored and wrong not in stored
    for secret in (PASSWORD, wrong):
        assert files_holding(history.folder, secret.encode()) == []
        assert files_holding(Path(instance.root_directory), secret.encode()) == []


def test_a_period_without_a_reported_night_sends_nothing(history, instance, smtp_server):
    handler, _ = smtp_server
    delivery = delivery_for(history)
    earlier = Period.containing("monthly", history.last_night).previous()
    [result] = run_digests(
        delivery.defs, delivery.settings, ["board"], earlier.start, instance, "ERROR", False
    )
    assert result.success, result.reason
    assert handler.received == []
    metadata = materialized(instance, BOARD_DIGEST, earlier.key)
    assert (metadata["digests"], metadata["night"]) == (0, "none reported in the period")


def tick(defs: dg.Definitions, name: str, at: datetime) -> str | None:
    """The partition a schedule's tick at `at` requests, None when it skips."""
    schedule = defs.resolve_schedule_def(name)
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=defs.get_repository_def()
    ) as context:
        data = schedule.evaluate_tick(context)
    if not data.run_requests:
        assert data.skip_message
        return None
    [request] = data.run_requests
    return request.partition_key


def test_the_schedules_ask_on_mondays_for_the_period_before(history):
    delivery = delivery_for(history)
    defs = delivery.defs
    for name in (BOARD_DIGEST_SCHEDULE, AGENCY_DIGEST_SCHEDULE):
        schedule = defs.resolve_schedule_def(name)
        assert (schedule.cron_schedule, schedule.execution_timezone) == (
            "0 8 * * 1",
            "America/New_York",
        )
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=NEW_YORK)  # the month's first Monday
    assert tick(defs, BOARD_DIGEST_SCHEDULE, monday) == "2026-11-01"
    assert tick(defs, BOARD_DIGEST_SCHEDULE, datetime(2026, 12, 14, 8, tzinfo=NEW_YORK)) is None
    assert tick(defs, BOARD_DIGEST_SCHEDULE, datetime(2027, 1, 4, 8, tzinfo=NEW_YORK)) == (
        "2026-12-01"
    )
    assert tick(defs, AGENCY_DIGEST_SCHEDULE, monday) == "2026-11-30"
    # The Monday after clocks went forward: still the week before, Monday to Sunday.
    assert tick(defs, AGENCY_DIGEST_SCHEDULE, datetime(2026, 3, 9, 8, tzinfo=NEW_YORK)) == (
        "2026-03-02"
    )
    # What the ticks ask for are the assets' partitions.
    for asset, key in ((BOARD_DIGEST, "2026-11-01"), (AGENCY_DIGESTS, "2026-11-30")):
        partitions = defs.resolve_assets_def(asset).partitions_def
        assert partitions is not None and partitions.has_partition_key(key)

    # Without a recipients file the schedules are there but stopped: every tick would fail.
    unset = build_definitions(
        replace(delivery.settings, recipients_file=None),
        PortalFileResource(path=str(delivery.settings.portals_file)),
        LivePortalClient(),
    )
    assert unset.resolve_schedule_def(BOARD_DIGEST_SCHEDULE).default_status == (
        dg.DefaultScheduleStatus.STOPPED
    )


def test_a_weekly_board_digest_follows_the_recipients_file(history):
    delivery = delivery_for(
        history, {"board": BOARD, "schedule": {"board": "weekly", "agencies": "monthly"}}
    )
    monday = datetime(2026, 12, 14, 8, 0, tzinfo=NEW_YORK)
    assert tick(delivery.defs, BOARD_DIGEST_SCHEDULE, monday) == "2026-12-07"
    assert tick(delivery.defs, AGENCY_DIGEST_SCHEDULE, monday) is None


def test_ctdata_digests(history):
    delivery = delivery_for(history)
    env = delivery.env
    folder = history.folder

    unset = run_ctdata(folder, "digests", **{**env, "CTDATA_RECIPIENTS": ""})
    assert unset.returncode == 2
    assert unset.stderr.strip().splitlines() == [
        "ctdata digests: CTDATA_RECIPIENTS is not set: no recipients file says who receives "
        "the digests (README: Recipients and SMTP)"
    ]
    no_server = run_ctdata(folder, "digests", **env)
    assert no_server.returncode == 2
    assert "set CTDATA_SMTP_HOST" in no_server.stderr and "--dry-run" in no_server.stderr
    bad_day = run_ctdata(folder, "digests", "--dry-run", "--for", "2026-13-01", **env)
    assert bad_day.returncode == 2
    assert bad_day.stderr.startswith("ctdata digests: --for '2026-13-01': month must be in 1..12")

    month = Period.containing("monthly", history.last_night)
    written = run_ctdata(folder, "digests", "--board", "--dry-run", **env)
    assert written.returncode == 0, written.stderr
    eml = delivery.outbox / "board" / month.key / "board.eml"
    assert written.stdout.splitlines() == [
        f"board digest {month.key} ({month.words}): ok",
        f"  {eml}",
    ]
    assert eml.is_file() and not (delivery.outbox / "agency").exists()
    assert delivery.sends() == []
