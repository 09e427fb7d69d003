"""Benchmark catalogs: the demo generator's data.ct.gov-shaped records at an exact size, and a
night-by-night story in which about 1% of the assets change.

The demo story itself changes about 10% of a catalog every night (every daily dataset gets new
data), so the benchmark takes one night of the generator (scaled up so that it holds at least
`size` assets, then the `size` lowest ids kept: a random sample that keeps the mix of types) and
evolves it itself: every night each asset's view counters move, and `change_rate` of the assets
change for real (new data, a metadata edit, a rename, or a removal replaced by a new asset)."""

from __future__ import annotations

import copy
import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

from ctdata_pipeline.demo.generator import DemoStory, SocrataDemoCatalog
from ctdata_pipeline.partitions import night_instant
from ctdata_pipeline.portals import Portal, parse_portal_document

ASSETS_PER_SCALE = 1118  # assets of a demo catalog at scale 1.0 (640 of them in-scope datasets)
DATASETS_PER_SCALE = 640
DOMAIN = "data.ct.gov"
FEDERATED = "data.hartford.gov"
CUSTOM_FIELDS = {
    "agency": "Agency_Agency",
    "update_frequency": "Details_Update-Frequency",
    "geographic_unit": "Details_Geographic-Unit",
}
PORTAL_NAME = "bench.data.ct.gov"


def portal_entry(url: str, *, as_of: bool) -> dict[str, Any]:
    """The portal file entry of the benchmark portal served at `url`."""
    return {
        "name": PORTAL_NAME,
        "kind": "socrata",
        "url": url,
        "domain": DOMAIN,
        "federated_domains": [FEDERATED],
        "custom_fields": dict(CUSTOM_FIELDS),
        "as_of": as_of,
        "timeout_seconds": 300,
        "max_retries": 1,
    }


def bench_portal(url: str = "http://127.0.0.1:9", *, as_of: bool = True) -> Portal:
    document = {"portals": [portal_entry(url, as_of=as_of)]}
    return parse_portal_document(document, source="the benchmark portal").get(PORTAL_NAME)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _in_scope(record: dict[str, Any]) -> bool:
    resource = record["resource"]
    return (
        resource["type"] == "dataset"
        and resource["provenance"] == "official"
        and not resource["parent_fxf"]
        and record["metadata"]["domain"] == DOMAIN
    )


class BenchCatalog:
    """`size` Discovery API records on `first_night`, evolved one night at a time."""

    def __init__(
        self,
        size: int,
        first_night: date,
        *,
        seed: int = 2025,
        change_rate: float = 0.01,
        in_scope_only: bool = False,
    ) -> None:
        self.size = size
        self.night = first_night
        self.change_rate = change_rate
        self._rng = random.Random(f"bench|{seed}|{size}")
        per_scale = DATASETS_PER_SCALE if in_scope_only else ASSETS_PER_SCALE
        scale = size / per_scale * 1.03 + 0.01
        story = DemoStory(last_night=first_night, nights=1, seed=seed, scale=scale)
        demo = SocrataDemoCatalog(story)
        instant = night_instant(first_night)
        records = demo.records(instant)
        if in_scope_only:
            records = [record for record in records if _in_scope(record)]
        records.sort(key=lambda record: record["resource"]["id"])
        if len(records) < size:
            raise ValueError(f"the demo generator gave {len(records)} records, not {size}")
        self.records: list[dict[str, Any]] = records[:size]
        self._next_id = 0

    def advance(self) -> date:
        """Move to the next night: counters move everywhere, `change_rate` of assets change."""
        self.night += timedelta(days=1)
        instant = night_instant(self.night)
        rng = self._rng
        for record in self.records:
            views = record["resource"]["page_views"]
            daily = max(views["page_views_last_month"] / 30, 0.0)
            added = round(daily * rng.uniform(0.5, 1.5))
            views["page_views_total"] += added
            views["page_views_last_week"] = round(daily * 7 * rng.uniform(0.8, 1.2))
            views["page_views_last_month"] = round(daily * 30 * rng.uniform(0.9, 1.1))
            for key in ("page_views_total", "page_views_last_week", "page_views_last_month"):
                views[f"{key}_log"] = math.log2(views[key] + 1)
        changes = max(1, round(len(self.records) * self.change_rate))
        for position in rng.sample(range(len(self.records)), k=changes):
            self._change(position, instant)
        return self.night

    def _change(self, position: int, instant: datetime) -> None:
        rng = self._rng
        record = self.records[position]
        resource = record["resource"]
        moment = _iso(instant - timedelta(hours=rng.uniform(6, 16)))
        roll = rng.random()
        if roll < 0.6:  # new data
            resource["data_updated_at"] = moment
            resource["publication_date"] = moment
        elif roll < 0.85:  # a metadata edit
            resource["description"] = f"{resource['description']} Reviewed {moment[:10]}."
            resource["metadata_updated_at"] = moment
        elif roll < 0.95:  # a rename
            resource["name"] = f"{resource['name']} (Revised)"
            resource["metadata_updated_at"] = moment
        else:  # removed, and a new asset published in its place
            replacement = copy.deepcopy(record)
            replacement["resource"]["id"] = self._new_id()
            replacement["resource"]["createdAt"] = moment
            replacement["resource"]["name"] = f"{resource['name']} (New)"
            self.records[position] = replacement
            return
        resource["updatedAt"] = moment

    def _new_id(self) -> str:
        # Ids the generator never makes: it draws from letters and 2-9; these start with "0".
        self._next_id += 1
        digits = f"{self._next_id:07d}"
        return f"0{digits[:3]}-{digits[3:]}"

    def answer(self, as_of: date | None) -> tuple[list[dict[str, Any]], datetime]:
        """A PortalServer source: tonight's records, as of tonight (or now, for a live-looking
        portal; the benchmark serves one night at a time)."""
        if as_of is not None:
            return self.records, night_instant(as_of)
        return self.records, datetime.now(UTC)
