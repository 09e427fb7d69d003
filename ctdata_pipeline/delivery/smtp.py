"""Sending digests through an SMTP server, with the settings from the environment:
CTDATA_SMTP_HOST, CTDATA_SMTP_PORT, CTDATA_SMTP_SECURITY (starttls, tls or none),
CTDATA_SMTP_USER, CTDATA_SMTP_PASSWORD (never logged), CTDATA_MAIL_FROM."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

from ctdata_pipeline.delivery.model import Digest

Security = Literal["starttls", "tls", "none"]


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
    timeout_seconds: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpSettings | None:
        """None when CTDATA_SMTP_HOST is not set; a settings.SettingsError naming the variable
        for a value that cannot be used."""
        raise NotImplementedError


@dataclass(frozen=True)
class SentMessage:
    message_id: str
    accepted: tuple[str, ...]
    refused: dict[str, str]  # address -> what the server said


def addressed(digest: Digest, mail_from: str) -> EmailMessage:
    """The digest's message with From, To, Date and a fresh Message-ID, ready to send or save."""
    raise NotImplementedError


class SmtpSender:
    """One connection for a batch of messages (`with SmtpSender(settings) as sender:`); a
    message that fails raises DeliveryError and the next one reconnects."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, digest: Digest, to: tuple[str, ...] | None = None) -> SentMessage:
        """Send to `to` (default: digest.to); addresses the server refuses are in `refused`."""
        raise NotImplementedError
