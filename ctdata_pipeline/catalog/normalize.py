"""From a portal's raw record to a row of `catalog.assets`.

One function per portal kind, each returning the same columns (ASSET_COLUMNS). Rules come from
the product spec and metrics.md: the Socrata in-scope test, the agency rule (custom field, then
attribution, then owner; DCAT: publisher), FR-0 frequency codes, column counts without system
columns, timestamps as UTC. Values that are empty by the metric conventions (blank after HTML,
template leftovers) are stored as NULL, so the metric SQL can test `IS NULL`."""

from __future__ import annotations

import copy
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
NORMALIZER_VERSION = 3

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
# Numbers that move every night; kept per night, apart from the (deduplicated) record.
COUNTER_COLUMNS = ("views_last_week", "views_last_month", "views_total", "downloads_total")
_PAGE_VIEW_KEYS = {
    "views_last_week": "page_views_last_week",
    "views_last_month": "page_views_last_month",
    "views_total": "page_views_total",
}


@dataclass
class NormalizeReport:
    """What normalization noticed across one snapshot, for logs and asset metadata."""

    unmapped_frequencies: Counter[str] = field(default_factory=Counter)
    agency_rules: Counter[str] = field(default_factory=Counter)
    asset_types: Counter[str] = field(default_factory=Counter)
    in_scope: int = 0

    def add(self, row: dict[str, Any], mapped_frequency: bool) -> None:
        self.asset_types[row["asset_type"]] += 1
        if row["in_scope"]:
            self.in_scope += 1
            self.agency_rules[row["agency_rule"] or "none"] += 1
            if not mapped_frequency:
                self.unmapped_frequencies[row["update_frequency_raw"]] += 1


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


def split_counters(
    portal: Portal, record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, int | None]]:
    """(the record without its nightly counters, the counters)."""
    if portal.kind != "socrata":
        return record, dict.fromkeys(COUNTER_COLUMNS)
    resource = record.get("resource") if isinstance(record.get("resource"), dict) else {}
    page_views = resource.get("page_views") if isinstance(resource.get("page_views"), dict) else {}
    counters = {column: _int(page_views.get(key)) for column, key in _PAGE_VIEW_KEYS.items()}
    counters["downloads_total"] = _int(resource.get("download_count"))
    if "page_views" not in resource and "download_count" not in resource:
        return record, counters
    stable = dict(record)
    stable["resource"] = {
        key: value for key, value in resource.items() if key not in ("page_views", "download_count")
    }
    return stable, counters


def merge_counters(record: dict[str, Any], counters: dict[str, Any]) -> dict[str, Any]:
    """The record as harvested, from its stored form and the night's counters (the `_log`
    page-view values are recomputed as log2(n + 1), the way Socrata derives them)."""
    if not isinstance(record.get("resource"), dict):
        return record
    merged = copy.deepcopy(record)
    resource = merged["resource"]
    page_views = {}
    for column, key in _PAGE_VIEW_KEYS.items():
        value = counters.get(column)
        if value is not None:
            page_views[key] = value
            page_views[f"{key}_log"] = math.log2(value + 1)
    if page_views:
        resource["page_views"] = page_views
    if counters.get("downloads_total") is not None:
        resource["download_count"] = counters["downloads_total"]
    return merged


def record_hash(stable_record: dict[str, Any]) -> str:
    return _digest(json.dumps(stable_record, sort_keys=True, ensure_ascii=False))


