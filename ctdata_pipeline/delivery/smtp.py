"""Sending digests through an SMTP server, with the settings from the environment:
CTDATA_SMTP_HOST, CTDATA_SMTP_PORT, CTDATA_SMTP_SECURITY (starttls, tls or none),
CTDATA_SMTP_USER, CTDATA_SMTP_PASSWORD (never logged), CTDATA_MAIL_FROM, CTDATA_SMTP_TIMEOUT,
CTDATA_SMTP_CA_FILE (a private CA's bundle, trusted on top of the system's)."""

from __future__ import annotations

import copy
import logging
import math
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from ctdata_pipeline.delivery.model import WIRE_POLICY, Digest
from ctdata_pipeline.delivery.recipients import address_problem
from ctdata_pipeline.settings import SettingsError

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_TIMEOUT_SECONDS = 30.0
# Where a password may travel without TLS: nowhere but this machine.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """One message could not be sent: one line naming the server and what it said, never the
    password."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    mail_from: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # A CA bundle trusted in addition to the system's (a server with a private CA).
    ca_file: Path | None = None

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """None when CTDATA_SMTP_HOST is not set; a settings.SettingsError naming the variable
        for a value that cannot be used."""
        host = _env("CTDATA_SMTP_HOST")
        if host is None:
            return None
        security = _env("CTDATA_SMTP_SECURITY") or "starttls"
        if security not in get_args(Security):
            raise SettingsError(f"CTDATA_SMTP_SECURITY={security!r} must be starttls, tls or none")
        port = _port(security)  # type: ignore[arg-type]
        mail_from = _env("CTDATA_MAIL_FROM")
        if mail_from is None:
            raise SettingsError(
                "CTDATA_MAIL_FROM must be set when CTDATA_SMTP_HOST is: the digests' sender "
                "address (e.g. 'CT open data <opendata@example.gov>')"
            )
        problem = address_problem(sender_address(mail_from))
        if problem:
            raise SettingsError(f"CTDATA_MAIL_FROM={mail_from!r}: {problem}")
        user = _env("CTDATA_SMTP_USER")
        # Never stripped nor shown: a password may begin or end with a space.
        password = os.environ.get("CTDATA_SMTP_PASSWORD") or None
        if user is not None and password is None:
            raise SettingsError("CTDATA_SMTP_USER is set but CTDATA_SMTP_PASSWORD is not")
        if password is not None and user is None:
            raise SettingsError(
                "CTDATA_SMTP_PASSWORD is set but CTDATA_SMTP_USER (who logs in) is not"
            )
        if user is not None and security == "none" and host.lower() not in LOOPBACK_HOSTS:
            raise SettingsError(
                f"CTDATA_SMTP_SECURITY='none' with CTDATA_SMTP_USER would send the password "
                f"to {host} unencrypted: use starttls or tls"
            )
        return cls(
            host=host,
            port=port,
            security=security,  # type: ignore[arg-type]
            mail_from=mail_from,
            user=user,
            password=password,
            timeout_seconds=_timeout(),
            ca_file=_ca_file(),
        )

    @property
    def server(self) -> str:
        """host:port, as every DeliveryError names the server."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _port(security: Security) -> int:
    value = _env("CTDATA_SMTP_PORT")
    if value is None:
        return DEFAULT_PORTS[security]
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise SettingsError(f"CTDATA_SMTP_PORT={value!r} must be a port number, 1 to 65535")
    return int(value)


def _timeout() -> float:
    value = _env("CTDATA_SMTP_TIMEOUT")
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (seconds > 0 and math.isfinite(seconds)):
        raise SettingsError(f"CTDATA_SMTP_TIMEOUT={value!r} must be a number of seconds above 0")
    return seconds


def _ca_file() -> Path | None:
    value = _env("CTDATA_SMTP_CA_FILE")
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        raise SettingsError(f"CTDATA_SMTP_CA_FILE={value!r} is not a file (a PEM CA bundle)")
    try:
        ssl.create_default_context().load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError) as error:
        raise SettingsError(
            f"CTDATA_SMTP_CA_FILE={value!r} is not a PEM CA bundle ({_reason(error)})"
        ) from None
    return path


def sender_address(mail_from: str) -> str:
    """The bare address of a From value ("CT open data <od@example.gov>" -> od@example.gov)."""
    return parseaddr(mail_from)[1] or mail_from


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    accepted: tuple[str, ...]
    refused: dict[str, str]  # address -> what the server said


def addressed(digest: Digest, mail_from: str, to: tuple[str, ...] | None = None) -> EmailMessage:
    """The digest's message with From, To (`to`, default digest.to), Date and a fresh
    Message-ID, ready to send or save. The digest's own message is left as it was."""
    message = copy.deepcopy(digest.message)
    message.policy = WIRE_POLICY
    for header in ("From", "To", "Cc", "Bcc", "Date", "Message-ID"):
        del message[header]
    message["From"] = mail_from
    message["To"] = ", ".join(digest.to if to is None else to)
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = sender_address(mail_from).rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    return message


