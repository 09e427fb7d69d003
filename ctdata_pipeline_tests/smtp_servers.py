"""A real SMTP server on loopback for the tests (aiosmtpd): it keeps every message it received,
parsed, and refuses the addresses it is told to."""

from __future__ import annotations

import email
import socket
from email import policy
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# The one login the servers accept (`authenticator`): tests look for the password everywhere.
PASSWORD = "s3cret-Pa55word-never-logged"
USER = "digest-bot"


class Recorder:
    """An aiosmtpd handler keeping what it received; it refuses the addresses in `refuse`."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse or set()
        self.received: list[dict[str, Any]] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "message": email.message_from_bytes(envelope.content, policy=policy.default),
                "authenticated": session.authenticated,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
            }
        )
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Servers:
    """aiosmtpd controllers on loopback, stopped at the end of the test."""

    def __init__(self) -> None:
        self.running: dict[int, Controller] = {}

    def __call__(self, handler: Recorder, port: int | None = None, **smtp_options: Any) -> int:
        controller = Controller(
            handler, hostname="127.0.0.1", port=port or free_port(), **smtp_options
        )
        controller.start()
        self.running[controller.port] = controller
        return controller.port

    def stop(self, port: int) -> None:
        self.running.pop(port).stop()


def authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)
