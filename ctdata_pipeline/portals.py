"""The portal file: which catalogs to harvest and how to read their custom metadata."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ctdata_pipeline.partitions import today_in_new_york

DEFAULT_PORTALS_FILE = Path(__file__).with_name("portals.yaml")
# Where the nights begin when a portal file does not say: the first day of the State Data Plan
# 2025-2026, the period the Board measures (and the oldest archives the tests import).
DEFAULT_FIRST_NIGHT = date(2025, 1, 1)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Fields the metrics know how to use; a custom_fields entry outside this set is a typo.
STANDARD_CUSTOM_FIELDS = frozenset(
    {
        "agency",
        "update_frequency",
        "geographic_unit",
        "temporal_coverage",
        "row_label",
        "contact_email",
        "source_link",
    }
)

# Partition keys may not contain Dagster's separators, so names stay simple.
PORTAL_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
METRIC_ID_PATTERN = re.compile(r"^[A-Z]{2,3}-\d{1,2}$")
DEFAULT_REPORT_TITLE = "Connecticut's open data portals"
DEFAULT_REPORT_TIMEZONE = "America/New_York"


class PortalFileError(ValueError):
    """The portal file cannot be used; the message names the file, the entry and the problem."""


def _aliases_are_one_to_one(aliases: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """`canonical: [variant, ...]`: a variant belongs to one canonical name, and a canonical
    name is nobody's variant (else grouping would depend on the order of the file)."""
    owner: dict[str, str] = {}
    for canonical, variants in aliases.items():
        if not canonical.strip():
            raise ValueError("an agency name is empty")
        for variant in variants:
            if not variant.strip():
                raise ValueError(f"{canonical!r} lists an empty variant")
            if variant in owner and owner[variant] != canonical:
                raise ValueError(
                    f"{variant!r} is listed under both {owner[variant]!r} and {canonical!r}"
                )
            owner[variant] = canonical
    for canonical in aliases:
        if canonical in owner and owner[canonical] != canonical:
            raise ValueError(
                f"{canonical!r} is a canonical name and a variant of {owner[canonical]!r}"
            )
    return aliases


class Target(BaseModel):
    """The plan's target for one metric: `{below: 20}` (a value under 20 meets it) or
    `{above: 80}` (a value over 80 meets it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> Target:
        if (self.below is None) == (self.above is None):
            raise ValueError("give exactly one of below or above")
        return self

    @property
    def level(self) -> float:
        return self.below if self.below is not None else self.above  # type: ignore[return-value]

    @property
    def lower_is_better(self) -> bool:
        return self.below is not None

    def met_by(self, value: float) -> bool:
        return value < self.level if self.lower_is_better else value > self.level


class ReportSettings(BaseModel):
    """How the Board report presents itself: its title and the time zone of its times."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(default=DEFAULT_REPORT_TITLE, min_length=1, max_length=200)
    timezone: str = DEFAULT_REPORT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _timezone_is_known(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{timezone!r} is not an IANA time zone (e.g. America/New_York)"
            ) from None
        return timezone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


DEFAULT_PROBE_USER_AGENT = "ctdata_pipeline"
DEFAULT_PROBE_CONTACT_URL = "https://github.com/ctdata/ctdata_pipeline"


