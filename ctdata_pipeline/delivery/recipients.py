"""The recipients file (CTDATA_RECIPIENTS): who receives which digest, and how often.

    board: [chair@example.gov, ...]
    agencies:
      Department of Public Health: [dph-data@example.gov]
      Department of Transportation:
        addresses: [dot-data@example.gov]
        send_when_clean: true
    report_url: https://reports.example.gov/ctdata/   # where CTDATA_REPORT_DIR is served
    schedule: {board: monthly, agencies: weekly}

Agencies are matched to the night's agencies through the portal file's agency aliases."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ctdata_pipeline.delivery.model import Cadence, Problem


class RecipientsError(ValueError):
    """The recipients file cannot be used; the message names the file, the key, the problem."""


class AgencyRecipients(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    addresses: tuple[str, ...]
    # Whether the agency hears from us on a period with nothing to fix.
    send_when_clean: bool = False


class DigestSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    board: Cadence = "monthly"
    agencies: Cadence = "weekly"


class RecipientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    board: tuple[str, ...] = ()
    # agency name as the recipients file writes it -> its data officer(s)
    agencies: dict[str, AgencyRecipients] = Field(default_factory=dict)
    report_url: str | None = None
    schedule: DigestSchedule = Field(default_factory=DigestSchedule)


def load_recipients(path: Path) -> RecipientsFile:
    """Read and validate the file; an agency may be a bare list of addresses. One clear
    RecipientsError for a file that cannot be used at all; a malformed address is not such an
    error (address_problem, at send time), so the other messages still go."""
    raise NotImplementedError


def address_problem(address: str) -> str | None:
    """Why `address` cannot be sent to ("... is not an e-mail address: ..."), or None."""
    raise NotImplementedError


def match_agencies(
    recipients: RecipientsFile, agencies: Iterable[str], aliases: Mapping[str, str]
) -> tuple[dict[str, AgencyRecipients], list[Problem]]:
    """canonical agency name of the night -> its recipients, matching each file entry by name
    or through `aliases` (variant -> canonical); an entry naming no agency of the night is a
    Problem ("not an agency of the night's scorecards, nor an alias of one")."""
    raise NotImplementedError
