"""Text from portals: HTML stripped, entities decoded, template leftovers recognised.

The metric conventions call a value empty when it is blank after stripping HTML tags, decoding
entities (`&nbsp;` included) and trimming, or when it is only an unresolved template such as
`{{orgContactEmail}}` (what ArcGIS Hub leaves when a value is missing)."""

from __future__ import annotations

import html
import re

import nh3

TEMPLATE = re.compile(r"\{\{[^{}]*\}\}")
WHITESPACE = re.compile(r"\s+")
HAS_MARKUP = re.compile(r"[<&]")


def html_to_text(value: str) -> str:
    """Plain text of a possibly-HTML string, whitespace collapsed (scripts and styles dropped)."""
    if HAS_MARKUP.search(value):
        value = html.unescape(nh3.clean(value, tags=set()))
    return WHITESPACE.sub(" ", value).strip()


def has_template(value: str) -> bool:
    return bool(TEMPLATE.search(value))


def clean_text(value: object) -> str | None:
    """The plain text of a portal string, or None when it is empty by the convention."""
    if not isinstance(value, str):
        return None
    text = html_to_text(value)
    if not TEMPLATE.sub("", text).strip():
        return None
    return text


def clean_list(values: object) -> list[str]:
    """Non-empty plain-text items of a portal list (a lone string counts as one item)."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    cleaned = (clean_text(value) for value in values)
    return [value for value in cleaned if value is not None]
