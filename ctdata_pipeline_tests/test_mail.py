"""Reading the recipients file and sending mail: every bad file is one clear error naming the
file and the key; messages go through a real SMTP server on loopback (aiosmtpd), in plain,
STARTTLS (a trustme CA) and implicit TLS, and every way a message cannot go is one line naming
the server, never the password."""

from __future__ import annotations

import email
import logging
import socket
import ssl
import time
from dataclasses import replace
from datetime import date
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult

from ctdata_pipeline.delivery.model import BOARD_AUDIENCE, Digest, Period
from ctdata_pipeline.delivery.outbox import write_eml
from ctdata_pipeline.delivery.recipients import (
    AgencyRecipients,
    RecipientsError,
    RecipientsFile,
    address_problem,
    load_recipients,
    match_agencies,
)
from ctdata_pipeline.delivery.smtp import (
    DeliveryError,
    SmtpSender,
    SmtpSettings,
    addressed,
)
from ctdata_pipeline.settings import SettingsError
from ctdata_pipeline_tests.smtp_servers import (
    PASSWORD,
    USER,
    Recorder,
    Servers,
    authenticator,
    free_port,
)

SENDER = "CT open data <opendata@digests.example.gov>"


# --- the recipients file ---------------------------------------------------------------------

FULL_FILE = """
board: [chair@example.gov, member@example.gov]
agencies:
  Department of Public Health: [dph-data@example.gov]
  Department of Transportation:
    addresses: [dot-data@example.gov, dot-cdo@example.gov]
    send_when_clean: true
report_url: https://reports.example.gov/ctdata
schedule: {board: weekly, agencies: monthly}
"""


def recipients_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipients.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_both_agency_forms_are_read(tmp_path: Path) -> None:
    recipients = load_recipients(recipients_file(tmp_path, FULL_FILE))
    assert recipients.board == ("chair@example.gov", "member@example.gov")
    assert recipients.agencies == {
        "Department of Public Health": AgencyRecipients(addresses=("dph-data@example.gov",)),
        "Department of Transportation": AgencyRecipients(
            addresses=("dot-data@example.gov", "dot-cdo@example.gov"), send_when_clean=True
        ),
    }
    # The digests append "<night>/report.html" to it.
    assert recipients.report_url == "https://reports.example.gov/ctdata/"
    assert (recipients.schedule.board, recipients.schedule.agencies) == ("weekly", "monthly")


def test_a_file_with_the_board_only_takes_the_defaults(tmp_path: Path) -> None:
    recipients = load_recipients(recipients_file(tmp_path, "board: [chair@example.gov]\n"))
    assert recipients.agencies == {} and recipients.report_url is None
    assert (recipients.schedule.board, recipients.schedule.agencies) == ("monthly", "weekly")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("board: [a@example.gov\nagencies: {}\n", "not valid YAML (line 2, column"),
        ("- a@example.gov\n", "must be a mapping with board, agencies"),
        ("boards: [a@example.gov]\n", "boards: unknown key"),
        (
            "agencies:\n  DPH:\n    addresses: [a@example.gov]\n    sendwhenclean: true\n",
            "agencies.DPH.sendwhenclean: unknown key",
        ),
        ("schedule: {board: daily}\n", "schedule.board: Input should be 'monthly' or 'weekly'"),
        ("schedule: {board: monthly, agency: weekly}\n", "schedule.agency: unknown key"),
        ("report_url: ftp://reports.example.gov/\n", "report_url: 'ftp://reports.example.gov/'"),
        ("report_url: reports/\n", "must start with http:// or https:// and name a host"),
        ("board: chair@example.gov\n", "board: Input should be a valid tuple"),
        ("board: [chair@example.gov, 42]\n", "board.1: Input should be a valid string"),
        ("agencies:\n  DPH: dph@example.gov\n", "agencies.DPH: Input should be a valid"),
        ("agencies:\n  DPH: []\n", "agencies.DPH.addresses: lists no address"),
        (
            "agencies:\n  DPH: {addresses: [a@example.gov], send_when_clean: 'maybe'}\n",
            "agencies.DPH.send_when_clean: Input should be a valid boolean",
        ),
        ("agencies:\n  ' ': [a@example.gov]\n", "agencies: an agency name is empty"),
        (
            "agencies:\n  DPH: [a@example.gov]\n  DPH: [b@example.gov]\n",
            "the key 'DPH' is written twice",
        ),
    ],
)
def test_a_bad_file_is_one_error_naming_the_file_and_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = recipients_file(tmp_path, text)
    with pytest.raises(RecipientsError) as raised:
        load_recipients(path)
    message = str(raised.value)
    assert message.startswith(f"recipients file {path}: ")
    assert expected in message
    assert "\n" not in message


