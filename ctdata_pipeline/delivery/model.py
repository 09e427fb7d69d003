"""The shapes delivery passes around: a digest's period, a digest ready to send, what became of
it. Composing (compose.py), sending (smtp.py, outbox.py) and recording (records.py) meet here."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from typing import Literal

# How often a digest goes out: monthly on the first Monday, weekly on Mondays (08:00 New York).
Cadence = Literal["monthly", "weekly"]
DigestKind = Literal["board", "agency"]
# How a message is written on the wire and to an .eml file: CRLF, with header lines up to RFC
# 5322's limit of 998 characters. At the usual 78, Python's folder moves a value of about 70 to
# 77 characters (an agency digest's Subject) whole onto a continuation line, and a reader then
# sees the Subject with a leading space.
WIRE_POLICY = policy.SMTP.clone(max_line_length=998)
BOARD_AUDIENCE = "DATA Board"

# Dagster names (assets, jobs, schedules) of the digests and of the open-data publication.
BOARD_DIGEST = "board_digest"
AGENCY_DIGESTS = "agency_digests"
OPEN_DATA_PUBLICATION = "open_data_publication"


@dataclass(frozen=True, order=True)
class Period:
    """The days a digest covers, `start` to `end` inclusive: a calendar month, or a week from
    Monday to Sunday. Its key (the first day) is the digest asset's partition key."""

    cadence: Cadence
    start: date
    end: date

    @classmethod
    def containing(cls, cadence: Cadence, day: date) -> Period:
        if cadence == "monthly":
            last = calendar.monthrange(day.year, day.month)[1]
            return cls(cadence, day.replace(day=1), day.replace(day=last))
        monday = day - timedelta(days=day.weekday())
        return cls(cadence, monday, monday + timedelta(days=6))

    @classmethod
    def from_key(cls, cadence: Cadence, key: str) -> Period:
        """The period whose partition key is `key` (its first day, YYYY-MM-DD)."""
        period = cls.containing(cadence, date.fromisoformat(key))
        if period.key != key:
            raise ValueError(f"{key} does not start a {cadence} period (that is {period.key})")
        return period

    @property
    def key(self) -> str:
        return self.start.isoformat()

    def previous(self) -> Period:
        return Period.containing(self.cadence, self.start - timedelta(days=1))

    @property
    def words(self) -> str:
        """ "November 2026", or "the week of 23 November 2026"."""
        if self.cadence == "monthly":
            return f"{self.start:%B %Y}"
        return f"the week of {self.start.day} {self.start:%B %Y}"


@dataclass(frozen=True)
class Digest:
    """One message ready to send: its Subject, a plain-text and an HTML part, its attachments.
    The sender adds From, To, Date and Message-ID (see smtp.addressed), so the same composed
    digest can go to SMTP or to an .eml file."""

    kind: DigestKind
    period: Period
    audience: str  # BOARD_AUDIENCE, or the agency's canonical name
    to: tuple[str, ...]  # the addresses of the recipients file, as written
    night: date  # the night whose figures it carries: the last one reported in the period
    message: EmailMessage


@dataclass(frozen=True)
class Problem:
    """Why something was not sent or not published, in one line that names the input."""

    audience: str
    problem: str

    def __str__(self) -> str:
        return f"{self.audience}: {self.problem}"