def normalize(portal: Portal, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(row, frequency mapped) for one raw record of `portal`."""
    if portal.kind == "socrata":
        return normalize_socrata(portal, record)
    return normalize_dcat(record)


def normalize_socrata(portal: Portal, result: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    resource = _mapping(result.get("resource"))
    classification = _mapping(result.get("classification"))
    metadata = _mapping(result.get("metadata"))
    owner = _mapping(result.get("owner"))
    custom = _custom_fields(portal, classification.get("domain_metadata"))

    asset_type = clean_text(resource.get("type")) or "unknown"
    source_domain = clean_text(metadata.get("domain"))
    provenance = clean_text(resource.get("provenance"))
    parent_ids = clean_list(resource.get("parent_fxf"))
    scope_note = _socrata_scope_note(portal, asset_type, source_domain, provenance, parent_ids)

    agency, agency_rule = _first_present(
        ("custom_field", custom.get("agency")),
        ("attribution", resource.get("attribution")),
        ("owner", owner.get("display_name") or owner.get("displayName")),
    )
    frequency_raw = clean_text(custom.get("update_frequency"))
    frequency, mapped = normalize_frequency(frequency_raw)
    columns_total, columns_described = _column_counts(resource)
    row = {
        "asset_type": asset_type,
        "in_scope": scope_note is None,
        "scope_note": scope_note,
        "title": clean_text(resource.get("name")),
        **_description(resource.get("description")),
        "agency": agency,
        "agency_rule": agency_rule,
        "category": clean_text(classification.get("domain_category")),
        "tags": clean_list(classification.get("domain_tags")),
        "license": clean_text(metadata.get("license")),
        "update_frequency_raw": frequency_raw,
        "update_frequency": frequency,
        "geographic_unit": clean_text(custom.get("geographic_unit")),
        "temporal_coverage": clean_text(custom.get("temporal_coverage")),
        "row_label": clean_text(custom.get("row_label")),
        "contact_name": None,
        "contact_email": clean_text(custom.get("contact_email") or resource.get("contact_email")),
        "source_link": clean_text(custom.get("source_link")),
        "attribution": clean_text(resource.get("attribution")),
        "owner_name": clean_text(owner.get("display_name") or owner.get("displayName")),
        "provenance": provenance,
        "source_domain": source_domain,
        "parent_ids": parent_ids,
        "created_at": parse_timestamp(resource.get("createdAt")),
        "published_at": parse_timestamp(resource.get("publication_date")),
        "updated_at": parse_timestamp(resource.get("updatedAt")),
        "data_updated_at": parse_timestamp(resource.get("data_updated_at")),
        "metadata_updated_at": parse_timestamp(resource.get("metadata_updated_at")),
        "columns_total": columns_total,
        "columns_described": columns_described,
        "url": clean_text(result.get("permalink")) or clean_text(result.get("link")),
        "identifier": clean_text(resource.get("id")),
        "access_level": None,
        "template_fields": _template_fields(
            {"name": resource.get("name"), "description": resource.get("description")}
        ),
        "described_by": None,
        "schema_valid": None,  # DCAT-US validity applies to DCAT feeds
        "schema_errors": [],
    }
    return row, mapped


def _socrata_scope_note(
    portal: Portal,
    asset_type: str,
    source_domain: str | None,
    provenance: str | None,
    parent_ids: list[str],
) -> str | None:
    """None when the asset is an in-scope dataset, else why it is counted in the inventory only."""
    if asset_type != "dataset":
        return f"not a dataset ({asset_type})"
    if source_domain != portal.socrata_domain:
        return f"federated from {source_domain or 'an unknown domain'}"
    if provenance not in (None, "official"):
        return f"{provenance} asset"
    if parent_ids:
        return "derived view"
    return None


def normalize_dcat(dataset: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    publisher = _mapping(dataset.get("publisher"))
    contact = _mapping(dataset.get("contactPoint"))
    frequency_raw = clean_text(dataset.get("accrualPeriodicity"))
    frequency, mapped = normalize_frequency(frequency_raw)
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
    return row, mapped


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


def _column_counts(resource: dict[str, Any]) -> tuple[int | None, int | None]:
    """(columns, described columns), leaving out system columns (field names starting with
    ':'). A description counts when non-empty and not just the column's name again."""
    field_names = resource.get("columns_field_name")
    if not isinstance(field_names, list):
        return None, None
    names = _aligned(resource.get("columns_name"), len(field_names))
    descriptions = _aligned(resource.get("columns_description"), len(field_names))
    total = described = 0
    for field_name, name, description in zip(field_names, names, descriptions, strict=True):
        if isinstance(field_name, str) and field_name.startswith(":"):
            continue
        total += 1
        text = clean_text(description)
        if text is not None and text.casefold() != (clean_text(name) or "").casefold():
            described += 1
    return total, described


def _aligned(values: object, length: int) -> list[Any]:
    values = values if isinstance(values, list) else []
    return (values + [None] * length)[:length]


def _custom_fields(portal: Portal, domain_metadata: object) -> dict[str, Any]:
    """Standard field -> value, through the portal's custom_fields key mapping."""
    if not isinstance(domain_metadata, list):
        return {}
    by_key = {
        entry.get("key"): entry.get("value") for entry in domain_metadata if isinstance(entry, dict)
    }
    return {standard: by_key.get(key) for standard, key in portal.custom_fields.items()}


def _first_present(*candidates: tuple[str, object]) -> tuple[str | None, str | None]:
    for rule, value in candidates:
        text = clean_text(value)
        if text is not None:
            return text, rule
    return None, None


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


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