def test_a_missing_file_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(RecipientsError, match=r"recipients file .*nowhere\.yaml: cannot be read"):
        load_recipients(tmp_path / "nowhere.yaml")


def test_a_malformed_address_is_not_a_file_error(tmp_path: Path) -> None:
    """It is a problem of that one address at send time; the other messages still go."""
    text = "board: ['x@', chair@example.gov]\n"
    recipients = load_recipients(recipients_file(tmp_path, text))
    assert [address_problem(a) is None for a in recipients.board] == [False, True]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("x@", "'x@' is not an e-mail address: "),
        ("no-at-sign.example.gov", "'no-at-sign.example.gov' is not an e-mail address: "),
        ("two words@example.gov", "is not an e-mail address: "),
        ("a@example.gov\r\nBcc: all@example.gov", "is not an e-mail address: "),
        ("data@localhost", "is not an e-mail address: "),
        ("dph@exämple.gov", "write it 'dph@xn--exmple-cua.gov'"),
    ],
)
def test_address_problem_says_what_is_wrong(address: str, expected: str) -> None:
    problem = address_problem(address)
    assert problem is not None and expected in problem
    assert "\n" not in problem


def test_a_good_address_has_no_problem() -> None:
    assert address_problem("dph-data@ct.gov") is None
    assert address_problem("first.last+digests@data.example.org") is None


NIGHT_AGENCIES = ["Department of Public Health", "Department of Transportation", "Office of Policy"]
ALIASES = {
    "DPH": "Department of Public Health",
    "Public Health": "Department of Public Health",
    "CTDOT": "Department of Transportation",
    "Department of Revenue Services": "Department of Revenue Services",
}


def test_entries_match_by_name_or_alias_and_merge() -> None:
    recipients = recipients_with(
        {
            "Department of Public Health": AgencyRecipients(addresses=("a@example.gov",)),
            "DPH": AgencyRecipients(
                addresses=("b@example.gov", "a@example.gov"), send_when_clean=True
            ),
            "ctdot": AgencyRecipients(addresses=("c@example.gov",)),
            "office of  policy": AgencyRecipients(addresses=("d@example.gov",)),
        }
    )
    matched, problems = match_agencies(recipients, NIGHT_AGENCIES, ALIASES)
    assert problems == []
    assert matched == {
        "Department of Public Health": AgencyRecipients(
            addresses=("a@example.gov", "b@example.gov"), send_when_clean=True
        ),
        "Department of Transportation": AgencyRecipients(addresses=("c@example.gov",)),
        "Office of Policy": AgencyRecipients(addresses=("d@example.gov",)),
    }


def test_an_entry_naming_no_agency_of_the_night_is_a_problem() -> None:
    recipients = recipients_with(
        {
            "Department of Public Health": AgencyRecipients(addresses=("a@example.gov",)),
            "Department of Magic": AgencyRecipients(addresses=("m@example.gov",)),
            # An alias of an agency that has no datasets tonight matches nothing either.
            "Department of Revenue Services": AgencyRecipients(addresses=("r@example.gov",)),
        }
    )
    matched, problems = match_agencies(recipients, NIGHT_AGENCIES, ALIASES)
    assert list(matched) == ["Department of Public Health"]
    assert [problem.audience for problem in problems] == [
        "Department of Magic",
        "Department of Revenue Services",
    ]
    line = str(problems[0])
    assert line.startswith("Department of Magic: ")
    assert "'Department of Magic'" in line
    assert "neither an agency of the night's scorecards nor an alias of one" in line


def recipients_with(agencies: dict[str, AgencyRecipients]) -> RecipientsFile:
    return RecipientsFile(agencies=agencies)


# --- SMTP settings from the environment --------------------------------------------------------


def test_no_host_means_no_smtp() -> None:
    assert SmtpSettings.from_env() is None


@pytest.mark.parametrize(
    ("security", "port"), [(None, 587), ("starttls", 587), ("tls", 465), ("none", 25)]
)
def test_the_port_defaults_to_the_securitys(
    monkeypatch: pytest.MonkeyPatch, security: str | None, port: int
) -> None:
    monkeypatch.setenv("CTDATA_SMTP_HOST", "smtp.example.gov")
    monkeypatch.setenv("CTDATA_MAIL_FROM", SENDER)
    if security:
        monkeypatch.setenv("CTDATA_SMTP_SECURITY", security)
    settings = SmtpSettings.from_env()
    assert settings is not None
    assert (settings.port, settings.security) == (port, security or "starttls")
    assert settings.timeout_seconds == 30 and settings.user is None and settings.ca_file is None