class SmtpSender:
    """One connection for a batch of messages (`with SmtpSender(settings) as sender:`); a
    message that fails raises DeliveryError and the next one reconnects."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send(self, digest: Digest, to: tuple[str, ...] | None = None) -> SentMessage:
        """Send to `to` (default: digest.to); addresses the server refuses are in `refused`."""
        recipients = digest.to if to is None else to
        if not recipients:
            raise ValueError(f"{digest.audience}: no address to send the {digest.kind} digest to")
        message = addressed(digest, self.settings.mail_from, recipients)
        try:
            smtp = self._connection()
            refused = smtp.send_message(
                message,
                from_addr=sender_address(self.settings.mail_from),
                to_addrs=list(recipients),
            )
        except (smtplib.SMTPException, OSError) as error:  # ssl's errors are OSErrors
            self._drop()
            raise DeliveryError(self._failure(error, recipients)) from None
        said = {address: _said(code, text) for address, (code, text) in refused.items()}
        accepted = tuple(address for address in recipients if address not in said)
        log.info(
            "sent %s to %d of %d address(es) via %s",
            message["Message-ID"],
            len(accepted),
            len(recipients),
            self.settings.server,
        )
        return SentMessage(str(message["Message-ID"]), accepted, said)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            # A server closes an idle connection when it likes; check before the next message.
            try:
                if self._smtp.noop()[0] == 250:
                    return self._smtp
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()
        self._smtp = self._connect()
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        context = None
        if settings.security != "none":
            context = ssl.create_default_context()
            if settings.ca_file is not None:
                context.load_verify_locations(cafile=str(settings.ca_file))
        smtp: smtplib.SMTP
        if settings.security == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout_seconds, context=context
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds)
        try:
            smtp.ehlo()
            if settings.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if settings.user is not None:
                smtp.login(settings.user, settings.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    def _failure(self, error: BaseException, recipients: tuple[str, ...]) -> str:
        what = _what_happened(error, self.settings, recipients)
        line = " ".join(f"SMTP server {self.settings.server}: {what}".split())
        password = self.settings.password
        # The server's own words are quoted; a server echoing a secret must not leak it.
        return line.replace(password, "[password]") if password else line


def _what_happened(
    error: BaseException, settings: SmtpSettings, recipients: tuple[str, ...]
) -> str:
    # smtplib reports a read that timed out as the server having closed the connection.
    if isinstance(error, smtplib.SMTPServerDisconnected) and isinstance(
        error.__context__, TimeoutError
    ):
        error = error.__context__
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return (
            f"authentication refused for user {settings.user!r} "
            f"({_said(error.smtp_code, error.smtp_error)})"
        )
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        said = "; ".join(
            f"{address}: {_said(code, text)}" for address, (code, text) in error.recipients.items()
        )
        return f"refused every recipient ({said})"
    if isinstance(error, smtplib.SMTPSenderRefused):
        return f"refused the sender {error.sender!r} ({_said(error.smtp_code, error.smtp_error)})"
    if isinstance(error, smtplib.SMTPDataError):
        return f"refused the message ({_said(error.smtp_code, error.smtp_error)})"
    if isinstance(error, smtplib.SMTPNotSupportedError):
        offer = "STARTTLS" if settings.security == "starttls" else "what was asked"
        return f"does not offer {offer} ({error}); check CTDATA_SMTP_SECURITY and CTDATA_SMTP_USER"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"answered {_said(error.smtp_code, error.smtp_error)}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return f"closed the connection ({error or 'without a word'})"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS failure ({_reason(error)}; a private CA's bundle goes in CTDATA_SMTP_CA_FILE)"
    if isinstance(error, ssl.SSLError):
        return f"TLS failure ({_reason(error)})"
    if isinstance(error, TimeoutError):
        return f"no answer within {settings.timeout_seconds:g} s"
    if isinstance(error, ConnectionRefusedError):
        return "refused the connection (nothing listening on that port?)"
    if isinstance(error, socket.gaierror):
        return f"host name not found ({error.strerror})"
    if isinstance(error, OSError):
        return f"cannot be reached ({error.strerror or error})"
    return f"{error} (sending to {len(recipients)} address(es))"


def _said(code: int, text: bytes | str) -> str:
    words = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{code} {' '.join(words.split())}"


def _reason(error: BaseException) -> str:
    verify = getattr(error, "verify_message", None)
    if verify:
        return f"certificate verify failed: {verify}"
    reason = getattr(error, "reason", None)
    return str(reason or error)
