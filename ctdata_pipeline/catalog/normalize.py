"""From a portal's raw record to a row of `catalog.assets`: the columns (ASSET_COLUMNS), the
DCAT-US rules, and what normalization reports.

Socrata records are normalized in DuckDB (sql/normalize_socrata.sql: a night is a hundred
thousand records on a national portal, too many to walk in Python); DCAT records here, one by
one, because each is validated against the DCAT-US schema with jsonschema. Both follow the
product spec and metrics.md: the agency rule, FR-0 frequency codes, timestamps as UTC, values
empty by the metric conventions (blank after HTML, template leftovers) stored as NULL so the
metric SQL can test `IS NULL`."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ctdata_pipeline.catalog.dcat_schema import dcat_us_errors
from ctdata_pipeline.catalog.frequency import normalize_frequency
from ctdata_pipeline.catalog.text import clean_list, clean_text, has_template
from ctdata_pipeline.portals import Portal

# Bump when a rule below changes, so stored versions are re-normalized instead of reused.
NORMALIZER_VERSION = 5  # 5: FR-0, a text naming two different periods is unknown

ASSET_COLUMNS: dict[str, str] = {
    "asset_type": "VARCHAR",
    "in_scope": "BOOLEAN",
    "scope_note": "VARCHAR",
    "title": "VARCHAR",
    "description": "VARCHAR",
    "description_text": "VARCHAR",
    "agency": "VARCHAR",
    "agency_rule": "VARCHAR",
    "category": "VARCHAR",
    "tags": "VARCHAR[]",
    "license": "VARCHAR",
    "update_frequency_raw": "VARCHAR",
    "update_frequency": "VARCHAR",
    "geographic_unit": "VARCHAR",
    "temporal_coverage": "VARCHAR",
    "row_label": "VARCHAR",
    "contact_name": "VARCHAR",
    "contact_email": "VARCHAR",
    "source_link": "VARCHAR",
    "attribution": "VARCHAR",
    "owner_name": "VARCHAR",
    "provenance": "VARCHAR",
    "source_domain": "VARCHAR",
    "parent_ids": "VARCHAR[]",
    "created_at": "TIMESTAMPTZ",
    "published_at": "TIMESTAMPTZ",
    "updated_at": "TIMESTAMPTZ",
    "data_updated_at": "TIMESTAMPTZ",
    "metadata_updated_at": "TIMESTAMPTZ",
    "columns_total": "INTEGER",
    "columns_described": "INTEGER",
    "url": "VARCHAR",
    "identifier": "VARCHAR",
    "access_level": "VARCHAR",
    "template_fields": "VARCHAR[]",
    "described_by": "VARCHAR",
    "schema_valid": "BOOLEAN",
    "schema_errors": "VARCHAR[]",
}


@dataclass
class NormalizeReport:
    """What normalization noticed across one snapshot, for logs and asset metadata."""

    unmapped_frequencies: Counter[str] = field(default_factory=Counter)
    agency_rules: Counter[str] = field(default_factory=Counter)
    asset_types: Counter[str] = field(default_factory=Counter)
    in_scope: int = 0

    @classmethod
    def from_counts(
        cls, rows: list[tuple[str, bool, str | None, str | None, int]]
    ) -> NormalizeReport:
        """From (asset type, in scope, agency rule, unmapped frequency or None, assets) groups."""
        report = cls()
        for asset_type, in_scope, agency_rule, unmapped_frequency, assets in rows:
            report.asset_types[asset_type] += assets
            if in_scope:
                report.in_scope += assets
                report.agency_rules[agency_rule or "none"] += assets
                if unmapped_frequency is not None:
                    report.unmapped_frequencies[unmapped_frequency] += assets
        return report


def normalizer_key(portal: Portal) -> str:
    """Identifies the rules a row was normalized with: the code version and the portal's
    configuration that the rules read."""
    config = {
        "version": NORMALIZER_VERSION,
        "kind": portal.kind,
        "domain": portal.socrata_domain if portal.kind == "socrata" else None,
        "custom_fields": portal.custom_fields,
    }
    return _digest(json.dumps(config, sort_keys=True))


def normalize_dcat(dataset: dict[str, Any]) -> dict[str, Any]:
    """One data.json `dataset` entry as a row of ASSET_COLUMNS."""
    publisher = _mapping(dataset.get("publisher"))
    contact = _mapping(dataset.get("contactPoint"))
    frequency_raw = clean_text(dataset.get("accrualPeriodicity"))
    frequency, _ = normalize_frequency(frequency_raw)
    publisher_name = clean_text(publisher.get("name"))
    # DCAT has one `modified` date: it stands for both data and metadata updates.
    modified = parse_timestamp(dataset.get("modified"))
    themes = clean_list(dataset.get("theme"))
    schema_errors = dcat_us_errors(dataset)
    row = {
        "asset_type": "dataset",
        "in_scope": True,
        "scope_note": None,
        "title": clean_text(dataset.get("title")),
        **_description(dataset.get("description")),
        "agency": publisher_name,
        "agency_rule": "publisher" if publisher_name else None,
        "category": ", ".join(themes) if themes else None,
        "tags": clean_list(dataset.get("keyword")),
        "license": clean_text(dataset.get("license")),
        "update_frequency_raw": frequency_raw,
        "update_frequency": frequency,
        "geographic_unit": clean_text(dataset.get("spatial")),
        "temporal_coverage": clean_text(dataset.get("temporal")),
        "row_label": None,
        "contact_name": clean_text(contact.get("fn")),
        "contact_email": clean_text(contact.get("hasEmail")),
        "source_link": None,
        "attribution": None,
        "owner_name": None,
        "provenance": None,
        "source_domain": None,
        "parent_ids": [],
        "created_at": parse_timestamp(dataset.get("issued")),
        "published_at": parse_timestamp(dataset.get("issued")),
        "updated_at": modified,
        "data_updated_at": modified,
        "metadata_updated_at": modified,
        "columns_total": None,
        "columns_described": None,
        "url": clean_text(dataset.get("landingPage")) or _url_or_none(dataset.get("identifier")),
        "identifier": clean_text(dataset.get("identifier")),
        "access_level": clean_text(dataset.get("accessLevel")),
        "template_fields": _template_fields(
            {
                "title": dataset.get("title"),
                "description": dataset.get("description"),
                "modified": dataset.get("modified"),
                "issued": dataset.get("issued"),
                "publisher.name": publisher.get("name"),
                "contactPoint.fn": contact.get("fn"),
                "contactPoint.hasEmail": contact.get("hasEmail"),
                "license": dataset.get("license"),
                "identifier": dataset.get("identifier"),
            }
        ),
        "described_by": _url_or_none(dataset.get("describedBy")),
        "schema_valid": not schema_errors,
        "schema_errors": schema_errors,
    }
    return row


EARLIEST_PLAUSIBLE = datetime(1990, 1, 1, tzinfo=UTC)
EPOCH_DIGITS = re.compile(r"\d{9,13}")


def parse_timestamp(value: object) -> datetime | None:
    """A UTC datetime from ISO 8601 text (with or without time; `Z` or offset), or epoch
    seconds/milliseconds (as a number or a string of digits); None for anything else: template
    leftovers, and dates before 1990, which no catalog platform wrote (epoch 0 is a missing
    value saved as a number) and which would make a dataset decades overdue."""
    moment = _timestamp(value)
    return moment if moment is not None and moment >= EARLIEST_PLAUSIBLE else None


def _timestamp(value: object) -> datetime | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str) and EPOCH_DIGITS.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or has_template(text):
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _template_fields(values: dict[str, object]) -> list[str]:
    return sorted(
        name for name, value in values.items() if isinstance(value, str) and has_template(value)
    )


def _description(value: object) -> dict[str, str | None]:
    """The description as published (HTML kept) and as plain text; both None when empty.
    Cleaned once: descriptions are the largest text a catalog holds."""
    text = clean_text(value)
    return {"description": value if text is not None else None, "description_text": text}


def _url_or_none(value: object) -> str | None:
    text = clean_text(value)
    return text if text and text.startswith(("http://", "https://")) else None


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