class ProbeSettings(BaseModel):
    """How the metrics v2 probes treat a portal's hosts (metrics.md, "Probes"): how often each
    dataset or URL is probed, how far apart requests to one host are, and who is asking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    probe_interval_days: int = Field(default=7, ge=1, le=365)
    min_interval_seconds: float = Field(default=1.0, ge=0)
    user_agent: str = Field(default=DEFAULT_PROBE_USER_AGENT, min_length=1, max_length=200)
    contact_url: str = DEFAULT_PROBE_CONTACT_URL
    concurrency: int = Field(default=8, ge=1, le=64)  # hosts probed at once
    timeout_seconds: float = Field(default=20.0, gt=0)
    # A host asking for a longer pause than this is left not_checked for the night.
    max_retry_after_seconds: float = Field(default=300.0, ge=0)

    @field_validator("contact_url")
    @classmethod
    def _contact_url_is_a_url(cls, contact_url: str) -> str:
        if urlsplit(contact_url).scheme not in ("http", "https", "mailto"):
            raise ValueError(f"{contact_url!r} must be an http(s):// or mailto: URL")
        return contact_url

    @property
    def user_agent_header(self) -> str:
        """The User-Agent every probe sends: the product and how to reach its operator."""
        return f"{self.user_agent} (+{self.contact_url})"


# A Socrata dataset id ("four by four"): what data.ct.gov shows in a dataset's address.
DATASET_ID_PATTERN = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class PublishSettings(BaseModel):
    """`publish:`: the Socrata datasets the night's board.plan_metrics and agency scorecard
    are upserted into (delivery/open_data.py). Absent: nothing is published."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # scheme + host[:port] of the portal holding the datasets, e.g. https://data.ct.gov
    domain: str
    plan_metrics: str | None = None
    agency_scorecard: str | None = None
    batch_size: int = Field(default=5000, ge=1, le=50000)  # rows per upsert request
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)

    @field_validator("domain")
    @classmethod
    def _domain_is_scheme_and_host(cls, domain: str) -> str:
        parts = urlsplit(domain)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{domain!r} must start with https:// and name a host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"{domain!r} must be scheme + host[:port] only, e.g. https://data.ct.gov"
            )
        # The API key pair goes with every request: never in clear text beyond this machine.
        if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
            raise ValueError(
                f"{domain!r} must use https:// (http:// only for 127.0.0.1 or localhost)"
            )
        return domain.rstrip("/")

    @field_validator("plan_metrics", "agency_scorecard")
    @classmethod
    def _dataset_id_is_a_four_by_four(cls, dataset_id: str | None) -> str | None:
        if dataset_id is not None and not DATASET_ID_PATTERN.match(dataset_id):
            raise ValueError(f"{dataset_id!r} is not a Socrata dataset id such as abcd-1234")
        return dataset_id

    @model_validator(mode="after")
    def _at_least_one_dataset(self) -> PublishSettings:
        if self.plan_metrics is None and self.agency_scorecard is None:
            raise ValueError("name at least one dataset: plan_metrics or agency_scorecard")
        return self

    @property
    def netloc(self) -> str:
        """host[:port], as sodapy wants its `domain` argument."""
        return urlsplit(self.domain).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.domain).scheme

    @property
    def datasets(self) -> dict[str, str]:
        """board table name -> its dataset id, for the tables that are published."""
        named = {"plan_metrics": self.plan_metrics, "agency_scorecard": self.agency_scorecard}
        return {table: dataset for table, dataset in named.items() if dataset is not None}

    def dataset_url(self, dataset_id: str) -> str:
        """The dataset's page on the portal (its permalink)."""
        return f"{self.domain}/d/{dataset_id}"


class Portal(BaseModel):
    """One portal entry of the portal file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["socrata", "dcat"]
    url: str
    domain: str | None = None
    federated_domains: tuple[str, ...] = ()
    custom_fields: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=1000, ge=1, le=10000)
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)
    min_in_scope_ratio: float | None = Field(default=None, ge=0, le=1)
    as_of: bool = False
    # This portal's own agency name variants, on top of the file's (see PortalFile).
    agency_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    probes: ProbeSettings = Field(default_factory=ProbeSettings)
    # "own": one of the Board's portals; "peer": harvested and scored the same way, shown only
    # in the report's comparison with peers (the observatory), never in the Board's sections.
    role: Literal["own", "peer"] = "own"

    _aliases_one_to_one = field_validator("agency_aliases")(_aliases_are_one_to_one)

    @field_validator("name")
    @classmethod
    def _name_is_a_simple_id(cls, name: str) -> str:
        if not PORTAL_NAME_PATTERN.match(name):
            raise ValueError(
                "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return name

    @field_validator("url")
    @classmethod
    def _url_has_scheme_and_host(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} must start with http:// or https:// and name a host")
        return url.rstrip("/") if parts.path in ("", "/") else url

    @field_validator("custom_fields")
    @classmethod
    def _custom_fields_are_standard(cls, custom_fields: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(custom_fields) - STANDARD_CUSTOM_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown standard field(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(STANDARD_CUSTOM_FIELDS))}"
            )
        return custom_fields

    @model_validator(mode="after")
    def _socrata_only_options(self) -> Portal:
        if self.kind == "socrata":
            if urlsplit(self.url).path not in ("", "/"):
                raise ValueError(
                    "a socrata url is scheme + host[:port] only (the harvester adds "
                    "/api/catalog/v1)"
                )
        else:
            for option in ("domain", "federated_domains", "custom_fields"):
                if getattr(self, option):
                    raise ValueError(f"{option} applies to socrata portals only")
        return self

    @property
    def socrata_domain(self) -> str:
        """The Socrata domain whose assets are the portal's own."""
        return self.domain or urlsplit(self.url).hostname or ""

    @property
    def netloc(self) -> str:
        """host[:port] of the portal, as sodapy wants its `domain` argument."""
        return urlsplit(self.url).netloc

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme


