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
from urllib.parse import urlsplit

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from ctdata_pipeline.delivery.model import Cadence, Problem
from ctdata_pipeline.portals import yaml_problem


class RecipientsError(ValueError):
    """The recipients file cannot be used; the message names the file, the key, the problem."""


class AgencyRecipients(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    addresses: tuple[str, ...] = Field(min_length=1)
    # Whether the agency hears from us on a period with nothing to fix.
    send_when_clean: StrictBool = False

    @model_validator(mode="before")
    @classmethod
    def _a_bare_list_is_the_addresses(cls, value: object) -> object:
        return {"addresses": value} if isinstance(value, list | tuple) else value


class DigestSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    board: Cadence = "monthly"
    agencies: Cadence = "weekly"


class RecipientsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    board: tuple[str, ...] = ()
    # agency name as the recipients file writes it -> its data officer(s)
    agencies: dict[str, AgencyRecipients] = Field(default_factory=dict)
    # Always ends with "/", so a night's page is report_url + "<night>/report.html".
    report_url: str | None = None
    schedule: DigestSchedule = Field(default_factory=DigestSchedule)

    @field_validator("agencies")
    @classmethod
    def _agency_names_are_not_empty(
        cls, agencies: dict[str, AgencyRecipients]
    ) -> dict[str, AgencyRecipients]:
        if any(not name.strip() for name in agencies):
            raise ValueError("an agency name is empty")
        return agencies

    @field_validator("report_url")
    @classmethod
    def _report_url_is_http(cls, report_url: str | None) -> str | None:
        if report_url is None:
            return None
        parts = urlsplit(report_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{report_url!r} must start with http:// or https:// and name a host")
        return report_url if report_url.endswith("/") else report_url + "/"


def load_recipients(path: Path) -> RecipientsFile:
    """Read and validate the file; an agency may be a bare list of addresses. One clear
    RecipientsError for a file that cannot be used at all; a malformed address is not such an
    error (address_problem, at send time), so the other messages still go."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise RecipientsError(f"recipients file {path}: cannot be read ({why})") from None
    try:
        document = yaml.load(text, Loader=_RecipientsLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise RecipientsError(
            f"recipients file {path}: not valid YAML ({yaml_problem(error)})"
        ) from None
    if not isinstance(document, dict):
        raise RecipientsError(
            f"recipients file {path}: must be a mapping with board, agencies, report_url, schedule"
        )
    try:
        return RecipientsFile.model_validate(document)
    except ValidationError as error:
        raise RecipientsError(f"recipients file {path}: {_first_problem(error)}") from None


class _RecipientsLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice: PyYAML keeps the last one silently,
    and a second entry for one agency would drop the first one's addresses."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in getattr(node, "value", []):
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]


def _first_problem(error: ValidationError) -> str:
    detail = error.errors()[0]
    # A mapping's key problem is reported at "[key]"; the key itself is what to name.
    key = ".".join(str(part) for part in detail["loc"] if part != "[key]")
    message = detail["msg"].removeprefix("Value error, ")
    if detail["type"] == "extra_forbidden":
        message = "unknown key"
    elif detail["type"] == "missing":
        message = "is required"
    elif detail["type"] == "too_short" and key.endswith(".addresses"):
        message = "lists no address"
    return f"{key}: {message}" if key else message


def address_problem(address: str) -> str | None:
    """Why `address` cannot be sent to ("... is not an e-mail address: ..."), or None."""
    try:
        checked = validate_email(address, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        return f"{address!r} is not an e-mail address: {error}"
    # An internationalized domain would need SMTPUTF8 from every server on the way.
    if checked.ascii_email != address:
        return (
            f"{address!r} is not an e-mail address as the SMTP server takes it: "
            f"write it {checked.ascii_email!r}"
        )
    return None


def match_agencies(
    recipients: RecipientsFile, agencies: Iterable[str], aliases: Mapping[str, str]
) -> tuple[dict[str, AgencyRecipients], list[Problem]]:
    """canonical agency name of the night -> its recipients, matching each file entry by name
    or through `aliases` (variant -> canonical); an entry naming no agency of the night is a
    Problem ("not an agency of the night's scorecards, nor an alias of one")."""
    night = set(agencies)
    matched: dict[str, AgencyRecipients] = {}
    problems: list[Problem] = []
    for entry, wanted in recipients.agencies.items():
        canonical = _canonical(entry, night, aliases)
        if canonical is None:
            problems.append(
                Problem(
                    entry,
                    f"the recipients file's agency {entry!r} is neither an agency of the "
                    "night's scorecards nor an alias of one (see agency_aliases in the portal "
                    "file)",
                )
            )
            continue
        before = matched.get(canonical)
        if before is None:
            matched[canonical] = wanted
            continue
        # Two entries for one agency (its name and a variant): both lists receive its digest.
        addresses = tuple(dict.fromkeys((*before.addresses, *wanted.addresses)))
        matched[canonical] = AgencyRecipients(
            addresses=addresses,
            send_when_clean=before.send_when_clean or wanted.send_when_clean,
        )
    return matched, problems


def _canonical(entry: str, night: set[str], aliases: Mapping[str, str]) -> str | None:
    if entry in night:
        return entry
    if aliases.get(entry) in night:
        return aliases[entry]
    # People type names as they say them: case and spacing are not worth a missed digest.
    folded = _fold(entry)
    for name in sorted(night):
        if _fold(name) == folded:
            return name
    for variant, canonical in sorted(aliases.items()):
        if _fold(variant) == folded and canonical in night:
            return canonical
    return None


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())
