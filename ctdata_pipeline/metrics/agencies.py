"""Agency names: the portal file's `agency_aliases:` applied to the catalogs' names, and the rule
that finds names which are likely one agency but are not reconciled yet.

The metrics group by the canonical name and keep the name as published on every per-dataset row
(`agency_as_published`); catalog.assets keeps the name as published alone. The mapping reaches
SQL as two list parameters, never as SQL text (the names are portal data)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from itertools import product
from typing import Any

import duckdb

# SQL: the canonical name of `name` under the bound aliases, NULL when it has none.
CANONICAL_AGENCY_MACRO = (
    "CREATE OR REPLACE TEMP MACRO canonical_agency(name, variants, canonicals) AS "
    "list_extract(canonicals::VARCHAR[], list_position(variants::VARCHAR[], name))"
)

# Words that name no agency in particular, dropped before names are compared.
_FILLER = frozenset({"the", "and", "of", "ct", "connecticut", "gis"})
_PHRASES = (
    (re.compile(r"\bstate of\b"), " "),
    (re.compile(r"\bopen data\b"), " "),
    (re.compile(r"\b(department|dept)\b"), " "),
)
_WORD = re.compile(r"[^\W_]+")


def alias_parameters(aliases: Mapping[str, str]) -> dict[str, list[str]]:
    """The aliases as the SQL parameters `alias_variants` and `alias_canonicals` (position i of
    one is position i of the other), for `canonical_agency(agency, $alias_variants,
    $alias_canonicals)`."""
    variants = sorted(aliases)
    return {
        "alias_variants": variants,
        "alias_canonicals": [aliases[variant] for variant in variants],
    }


def define_canonical_agency(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(CANONICAL_AGENCY_MACRO)


def _words(name: str) -> list[str]:
    """The name lower-cased, punctuation dropped, as words."""
    return _WORD.findall(name.lower().replace(".", ""))


def _core(name: str) -> str:
    """What is left of the name to compare: no "CT", "Connecticut", "State of", "Department
    (of)", "Dept.", "Open Data", "GIS", "the", "and", "of"."""
    text = " ".join(_words(name))
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return " ".join(word for word in text.split() if word not in _FILLER)


def _acronym(name: str) -> str | None:
    """The acronym a name is, if its core is one word of two letters or more written in
    capitals as published ("CT DEEP", "DEEP Open Data", "DMV")."""
    core = _core(name)
    if " " in core or len(core) < 2:
        return None
    published = {word.lower(): word for word in re.findall(r"[^\W_]+", name)}
    word = published.get(core, "")
    return core if word.isupper() and word.isalpha() else None


def _initials(name: str) -> set[str]:
    """The acronyms a long name could be written as: the initials of its words but "the" and
    "of", with and without "and", "Department"/"Dept" and "CT"/"Connecticut"/"State"."""
    words = [word for word in _words(name) if word not in {"the", "of"}]
    if len(words) < 2:
        return set()
    optional = ({"and"}, {"department", "dept"}, {"ct", "connecticut", "state"})
    found = set()
    for drops in product((False, True), repeat=len(optional)):
        dropped = set().union(*(group for group, drop in zip(optional, drops, strict=True) if drop))
        kept = [word for word in words if word not in dropped]
        if len(kept) >= 2:
            found.add("".join(word[0] for word in kept))
    return found


def likely_agency_variants(
    names: Iterable[str | None], aliases: Mapping[str, str] | None = None
) -> list[tuple[str, ...]]:
    """Groups of agency names that are likely one agency and not yet reconciled, for a person
    to confirm (and then add to `agency_aliases:`).

    Two names are likely one agency when, lower-cased and without punctuation, "CT",
    "Connecticut", "State of", "Department of" / "Dept. of" / "Dept", "Open Data", "GIS", "the",
    "and" and "of", their words are the same ("CT Department of Transportation", "Department of
    Transportation"); or when one is an acronym (one word in capitals once those words are gone:
    "CT DEEP", "DEEP Open Data", "DMV") and the other's initials spell it, with or without
    "Department", "and" and "CT" ("Department of Energy and Environmental Protection": DEEP or
    EEP; "Department of Motor Vehicles": DMV) and spell no other name's. Names that only share
    initials, or share a word, are not grouped ("Department of Labor" and "Department of Public
    Health" stay apart).

    `names` are the names as published on a night; `aliases` is {variant: canonical}
    (PortalFile.aliases_for). A name counts as its canonical name: a group is returned when it
    holds two canonical names or more, as those names (the longest first, as a suggestion for
    the canonical one, then alphabetical); groups are sorted by their first name."""
    aliases = dict(aliases or {})
    seen = {name.strip() for name in names if name and name.strip()}
    nodes = sorted(seen | {aliases[name] for name in seen if name in aliases})
    parent = {name: name for name in nodes}

    def root(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def join(a: str, b: str) -> None:
        parent[root(a)] = root(b)

    by_core: dict[str, str] = {}
    by_initials: dict[str, list[str]] = {}
    for name in nodes:
        if name in aliases:
            join(name, aliases[name])
        core = _core(name)
        if not core:
            continue
        if core in by_core:
            join(name, by_core[core])
        else:
            by_core[core] = name
        if _acronym(name) is None:
            for initials in _initials(name):
                by_initials.setdefault(initials, []).append(name)
    for name in nodes:
        long_names = by_initials.get(_acronym(name) or "", [])
        # An acronym that could spell two different agencies ("SS": Social Services, Secretary
        # of the State) is left for a person to place.
        if len({_core(long_name) for long_name in long_names}) == 1:
            for long_name in long_names:
                join(name, long_name)

    groups: dict[str, set[str]] = {}
    for name in nodes:
        groups.setdefault(root(name), set()).add(aliases.get(name, name))
    found = [
        tuple(sorted(canonicals, key=lambda n: (-len(n), n)))
        for canonicals in groups.values()
        if len(canonicals) > 1
    ]
    return sorted(found)


def published_agency_names(
    conn: duckdb.DuckDBPyConnection, portal: str, snapshot_date: date
) -> list[str]:
    """The agency names a portal's night published, as published (metrics.datasets)."""
    rows: list[Any] = conn.execute(
        "SELECT DISTINCT agency_as_published FROM metrics.datasets "
        "WHERE portal = ? AND snapshot_date = ? AND agency_as_published IS NOT NULL "
        "ORDER BY 1",
        [portal, snapshot_date],
    ).fetchall()
    return [name for (name,) in rows]