class PortalFile(BaseModel):
    """The whole portal file: the portals, where their nights begin, and the defaults of the
    shrink guard and the checks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    portals: tuple[Portal, ...]
    # The first night of every asset's partitions: where history begins (the oldest night
    # stored or to be imported). A night before it cannot be imported until it is moved.
    first_night: date = DEFAULT_FIRST_NIGHT
    min_in_scope_ratio: float = 0.5
    # Asset checks (WARN): in-scope datasets moving by more than this share in one night, and a
    # percentage metric moving by more than this many points in one night.
    in_scope_change_warn: float = 0.10
    metric_change_warn_points: float = 10.0
    # canonical agency name -> the variants the catalogs use for it (every portal's).
    agency_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # metric id (MD-1) -> the plan's target for its headline value.
    targets: dict[str, Target] = Field(default_factory=dict)
    report: ReportSettings = Field(default_factory=ReportSettings)
    # Off when absent: the metrics are published as open data only when the file says where.
    publish: PublishSettings | None = None

    _aliases_one_to_one = field_validator("agency_aliases")(_aliases_are_one_to_one)

    @field_validator("targets")
    @classmethod
    def _targets_name_metric_ids(cls, targets: dict[str, Target]) -> dict[str, Target]:
        # The form only: this shared module sits below the metrics, so the ids are checked
        # against metrics.md's registry where the definitions are built (metrics.targets).
        for metric_id in targets:
            if not METRIC_ID_PATTERN.match(metric_id):
                raise ValueError(f"{metric_id!r} is not a metric id such as MD-1")
        return targets

    @field_validator("first_night", mode="before")
    @classmethod
    def _first_night_is_a_real_date(cls, value: object) -> date:
        # The YAML loader keeps dates as text (see _PortalFileLoader), so a bad date is named.
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not ISO_DATE.match(value):
            raise ValueError(f"must be a date written YYYY-MM-DD, not {value!r}")
        try:
            return date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"{value} is not a real date ({error})") from None

    @field_validator("first_night")
    @classmethod
    def _first_night_is_not_in_the_future(cls, first_night: date) -> date:
        today = today_in_new_york()
        if first_night > today:
            raise ValueError(
                f"{first_night} is in the future (today is {today} in New York): nights begin "
                "at the oldest night stored or to be imported"
            )
        return first_night

    def get(self, name: str) -> Portal:
        for portal in self.portals:
            if portal.name == name:
                return portal
        raise KeyError(f"no portal named {name!r} in the portal file")

    @property
    def names(self) -> list[str]:
        return [portal.name for portal in self.portals]

    @property
    def own_names(self) -> list[str]:
        """The Board's own portals, in the file's order."""
        return [portal.name for portal in self.portals if portal.role == "own"]

    @property
    def peer_names(self) -> list[str]:
        """The peers the Board's portals are compared with, in the file's order."""
        return [portal.name for portal in self.portals if portal.role == "peer"]

    def aliases_for(self, portal: Portal | None) -> dict[str, str]:
        """variant -> canonical agency name on `portal`: the file's aliases, then the portal's
        own (which win for that portal); the file's alone for a portal no longer in the file.
        A canonical name maps to itself."""
        mapping: dict[str, str] = {}
        own = portal.agency_aliases if portal is not None else {}
        for aliases in (self.agency_aliases, own):
            for canonical, variants in aliases.items():
                mapping[canonical] = canonical
                mapping.update(dict.fromkeys(variants, canonical))
        return mapping

    def guard_ratio(self, portal: Portal) -> float:
        """Share of the reference (in-scope datasets, assets) below which a night is refused."""
        if portal.min_in_scope_ratio is not None:
            return portal.min_in_scope_ratio
        return self.min_in_scope_ratio


def load_portal_file(path: Path | str | None = None) -> PortalFile:
    """Read and validate a portal file; raise PortalFileError with one clear message."""
    path = Path(path) if path else DEFAULT_PORTALS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PortalFileError(f"portal file {path}: cannot be read ({error.strerror})") from None
    try:
        document = yaml.load(text, Loader=_PortalFileLoader)  # a SafeLoader
    except yaml.YAMLError as error:
        raise PortalFileError(
            f"portal file {path}: not valid YAML ({yaml_problem(error)})"
        ) from None
    return parse_portal_document(document, source=str(path))


class _PortalFileLoader(yaml.SafeLoader):
    """YAML's safe loader, except that dates stay text: PyYAML turns `2025-02-30` into a bare
    ValueError naming no key, and the portal file's validation says which key is wrong."""


