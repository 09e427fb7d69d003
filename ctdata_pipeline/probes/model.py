"""What a probe asks and what it got: the shapes the probe engine, the probe assets and the
metrics that read probe results agree on (README, "Probe results")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args

import dagster as dg

# The three kinds of probe (metrics.md, "Version 2 additions").
#   content_date: SoQL max(<column>) of a Socrata dataset's date columns (FR-5)
#   layer_date:   an ArcGIS REST layer's ?f=json edit dates (FR-8)
#   link:         a URL the catalog publishes, HEAD then GET (AC-1)
ProbeKind = Literal["content_date", "layer_date", "link"]
PROBE_KINDS: tuple[ProbeKind, ...] = get_args(ProbeKind)

# How a probe ended. `ok` and `http_error` carry a status code; the others are error classes.
#   not_checked: never sent (robots.txt disallows it, or the host asked us to back off longer
#                than a night can wait); `detail` says which
#   bad_answer:  an answer that is not what the protocol promises (an ArcGIS error JSON with
#                HTTP 200, a SoQL answer that is not a row list)
Outcome = Literal[
    "ok",
    "http_error",
    "timeout",
    "dns",
    "refused",
    "tls",
    "too_many_redirects",
    "not_checked",
    "bad_answer",
    "error",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)


@dataclass(frozen=True)
class ProbeItem:
    """One thing to probe. `target` is the stable key results are kept under: the dataset id
    for content_date, the layer URL for layer_date, the URL itself for link. `url` is what is
    requested (the SoQL resource URL, the layer URL, the link); `columns` are the date columns
    a content_date probe asks about."""

    kind: ProbeKind
    target: str
    url: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeResult:
    """What one probe got. `observed` holds the dates it read: for content_date one
    (column, max) pair per column asked (None where the column is all null); for layer_date
    ("dataLastEditDate" | "lastEditDate", date) for the edit dates the layer states."""

    item: ProbeItem
    probed_at: datetime  # when the request was sent, timezone-aware UTC
    request: str  # what was sent, e.g. "HEAD https://...", "GET ...?$select=max(`d`)"
    outcome: Outcome
    status_code: int | None = None
    final_url: str | None = None  # after redirects
    observed: tuple[tuple[str, datetime | None], ...] = field(default_factory=tuple)
    detail: str = ""
    elapsed_ms: int = 0


# Asset keys of the probes stage and the metrics computed from it, shared by the modules that
# define them and the ones that depend on them.
PROBES_GROUP = "probes"
CONTENT_DATE_PROBES = dg.AssetKey("content_date_probes")
LAYER_DATE_PROBES = dg.AssetKey("layer_date_probes")
LINK_PROBES = dg.AssetKey("link_probes")
PROBE_ASSET_KEYS = (CONTENT_DATE_PROBES, LAYER_DATE_PROBES, LINK_PROBES)
PROBE_PLAN_METRICS = dg.AssetKey("probe_plan_metrics")
BROKEN_LINKS = dg.AssetKey("broken_links")
SILENTLY_STALE = dg.AssetKey("silently_stale")
