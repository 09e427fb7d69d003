"""Dataset identity across a change in the form of its identifier (metrics.md, "Dataset identity").

ArcGIS Hub changed the identifiers of every dataset of its feeds twice in 2022
(`.../datasets/<itemId>_<layer>` to `.../datasets/<owner>::<slug>`, then to
`.../maps/<owner>::<slug>`): read id by id, each change is the whole catalog removed and added
again, which breaks INV-2, FR-6 and every trend. So when a night holds an id its previous
snapshot did not, that id is matched to one that disappeared, by the spec's rules in order:

1. `layer_url`: the same ArcGIS REST layer (or service) URL among the distributions;
2. `hub_item`: the same Hub item id (`<itemId>` or `<itemId>_<layer>`) in the identifier,
   landing page or distribution URLs;
3. `title_publisher`: the same title and publisher (agency), whitespace and case aside.

Matches are one-to-one: a key that several new or several disappeared ids share matches none
of them under that rule (the next rule may still tell them apart). A match is stored in
`catalog.rekeyed` (night, new id, previous id, the rule), which `catalog.changes` reads as
'rekeyed' rather than removed + added. `catalog.asset_identity` maps every id of a chain of
rekeyings to the id the dataset was first seen under (`dataset_id`), so per-dataset history
(FR-6's cadence) follows the dataset; an id never rekeyed has no row (it is its own identity).

Both tables are kept as nights are written (write.py): writing a night matches it against its
previous snapshot and matches the following night again (its previous snapshot may have just
changed), then rebuilds the portal's identity map. The tables are created, and filled for the
nights already stored, by migrations/0004_dataset_identity.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from ctdata_pipeline.warehouse import scalar

# An ArcGIS REST service or one of its layers: `.../rest/services/[folder/]name/<Type>[/<n>]`.
REST_LAYER = re.compile(
    r"^(https?://[^?#]*?/rest/services/(?:[^?#]*/)?[^/?#]+/"
    r"(?:FeatureServer|MapServer|ImageServer|SceneServer|VectorTileServer)(?:/\d+)?)/*(?:[?#]|$)",
    re.IGNORECASE,
)
# A Hub / ArcGIS Online item id (32 hex digits), with the layer where the URL names one.
HUB_ITEM_ID = re.compile(r"(?<![0-9a-f])([0-9a-f]{32})(?:_(\d+))?(?![0-9a-f])", re.IGNORECASE)

RULES = ("layer_url", "hub_item", "title_publisher")


@dataclass(frozen=True)
class Candidate:
    """What identifies one dataset beyond its id: the URLs its record names (DCAT's identifier
    and landing page; its distributions' accessURL and downloadURL) and its title and agency
    (publisher) as normalized."""

    asset_id: str
    title: str | None
    agency: str | None
    page_urls: tuple[str, ...] = ()
    distribution_urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rekeying:
    """Tonight's `asset_id` is the dataset that was `previous_asset_id`, by rule `matched_by`."""

    asset_id: str
    previous_asset_id: str
    matched_by: str


def _urls(urls: Iterable[str | None]) -> list[str]:
    return [url.strip() for url in urls if isinstance(url, str) and url.strip()]


def layer_urls(candidate: Candidate) -> set[str]:
    """The ArcGIS REST layer/service URLs among the distributions, without query, lowercased
    (ArcGIS Server paths are case-insensitive)."""
    found = set()
    for url in _urls(candidate.distribution_urls):
        if match := REST_LAYER.match(url):
            found.add(re.sub(r"^https?://", "", match.group(1), flags=re.IGNORECASE).lower())
    return found


def hub_items(candidate: Candidate) -> set[str]:
    """The Hub item ids (`<item>` or `<item>_<layer>`) the identifier and URLs name."""
    return {
        match.group(1).lower() + (f"_{match.group(2)}" if match.group(2) else "")
        for url in _urls((*candidate.page_urls, *candidate.distribution_urls))
        for match in HUB_ITEM_ID.finditer(url)
    }


def _folded(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def title_publisher(candidate: Candidate) -> set[tuple[str, str]]:
    """The title and publisher, whitespace and case aside; none for an untitled dataset."""
    title = _folded(candidate.title)
    return {(title, _folded(candidate.agency))} if title else set()


KEYS: dict[str, Callable[[Candidate], set[Any]]] = {
    "layer_url": layer_urls,
    "hub_item": hub_items,
    "title_publisher": title_publisher,
}


def match_ids(new: Iterable[Candidate], gone: Iterable[Candidate]) -> list[Rekeying]:
    """Each new id matched to at most one disappeared id and back, rule by rule in order: under
    a rule, a new id and a disappeared one match when every key of each that the other side
    holds at all is held by exactly the other one. Linear in the keys, however many ids share
    one (a catalog of identical titles is not a quadratic walk)."""
    new_left = {c.asset_id: c for c in new}
    gone_left = {c.asset_id: c for c in gone}
    matches: list[Rekeying] = []
    for rule in RULES:
        keys_of = KEYS[rule]
        new_keys = {asset_id: keys_of(c) for asset_id, c in new_left.items()}
        gone_keys = {asset_id: keys_of(c) for asset_id, c in gone_left.items()}
        new_holders, gone_holders = _holders(new_keys), _holders(gone_keys)
        for asset_id in sorted(new_keys):
            previous = _sole_holder(gone_holders, new_keys[asset_id])
            if previous is not None and _sole_holder(new_holders, gone_keys[previous]) == asset_id:
                matches.append(Rekeying(asset_id, previous, rule))
        for match in matches:
            new_left.pop(match.asset_id, None)
            gone_left.pop(match.previous_asset_id, None)
    return matches


def _holders(keys_by_id: Mapping[str, set[Any]]) -> dict[Any, set[str]]:
    holders: dict[Any, set[str]] = {}
    for asset_id, keys in keys_by_id.items():
        for key in keys:
            holders.setdefault(key, set()).add(asset_id)
    return holders


def _sole_holder(holders: Mapping[Any, set[str]], keys: set[Any]) -> str | None:
    """The one id holding every one of `keys` that is held at all; None if none or several."""
    sole = None
    for key in keys:
        held = holders.get(key)
        if not held:
            continue
        if len(held) > 1:
            return None
        (holder,) = held
        if sole is not None and holder != sole:
            return None
        sole = holder
    return sole


def _candidates(
    conn: duckdb.DuckDBPyConnection, portal: str, night: date, other: date
) -> list[Candidate]:
    """The assets of `night` whose id `other` does not hold, with the URLs their records name
    (read in DuckDB: a night when every id changes is the whole catalog's records)."""
    rows = conn.execute(
        """
        SELECT m.asset_id, v.title, v.agency,
            list_filter([json_extract_string(v.record, '$.identifier'),
                         json_extract_string(v.record, '$.landingPage')], u -> u IS NOT NULL),
            list_filter(list_concat(
                json_extract_string(v.record, '$.distribution[*].accessURL'),
                json_extract_string(v.record, '$.distribution[*].downloadURL')
            ), u -> u IS NOT NULL)
        FROM catalog.snapshot_assets AS m
        JOIN catalog.asset_versions AS v ON v.version_id = m.version_id AND v.portal = m.portal
        WHERE m.portal = $portal AND m.snapshot_date = $night
          AND m.asset_id NOT IN (
              SELECT asset_id FROM catalog.snapshot_assets
              WHERE portal = $portal AND snapshot_date = $other
          )
        """,
        {"portal": portal, "night": night, "other": other},
    ).fetchall()
    return [
        Candidate(asset_id, title, agency, tuple(pages or ()), tuple(distributions or ()))
        for asset_id, title, agency, pages, distributions in rows
    ]


def _night_before(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> date | None:
    return scalar(
        conn,
        "SELECT max(snapshot_date) FROM catalog.snapshots WHERE portal = ? AND snapshot_date < ?",
        [portal, night],
    )


def _night_after(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> date | None:
    return scalar(
        conn,
        "SELECT min(snapshot_date) FROM catalog.snapshots WHERE portal = ? AND snapshot_date > ?",
        [portal, night],
    )


def match_night(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> list[Rekeying]:
    """Store (replacing) the night's rekeyings against the portal's previous snapshot."""
    conn.execute(
        "DELETE FROM catalog.rekeyed WHERE portal = ? AND snapshot_date = ?", [portal, night]
    )
    previous = _night_before(conn, portal, night)
    if previous is None:
        return []
    matches = match_ids(
        _candidates(conn, portal, night, previous), _candidates(conn, portal, previous, night)
    )
    if matches:
        conn.executemany(
            "INSERT INTO catalog.rekeyed VALUES (?, ?, ?, ?, ?)",
            [[portal, night, m.asset_id, m.previous_asset_id, m.matched_by] for m in matches],
        )
    return matches


def identity_map(
    rekeyings: Iterable[tuple[date, str, str]], first_seen: Mapping[str, date]
) -> dict[str, str]:
    """{asset id: dataset id} for every id in a chain of (night, id, previous id) rekeyings:
    the ids of one chain (or of a loop, an id that came back) share the id that was seen
    first (the smallest of those first seen the same night)."""
    parent: dict[str, str] = {}

    def root(asset_id: str) -> str:
        while parent.setdefault(asset_id, asset_id) != asset_id:
            parent[asset_id] = parent[parent[asset_id]]
            asset_id = parent[asset_id]
        return asset_id

    for _night, asset_id, previous in rekeyings:
        a, b = root(asset_id), root(previous)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[str, list[str]] = {}
    for asset_id in list(parent):
        groups.setdefault(root(asset_id), []).append(asset_id)
    mapping = {}
    for members in groups.values():
        first = min(members, key=lambda m: (first_seen.get(m, date.max), m))
        mapping.update({member: first for member in members})
    return mapping


def rebuild_identity(conn: duckdb.DuckDBPyConnection, portal: str) -> None:
    """Rebuild the portal's `catalog.asset_identity` from its stored rekeyings."""
    conn.execute("DELETE FROM catalog.asset_identity WHERE portal = ?", [portal])
    rekeyings = conn.execute(
        "SELECT snapshot_date, asset_id, previous_asset_id FROM catalog.rekeyed "
        "WHERE portal = ? ORDER BY snapshot_date",
        [portal],
    ).fetchall()
    if not rekeyings:
        return
    first_seen = dict(
        conn.execute(
            """
            SELECT asset_id, min(snapshot_date) FROM catalog.snapshot_assets
            WHERE portal = $portal AND asset_id IN (
                SELECT asset_id FROM catalog.rekeyed WHERE portal = $portal
                UNION SELECT previous_asset_id FROM catalog.rekeyed WHERE portal = $portal
            )
            GROUP BY asset_id
            """,
            {"portal": portal},
        ).fetchall()
    )
    conn.executemany(
        "INSERT INTO catalog.asset_identity VALUES (?, ?, ?)",
        [
            [portal, asset_id, dataset_id]
            for asset_id, dataset_id in sorted(identity_map(rekeyings, first_seen).items())
        ],
    )


def night_written(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> None:
    """After `night` is (re)written: match it and the night after it, rebuild the map."""
    match_night(conn, portal, night)
    if (following := _night_after(conn, portal, night)) is not None:
        match_night(conn, portal, following)
    rebuild_identity(conn, portal)


def rebuild_rekeyings(conn: duckdb.DuckDBPyConnection, portal: str) -> None:
    """Match every stored night of the portal again (a file stored before identity was kept)."""
    nights = conn.execute(
        "SELECT snapshot_date FROM catalog.snapshots WHERE portal = ? ORDER BY 1", [portal]
    ).fetchall()
    for (night,) in nights:
        match_night(conn, portal, night)
    rebuild_identity(conn, portal)


RULE_WORDS = {
    "layer_url": "by ArcGIS REST layer URL",
    "hub_item": "by Hub item id",
    "title_publisher": "by title and publisher",
}


def rekeyed_summary(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> str | None:
    """The night's rekeyings in words (`ctdata import` prints it), None when there are none."""
    counts = dict(
        conn.execute(
            "SELECT matched_by, count(*) FROM catalog.rekeyed "
            "WHERE portal = ? AND snapshot_date = ? GROUP BY matched_by",
            [portal, night],
        ).fetchall()
    )
    if not counts:
        return None
    total = sum(counts.values())
    how = ", ".join(f"{counts[rule]} {RULE_WORDS[rule]}" for rule in RULES if rule in counts)
    return (
        f"{total} {'dataset' if total == 1 else 'datasets'} rekeyed (a new id for a dataset "
        f"of the previous snapshot, not removed + added): {how}"
    )