_PortalFileLoader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def yaml_problem(error: yaml.YAMLError) -> str:
    """Where a YAML file went wrong and how, on one line (line and column when known)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{problem}".split())


def parse_portal_document(document: object, source: str) -> PortalFile:
    """Validate an already-parsed portal document (a mapping with a `portals` list)."""
    if not isinstance(document, dict) or "portals" not in document:
        raise PortalFileError(f"portal file {source}: must be a mapping with a 'portals' list")
    entries = document["portals"]
    if not isinstance(entries, list) or not entries:
        raise PortalFileError(f"portal file {source}: 'portals' must be a non-empty list")
    unknown_top = sorted(set(document) - TOP_LEVEL_KEYS)
    if unknown_top:
        raise PortalFileError(f"portal file {source}: unknown key(s) {', '.join(unknown_top)}")

    portals = [_parse_entry(entry, index, source) for index, entry in enumerate(entries)]
    seen: set[str] = set()
    for index, portal in enumerate(portals):
        if portal.name in seen:
            raise PortalFileError(
                f"portal file {source}: portals[{index}] ({portal.name}): the name is used twice"
            )
        seen.add(portal.name)

    options: dict[str, object] = {}
    for section, limits in (("shrink_guard", _GUARD_OPTIONS), ("checks", _CHECK_OPTIONS)):
        try:
            options.update(_section_options(document.get(section) or {}, limits))
        except ValueError as error:
            raise PortalFileError(f"portal file {source}: {section}: {error}") from None
    for key in ("first_night", "agency_aliases", "targets", "report", "publish"):
        if key in document:
            options[key] = document[key]
    try:
        return PortalFile.model_validate({"portals": tuple(portals), **options})
    except ValidationError as error:
        raise PortalFileError(f"portal file {source}: {_first_problem(error)}") from None


TOP_LEVEL_KEYS = frozenset(
    {
        "portals",
        "first_night",
        "shrink_guard",
        "checks",
        "agency_aliases",
        "targets",
        "report",
        "publish",
    }
)
# option -> (smallest, largest) allowed value
_GUARD_OPTIONS = {"min_in_scope_ratio": (0.0, 1.0)}
_CHECK_OPTIONS = {"in_scope_change_warn": (0.0, 1.0), "metric_change_warn_points": (0.0, 100.0)}


def _section_options(section: object, limits: dict[str, tuple[float, float]]) -> dict[str, float]:
    if not isinstance(section, dict) or set(section) - set(limits):
        raise ValueError(f"must be a mapping of {', '.join(limits)}")
    options = {}
    for name, value in section.items():
        low, high = limits[name]
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or not low <= value <= high:
            raise ValueError(f"{name} must be a number from {low:g} to {high:g}")
        options[name] = float(value)
    return options


def _parse_entry(entry: object, index: int, source: str) -> Portal:
    label = f"portals[{index}]"
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        label += f" ({entry['name']})"
    if not isinstance(entry, dict):
        raise PortalFileError(f"portal file {source}: {label}: must be a mapping")
    try:
        return Portal.model_validate(entry)
    except ValidationError as error:
        raise PortalFileError(f"portal file {source}: {label}: {_first_problem(error)}") from None


def _first_problem(error: ValidationError | ValueError) -> str:
    if not isinstance(error, ValidationError):
        return str(error)
    problems = []
    for detail in error.errors():
        field = ".".join(str(part) for part in detail["loc"])
        message = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        elif detail["type"] == "missing":
            message = "is required"
        problems.append(f"{field}: {message}" if field else message)
    return "; ".join(problems)