def test_every_variable_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    for name, value in {
        "CTDATA_SMTP_HOST": "smtp.example.gov",
        "CTDATA_SMTP_PORT": "2525",
        "CTDATA_SMTP_SECURITY": "tls",
        "CTDATA_SMTP_USER": USER,
        "CTDATA_SMTP_PASSWORD": PASSWORD,
        "CTDATA_MAIL_FROM": SENDER,
        "CTDATA_SMTP_TIMEOUT": "2.5",
        "CTDATA_SMTP_CA_FILE": str(ca_file),
    }.items():
        monkeypatch.setenv(name, value)
    settings = SmtpSettings.from_env()
    assert settings == SmtpSettings(
        "smtp.example.gov", 2525, "tls", SENDER, USER, PASSWORD, 2.5, ca_file
    )
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, "CTDATA_MAIL_FROM must be set when CTDATA_SMTP_HOST is"),
        ({"CTDATA_MAIL_FROM": "opendata@"}, "CTDATA_MAIL_FROM='opendata@': 'opendata@' is not"),
        ({"CTDATA_SMTP_SECURITY": "ssl"}, "CTDATA_SMTP_SECURITY='ssl' must be starttls, tls"),
        ({"CTDATA_SMTP_PORT": "smtp"}, "CTDATA_SMTP_PORT='smtp' must be a port number"),
        ({"CTDATA_SMTP_PORT": "70000"}, "CTDATA_SMTP_PORT='70000' must be a port number"),
        ({"CTDATA_SMTP_TIMEOUT": "0"}, "CTDATA_SMTP_TIMEOUT='0' must be a number of seconds"),
        ({"CTDATA_SMTP_TIMEOUT": "nan"}, "CTDATA_SMTP_TIMEOUT='nan' must be a number"),
        ({"CTDATA_SMTP_CA_FILE": "/nowhere/ca.pem"}, "CTDATA_SMTP_CA_FILE='/nowhere/ca.pem'"),
        ({"CTDATA_SMTP_USER": USER}, "CTDATA_SMTP_USER is set but CTDATA_SMTP_PASSWORD is not"),
        ({"CTDATA_SMTP_PASSWORD": PASSWORD}, "CTDATA_SMTP_PASSWORD is set but CTDATA_SMTP_USER"),
        (
            {
                "CTDATA_SMTP_SECURITY": "none",
                "CTDATA_SMTP_USER": USER,
                "CTDATA_SMTP_PASSWORD": PASSWORD,
            },
            "would send the password to smtp.example.gov unencrypted",
        ),
    ],
)
def test_a_bad_variable_is_named_and_the_password_is_not(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    monkeypatch.setenv("CTDATA_SMTP_HOST", "smtp.example.gov")
    if "CTDATA_MAIL_FROM" not in variables and variables:
        monkeypatch.setenv("CTDATA_MAIL_FROM", SENDER)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        SmtpSettings.from_env()
    assert expected in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_a_ca_file_that_is_not_pem_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n", encoding="utf-8")
    monkeypatch.setenv("CTDATA_SMTP_HOST", "smtp.example.gov")
    monkeypatch.setenv("CTDATA_MAIL_FROM", SENDER)
    monkeypatch.setenv("CTDATA_SMTP_CA_FILE", str(bogus))
    with pytest.raises(SettingsError, match="is not a PEM CA bundle"):
        SmtpSettings.from_env()


# --- a real SMTP server on loopback --------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


def settings_for(port: int, **changes: Any) -> SmtpSettings:
    base = SmtpSettings(host="127.0.0.1", port=port, security="none", mail_from=SENDER)
    return replace(base, **{"timeout_seconds": 5.0, **changes})


PDF_BYTES = b"%PDF-1.7\n% a tiny stand-in for report.pdf\n%%EOF\n"


def digest(to: tuple[str, ...] = ("chair@example.gov", "member@example.gov")) -> Digest:
    message = EmailMessage()
    message["Subject"] = "CT open data, November 2026: missing metadata 23.4%"
    message.set_content("Missing metadata: 23.4% (target under 20%).\n")
    message.add_alternative("<p>Missing metadata: <b>23.4%</b></p>\n", subtype="html")
    message.add_attachment(PDF_BYTES, maintype="application", subtype="pdf", filename="report.pdf")
    period = Period.containing("monthly", date(2026, 11, 1))
    return Digest("board", period, BOARD_AUDIENCE, to, date(2026, 11, 30), message)


def test_a_plain_send_arrives_whole(smtp_servers: Servers) -> None:
    handler = Recorder()
    port = smtp_servers(handler)
    with SmtpSender(settings_for(port)) as sender:
        sent = sender.send(digest())
    assert sent.accepted == ("chair@example.gov", "member@example.gov") and sent.refused == {}
    [received] = handler.received
    assert received["mail_from"] == "opendata@digests.example.gov"
    assert received["rcpt_tos"] == ["chair@example.gov", "member@example.gov"]
    message = received["message"]
    assert message["From"] == SENDER
    assert message["To"] == "chair@example.gov, member@example.gov"
    assert message["Message-ID"] == sent.message_id
    assert sent.message_id.endswith("@digests.example.gov>")
    assert message["Date"] is not None
    assert message["Subject"] == "CT open data, November 2026: missing metadata 23.4%"
    body = message.get_body(("plain",))
    assert body is not None and "23.4% (target under 20%)" in body.get_content()
    html = message.get_body(("html",))
    assert html is not None and "<b>23.4%</b>" in html.get_content()
    assert [part.get_content_type() for part in message.walk()][:3] == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
    ]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "report.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF_BYTES


def test_addressed_leaves_the_digest_as_it_was_and_takes_a_subset() -> None:
    board = digest()
    first = addressed(board, SENDER, ("member@example.gov",))
    second = addressed(board, SENDER)
    assert board.message["To"] is None and board.message["Message-ID"] is None
    assert first["To"] == "member@example.gov"
    assert second["To"] == "chair@example.gov, member@example.gov"
    assert first["Message-ID"] != second["Message-ID"]
    assert len(second.get_all("Message-ID")) == 1


def test_starttls_with_a_private_ca_and_login(
    smtp_servers: Servers, ca: trustme.CA, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = Recorder()
    port = smtp_servers(
        handler,
        tls_context=server_context(ca),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    for name, value in {
        "CTDATA_SMTP_HOST": "127.0.0.1",
        "CTDATA_SMTP_PORT": str(port),
        "CTDATA_SMTP_USER": USER,
        "CTDATA_SMTP_PASSWORD": PASSWORD,
        "CTDATA_MAIL_FROM": SENDER,
        "CTDATA_SMTP_CA_FILE": str(ca_file),
    }.items():
        monkeypatch.setenv(name, value)
    settings = SmtpSettings.from_env()
    assert settings is not None and settings.security == "starttls"
    with SmtpSender(settings) as sender:
        sent = sender.send(digest(("chair@example.gov",)))
    assert sent.accepted == ("chair@example.gov",)
    [received] = handler.received
    assert received["tls"] and received["authenticated"]


def test_a_wrong_password_is_one_line_without_it(
    smtp_servers: Servers, ca: trustme.CA, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    port = smtp_servers(
        handler,
        tls_context=server_context(ca),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    wrong = PASSWORD + "-but-wrong"
    settings = settings_for(port, security="starttls", ca_file=ca_file, user=USER, password=wrong)
    caplog.set_level(logging.DEBUG)
    with SmtpSender(settings) as sender, pytest.raises(DeliveryError) as raised:
        sender.send(digest())
    line = str(raised.value)
    assert line.startswith(f"SMTP server 127.0.0.1:{port}: authentication refused")
    assert "535" in line and "\n" not in line
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert wrong not in line and PASSWORD not in line
    assert PASSWORD not in caplog.text
    assert handler.received == []


def test_a_server_echoing_the_password_has_it_redacted(
    smtp_servers: Servers, ca: trustme.CA, ca_file: Path
) -> None:
    def echoing(*args: object) -> AuthResult:
        return AuthResult(success=False, handled=False, message=f"535 5.7.8 {PASSWORD} is wrong")

    port = smtp_servers(
        Recorder(), tls_context=server_context(ca), require_starttls=True, authenticator=echoing
    )
    settings = settings_for(
        port, security="starttls", ca_file=ca_file, user=USER, password=PASSWORD
    )
    with SmtpSender(settings) as sender, pytest.raises(DeliveryError) as raised:
        sender.send(digest())
    assert "535 5.7.8 [password] is wrong" in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_no_address_is_not_a_send() -> None:
    with pytest.raises(ValueError, match="DATA Board: no address to send the board digest to"):
        SmtpSender(settings_for(free_port())).send(digest(()))


def test_a_certificate_the_system_does_not_trust_is_a_tls_failure(
    smtp_servers: Servers, ca: trustme.CA
) -> None:
    port = smtp_servers(Recorder(), tls_context=server_context(ca), require_starttls=True)
    with SmtpSender(settings_for(port, security="starttls")) as sender:
        with pytest.raises(DeliveryError, match=r"127\.0\.0\.1:\d+: TLS failure \(certificate"):
            sender.send(digest())


def test_implicit_tls(smtp_servers: Servers, ca: trustme.CA, ca_file: Path) -> None:
    handler = Recorder()
    port = smtp_servers(handler, ssl_context=server_context(ca))
    with SmtpSender(settings_for(port, security="tls", ca_file=ca_file)) as sender:
        sent = sender.send(digest())
    assert len(sent.accepted) == 2
    assert handler.received[0]["tls"]


def test_one_refused_recipient_does_not_stop_the_others(smtp_servers: Servers) -> None:
    handler = Recorder(refuse={"gone@example.gov"})
    port = smtp_servers(handler)
    to = ("chair@example.gov", "gone@example.gov", "member@example.gov")
    with SmtpSender(settings_for(port)) as sender:
        sent = sender.send(digest(), to)
    assert sent.accepted == ("chair@example.gov", "member@example.gov")
    assert sent.refused == {"gone@example.gov": "550 5.1.1 <gone@example.gov>: mailbox unavailable"}
    assert handler.received[0]["rcpt_tos"] == ["chair@example.gov", "member@example.gov"]
    # The message says who it was addressed to, as the recipients file wrote them.
    assert handler.received[0]["message"]["To"] == ", ".join(to)


def test_every_recipient_refused_fails_and_the_next_send_reconnects(smtp_servers: Servers) -> None:
    handler = Recorder(refuse={"gone@example.gov", "left@example.gov"})
    port = smtp_servers(handler)
    with SmtpSender(settings_for(port)) as sender:
        with pytest.raises(DeliveryError) as raised:
            sender.send(digest(("gone@example.gov", "left@example.gov")))
        line = str(raised.value)
        assert line.startswith(f"SMTP server 127.0.0.1:{port}: refused every recipient (")
        assert "gone@example.gov: 550" in line and "left@example.gov: 550" in line
        sent = sender.send(digest(("chair@example.gov",)))
        assert sent.accepted == ("chair@example.gov",)
        assert [r["rcpt_tos"] for r in handler.received] == [["chair@example.gov"]]


def test_a_server_that_never_answers_fails_within_the_timeout() -> None:
    # A listening socket nobody accepts from: the connection opens, no greeting ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with SmtpSender(settings_for(port, timeout_seconds=1.0)) as sender:
            with pytest.raises(DeliveryError) as raised:
                sender.send(digest())
        assert time.monotonic() - started < 4
    assert str(raised.value) == f"SMTP server 127.0.0.1:{port}: no answer within 1 s"


def test_nothing_listening_is_a_refused_connection_and_the_next_send_works(
    smtp_servers: Servers,
) -> None:
    port = free_port()
    with SmtpSender(settings_for(port)) as sender:
        with pytest.raises(DeliveryError, match=rf"127\.0\.0\.1:{port}: refused the connection"):
            sender.send(digest())
        handler = Recorder()
        smtp_servers(handler, port=port)
        assert sender.send(digest()).accepted == ("chair@example.gov", "member@example.gov")
    assert len(handler.received) == 1


def test_a_connection_the_server_dropped_is_opened_again(smtp_servers: Servers) -> None:
    first = Recorder()
    port = smtp_servers(first)
    with SmtpSender(settings_for(port)) as sender:
        sender.send(digest())
        # The server goes away (a restart) while the sender holds its connection.
        smtp_servers.stop(port)
        second = Recorder()
        smtp_servers(second, port=port)
        sender.send(digest())
    assert len(first.received) == 1 and len(second.received) == 1


# --- the outbox ------------------------------------------------------------------------------


def test_write_eml_writes_a_message_a_mail_client_opens(tmp_path: Path) -> None:
    message = addressed(digest(), SENDER)
    path = tmp_path / "outbox" / "board" / "2026-11-01" / "board.eml"
    assert write_eml(message, path) == path
    raw = path.read_bytes()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    opened = email.message_from_bytes(raw, policy=policy.default)
    assert opened["Message-ID"] == message["Message-ID"]
    [attachment] = list(opened.iter_attachments())
    assert attachment.get_content() == PDF_BYTES
    assert sorted(p.name for p in path.parent.iterdir()) == ["board.eml"]
    # Written again (a second dry run), it is replaced whole.
    again = addressed(digest(), SENDER)
    write_eml(again, path)
    reopened = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert reopened["Message-ID"] == again["Message-ID"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["board.eml"]
