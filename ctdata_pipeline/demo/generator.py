"""Deterministic demo catalogs: a data.ct.gov-shaped Socrata catalog and a geodata.ct.gov-shaped
ArcGIS Hub DCAT-US feed, each answerable "as of" any instant.

The catalogs follow a story over the demo's nights (DemoStory): datasets are added, removed and
renamed, agencies fix missing metadata, data updates arrive on schedule, late, or stop
arriving. The same seed and story always give the same catalogs, night for night.

What the metrics v2 probes find is part of the story too (demo/answers.py serves it): a quarter
of the Socrata datasets have date columns whose newest dates SoQL answers, some of them
silently stale (re-uploaded on schedule with the same old rows); the Hub layers' edit dates,
with `modified` often a metadata date; links that answer, move, vanish, time out or refuse HEAD;
and one night Hub changes the form of every identifier. The new randomness has seeds of its
own, so the v1 story is the same draw for draw."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ctdata_pipeline.demo import vocabulary as words
from ctdata_pipeline.partitions import night_instant

NEW_YORK = ZoneInfo("America/New_York")
EPOCH = datetime(2014, 3, 1, tzinfo=UTC)  # data.ct.gov went live in 2014
DEMO_NIGHTS = 7  # a week: enough for trends, quick enough to run on a laptop in well under a minute
SOCRATA_DOMAIN = "data.ct.gov"
HUB_SITE = "https://geodata.ct.gov"
ID_CHARACTERS = "abcdefghijkmnpqrstuvwxyz23456789"
DATE_TYPE = "Calendar date"  # columns_datatype of a date column in the Discovery API
CONTENT_SHARE = 0.25  # datasets whose date columns are kept as dates (the others: text)
UNSTARTED = "http://127.0.0.1:9"  # the discard port: a host before its server runs
# The loopback hosts besides the two portals, each its own server (politeness is per host):
#   services1, services2: ArcGIS REST layers; downloads: Hub's file downloads;
#   sites: agencies' web sites; legacy: an old file server that refuses HEAD; slow: a site
#   slower than any probe waits; robots: a site whose robots.txt disallows /internal/;
#   down: a port nothing listens on.
HOST_KEYS = ("services1", "services2", "downloads", "sites", "legacy", "slow", "robots", "down")


@dataclass(frozen=True)
class DemoHosts:
    """Where each demo host answers: key ("hub", "socrata" or a HOST_KEYS key) -> base URL."""

    bases: tuple[tuple[str, str], ...] = ()

    def url(self, key: str, path: str) -> str:
        return dict(self.bases).get(key, UNSTARTED) + path


@dataclass(frozen=True)
class LinkPlan:
    """How a linked URL answers over the story (demo/answers.py serves it):
    ok, gone (404), moved (301 to `to`), loop (302 to `to`, which points back), no_head (405 to
    HEAD, 200 to GET), slow (answers after any probe's timeout), gone_from (200 until `since`,
    410 after: a file deleted during the story), failing_from (500 from `since`: a server
    fault the probes see once by the story's end)."""

    kind: str
    to: str = ""
    since: datetime | None = None


def agency_abbreviation(agency: str) -> str:
    """The initials an agency's accounts go by: "Department of Motor Vehicles" -> DMV."""
    return "".join(word[0] for word in agency.split() if word[0].isupper())


def owner_account(agency: str) -> str:
    """The Socrata account an agency publishes from, which names its datasets' agency when
    neither the agency field nor the attribution does."""
    return f"{agency_abbreviation(agency)} Open Data"


@dataclass(frozen=True)
class DemoStory:
    """Which nights the demo simulates, how big the catalogs are, and the random seed."""

    last_night: date
    nights: int = DEMO_NIGHTS
    seed: int = 2025
    scale: float = 1.0  # 1.0 is about data.ct.gov's size: ~650 datasets, ~1,100 assets

    @property
    def first_night(self) -> date:
        return self.last_night - timedelta(days=self.nights - 1)

    def night_dates(self) -> list[date]:
        return [self.first_night + timedelta(days=offset) for offset in range(self.nights)]

    @property
    def rekey_night(self) -> date | None:
        """The night Hub changes the form of its identifiers (two thirds through the story),
        from `.../datasets/<itemId>_<layer>` to `.../datasets/<owner>::<slug>`, as ArcGIS Hub
        did in 2022; None for a story too short to show a before and an after."""
        if self.nights < 3:
            return None
        return self.night_dates()[self.nights * 2 // 3]


def _weighted(rng: random.Random, choices: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*choices, strict=True)
    return rng.choices(values, weights=weights)[0]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")


@dataclass
class _UpdatePlan:
    """When an asset's data changes: every `period` days from `anchor`, until `stop`."""

    anchor: datetime
    period_days: float
    stop: datetime | None = None
    weekdays_only: bool = False

    def last_update(self, instant: datetime, created: datetime) -> datetime:
        end = min(instant, self.stop) if self.stop else instant
        if end < self.anchor:
            return created
        ticks = math.floor((end - self.anchor) / timedelta(days=self.period_days))
        moment = self.anchor + timedelta(days=ticks * self.period_days)
        if self.weekdays_only:
            while moment.astimezone(NEW_YORK).weekday() >= 5:
                moment -= timedelta(days=1)
        return max(moment, created)


@dataclass
class _Asset:
    """One simulated Socrata asset and everything that will happen to it."""

    id: str
    type: str
    created: datetime
    title: str
    agency: str | None
    attribution: str | None
    owner: str
    category: str | None
    description: str
    tags: list[str]
    license: str | None
    frequency: str | None
    geographic_unit: str | None
    updates: _UpdatePlan
    popularity: float  # page views a day
    domain: str = SOCRATA_DOMAIN
    provenance: str = "official"
    parent_ids: list[str] = field(default_factory=list)
    columns: list[tuple[str, str, str, str]] = field(default_factory=list)
    metadata_touched: datetime | None = None
    removed: datetime | None = None
    renamed: tuple[datetime, str] | None = None
    fixes: list[tuple[datetime, str, Any]] = field(default_factory=list)
    no_data_timestamp: bool = False
    download_ratio: float = 0.1
    content: _Content | None = None
    attribution_link: tuple[str, str] | None = None  # (host key, path)

    def alive(self, instant: datetime) -> bool:
        return self.created <= instant and (self.removed is None or self.removed > instant)


@dataclass
class _Content:
    """What a dataset's date columns hold: the newest row's date trails the data update by
    `lag_days` (the other date columns' newest are older by `offsets_days`), unless the rows
    stopped at `frozen` while the uploads went on (silently stale), or every date is empty."""

    lag_days: float
    offsets_days: tuple[float, ...]
    frozen: datetime | None = None
    all_null: bool = False
    future_column: str | None = None  # an expiry date: its newest is in the future
    unknown_column: str | None = None  # the catalog names it, the API does not: SoQL 400


class SocrataDemoCatalog:
    """A data.ct.gov-shaped catalog that answers Discovery API results as of an instant."""

    def __init__(self, story: DemoStory) -> None:
        self.story = story
        self._rng = random.Random(f"socrata|{story.seed}")
        self._ids: set[str] = set()
        self.assets: list[_Asset] = []
        self.hosts = DemoHosts()  # set by DemoPortals once its servers listen
        self.links: dict[tuple[str, str], LinkPlan] = {}  # (host key, path) -> plan
        self._build()
        self.by_id = {asset.id: asset for asset in self.assets}

    # --- building the base catalog and its story -------------------------------------------

    def _new_id(self) -> str:
        while True:
            candidate = "".join(self._rng.choice(ID_CHARACTERS) for _ in range(8))
            candidate = f"{candidate[:4]}-{candidate[4:]}"
            if candidate not in self._ids:
                self._ids.add(candidate)
                return candidate

    def _build(self) -> None:
        story, rng = self.story, self._rng
        first = night_instant(story.first_night)
        size = max(story.scale, 0.01)
        datasets = [self._dataset(self._created_before(first)) for _ in range(round(640 * size))]
        self.assets.extend(datasets)
        for _ in range(round(10 * size)):
            derived = self._dataset(self._created_before(first))
            derived.parent_ids = [rng.choice(datasets).id]
            self.assets.append(derived)
        for _ in range(round(8 * size)):
            community = self._dataset(self._created_before(first))
            community.provenance = "community"
            self.assets.append(community)
        for _ in range(round(25 * size)):
            self.assets.append(self._federated(self._created_before(first)))
        for kind, count in (
            ("filter", 180),
            ("chart", 120),
            ("map", 40),
            ("story", 35),
            ("file", 25),
            ("href", 30),
            ("measure", 5),
        ):
            for _ in range(round(count * size)):
                self.assets.append(
                    self._other(kind, rng.choice(datasets), self._created_before(first))
                )
        self._plan_story(datasets)
        self._plan_probed_story(datasets)

    def _created_before(self, first: datetime) -> datetime:
        span = (first - timedelta(days=20) - EPOCH).total_seconds()
        # More recent years publish more: a square root skews creation dates later.
        return EPOCH + timedelta(seconds=span * math.sqrt(self._rng.random()))

    def _dataset(self, created: datetime) -> _Asset:
        rng = self._rng
        agency, attribution, _, categories = rng.choices(
            words.AGENCIES, weights=[a[2] for a in words.AGENCIES]
        )[0]
        category = rng.choice(categories)
        topic = rng.choice(words.TOPICS[category])
        geography = "" if " by " in topic else rng.choice(words.GEOGRAPHIES)
        parts = (topic, rng.choice(words.QUALIFIERS), geography)
        title = " ".join(part for part in parts if part)
        if rng.random() < 0.25:
            title += f" {rng.randint(2015, 2025)}"
        elif rng.random() < 0.05:
            title += " - Archive"
        frequency = _weighted(rng, words.UPDATE_FREQUENCIES)
        abbreviation = agency_abbreviation(agency).lower()
        tags = (
            []
            if rng.random() < 0.08
            else rng.sample(
                [*topic.lower().split()[:3], "ct", abbreviation, category.split()[0].lower()],
                k=rng.randint(1, 4),
            )
        )
        columns = self._columns()
        asset = _Asset(
            id=self._new_id(),
            type="dataset",
            created=created,
            title=title,
            agency=None if rng.random() < 0.12 else agency,
            attribution=None if rng.random() < 0.3 else attribution,
            owner=owner_account(agency),
            category=None if rng.random() < 0.03 else category,
            description=self._description(title, topic),
            tags=tags,
            license=_weighted(rng, words.LICENSES),
            frequency=frequency,
            geographic_unit=_weighted(rng, words.GEOGRAPHIC_UNITS),
            updates=self._update_plan(frequency, created),
            popularity=0.0 if rng.random() < 0.1 else math.exp(rng.gauss(0.8, 1.5)),
            columns=columns,
            metadata_touched=created + timedelta(days=rng.uniform(0, 400)),
            no_data_timestamp=rng.random() < 0.01,
            download_ratio=rng.uniform(0.02, 0.3),
        )
        self._plan_content(asset)
        return asset

    def _description(self, title: str, topic: str) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.08:
            return rng.choice(words.EMPTY_DESCRIPTIONS)
        if roll < 0.11:
            return rng.choice(words.PLACEHOLDER_DESCRIPTIONS)
        if roll < 0.13:
            return title
        if roll < 0.20:
            return f"{topic}."
        first, second = rng.choice(words.DESCRIPTION_DETAILS), rng.choice(words.DESCRIPTION_DETAILS)
        text = (
            f"{rng.choice(words.DESCRIPTION_OPENERS)} {topic.lower()} {first}. "
            f"{second.capitalize()}."
        )
        if roll > 0.9:
            return f"<p><b>{topic}</b></p><p>{text}</p>"
        return text

    def _columns(self) -> list[tuple[str, str, str, str]]:
        rng = self._rng
        names = rng.sample(words.COLUMN_WORDS, k=rng.randint(3, 18))
        documented = rng.choices(("all", "some", "none"), weights=(35, 35, 30))[0]
        columns = []
        for name in names:
            field_name = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            datatype = rng.choice(("Text", "Number", "Calendar date", "Text"))
            if documented == "all":
                description = f"The {name.lower()} of the record, as reported."
            elif documented == "some" and rng.random() < 0.5:
                description = rng.choice((f"{name} ({datatype.lower()})", name))
            else:
                description = ""
            columns.append((name, field_name, datatype, description))
        if rng.random() < 0.1:
            columns.append(
                ("Town Boundaries", ":@computed_region_" + self._new_id()[:4], "Number", "")
            )
        return columns

    def _update_plan(self, frequency: str | None, created: datetime) -> _UpdatePlan:
        rng = self._rng
        first = night_instant(self.story.first_night)
        anchor = created + timedelta(hours=rng.uniform(10, 60))
        promised = words.PROMISED_DAYS.get(frequency or "")
        if frequency in ("Not updated (historical data)", "Not updated (historical only)"):
            return _UpdatePlan(anchor, 10_000, stop=anchor)
        if frequency == "As needed":
            return _UpdatePlan(anchor, rng.uniform(20, 400))
        if promised is None:  # missing, "Other", "Every 5 years": some rhythm nobody declared
            return _UpdatePlan(anchor, rng.choice((1, 7, 30, 90, 365, 1000)))
        behaviour = rng.random()
        plan = _UpdatePlan(anchor, promised, weekdays_only=frequency == "Every weekday")
        if behaviour < 0.22:  # stopped updating some time ago
            plan.stop = first - timedelta(days=rng.uniform(0.5, 3.5) * promised)
        elif behaviour < 0.30:  # stops during the demo, so it goes stale on screen
            plan.stop = first + timedelta(days=rng.uniform(0, self.story.nights))
        elif behaviour < 0.38:  # updates, but more slowly than promised
            plan.period_days = promised * rng.uniform(1.3, 2.2)
        return plan

    def _federated(self, created: datetime) -> _Asset:
        asset = self._dataset(created)
        asset.domain = words.FEDERATED_DOMAIN
        asset.agency = None
        asset.attribution = "City of Hartford"
        asset.owner = "Hartford Open Data"
        return asset

    def _other(self, kind: str, parent: _Asset, created: datetime) -> _Asset:
        rng = self._rng
        created = max(created, parent.created)
        label = {
            "filter": "Filtered View",
            "chart": "Chart",
            "map": "Map",
            "story": "Story",
            "file": "Report (PDF)",
            "href": "Link",
            "measure": "Measure",
        }[kind]
        asset = _Asset(
            id=self._new_id(),
            type=kind,
            created=created,
            title=f"{parent.title} - {label}",
            agency=parent.agency,
            attribution=parent.attribution,
            owner=parent.owner,
            category=parent.category,
            description=rng.choice(("", f"{label} of {parent.title}.")),
            tags=list(parent.tags),
            license=parent.license,
            frequency=None,
            geographic_unit=None,
            updates=parent.updates,
            popularity=parent.popularity * rng.uniform(0.05, 0.5),
            provenance="community" if rng.random() < 0.2 else "official",
            parent_ids=[parent.id] if kind in ("filter", "chart", "map") else [],
            columns=list(parent.columns) if kind == "filter" else [],
        )
        return asset

    def _plan_story(self, datasets: list[_Asset]) -> None:
        rng = self._rng
        scale = max(self.story.scale, 0.01)
        for night in self.story.night_dates()[1:]:
            instant = night_instant(night)

            def during_the_day(instant: datetime = instant) -> datetime:
                return instant - timedelta(hours=rng.uniform(6, 16))

            for _ in range(_scaled_count(rng, rng.choice((0, 1, 1, 2, 2, 3)), scale)):
                added = self._dataset(during_the_day())
                added.updates.anchor = added.created
                datasets.append(added)
                self.assets.append(added)
                if rng.random() < 0.3:
                    self.assets.append(
                        self._other("chart", added, added.created + timedelta(hours=1))
                    )
            living = [d for d in datasets if d.alive(instant) and d.removed is None]
            for _ in range(_scaled_count(rng, 1 if rng.random() < 0.35 else 0, scale)):
                rng.choice(living).removed = during_the_day()
            for _ in range(_scaled_count(rng, 1 if rng.random() < 0.35 else 0, scale)):
                renamed = rng.choice(living)
                renamed.renamed = (during_the_day(), f"{renamed.title} (Revised)")
            defective = [d for d in living if self._defects(d, instant)]
            fixes = _scaled_count(rng, rng.randint(2, 5), scale)
            for fixed in rng.sample(defective, k=min(fixes, len(defective))):
                self._fix(fixed, during_the_day(), instant)

    def _defects(self, asset: _Asset, instant: datetime) -> list[str]:
        state = self._metadata_state(asset, instant)
        defects = []
        if not re.sub(r"<[^>]*>|&nbsp;|\s", "", state["description"]):
            defects.append("description")
        if state["frequency"] in (None, "Other"):
            defects.append("frequency")
        if not state["tags"]:
            defects.append("tags")
        return defects

    def _fix(self, asset: _Asset, when: datetime, instant: datetime) -> None:
        for defect in self._defects(asset, instant):
            if defect == "description":
                value: Any = (
                    f"This dataset contains {asset.title.lower()} "
                    f"{self._rng.choice(words.DESCRIPTION_DETAILS)}."
                )
            elif defect == "frequency":
                value = self._rng.choice(("Annually", "Monthly", "Quarterly", "As needed"))
            else:
                value = [*asset.title.lower().split()[:2], "ct"]
            asset.fixes.append((when, defect, value))

    # --- what the probes find (metrics v2) --------------------------------------------------

    def _plan_content(self, asset: _Asset) -> None:
        """Keep a quarter of the datasets' date columns as dates (each dataset its own seed, so
        the catalog's other draws stay as they were); the rest become text, as many portals'
        date-like columns are. Fewer date datasets also keep the demo's probes quick."""
        rng = random.Random(f"content|{self.story.seed}|{asset.id}")
        dates = [column for column in asset.columns if column[2] == DATE_TYPE]
        if not dates:
            return
        if rng.random() >= CONTENT_SHARE:
            asset.columns = [
                (name, field_name, "Text", description.replace("(calendar date)", "(text)"))
                if datatype == DATE_TYPE
                else (name, field_name, datatype, description)
                for name, field_name, datatype, description in asset.columns
            ]
            return
        period = min(asset.updates.period_days, 365)
        asset.content = _Content(
            lag_days=rng.uniform(0, 0.5) * period,
            offsets_days=tuple(rng.uniform(0, 120) for _ in dates[1:]),
        )

    def _plan_probed_story(self, datasets: list[_Asset]) -> None:
        """Which in-scope datasets are silently stale, empty, future-dated or unqueryable, and
        which publish an attribution link (and how each link answers)."""
        rng = random.Random(f"probes|{self.story.seed}")
        first = night_instant(self.story.first_night)
        official = [
            d
            for d in datasets
            if d.domain == SOCRATA_DOMAIN and d.provenance == "official" and not d.parent_ids
        ]
        dated = [d for d in official if d.content is not None]
        regular = [
            d
            for d in dated
            if d.frequency in words.PROMISED_DAYS
            and d.updates.stop is None
            and d.updates.period_days == words.PROMISED_DAYS[d.frequency]
            and not d.no_data_timestamp
        ]
        # Silently stale: uploads arrive on schedule (FR-1 says fresh), the rows stopped long
        # ago: the newest is 3.5 to 8 periods old on the first night (FR-5 counts over 3).
        for asset in rng.sample(regular, k=min(len(regular), max(1, round(len(regular) * 0.2)))):
            assert asset.content is not None
            period = asset.updates.period_days
            asset.content.frozen = first - timedelta(days=period * rng.uniform(3.5, 8))
        plain = [d for d in dated if d.content is not None and d.content.frozen is None]
        for asset in rng.sample(plain, k=min(len(plain), max(1, round(len(plain) * 0.05)))):
            assert asset.content is not None
            asset.content.all_null = True
        plain = [d for d in plain if d.content is not None and not d.content.all_null]
        several = [d for d in plain if d.content is not None and len(d.content.offsets_days) >= 1]
        if len(several) >= 2:
            expiring, unknown = rng.sample(several, k=2)
            assert expiring.content is not None and unknown.content is not None
            expiring.content.future_column = _date_fields(expiring)[-1]
            unknown.content.unknown_column = _date_fields(unknown)[0]
        self._plan_attribution_links(rng, official)

    def _plan_attribution_links(self, rng: random.Random, official: list[_Asset]) -> None:
        """A quarter of the attributed datasets link to their agency's site; a few links
        move, loop, vanish, are slow, sit on an old server refusing HEAD, behind robots.txt,
        or on a host that is down."""
        linked = [d for d in official if d.attribution and rng.random() < 0.25]
        for asset in linked:
            path = f"/{agency_abbreviation(asset.agency or asset.owner).lower()}/data/{asset.id}"
            self._link(asset, "sites", path, LinkPlan("ok"))
        specials = rng.sample(linked, k=min(len(linked), 24))
        for index, asset in enumerate(specials):
            if index < 6:  # moved: 301 to the site's new address, which answers
                new = f"/data/{asset.id}"
                self.links[("sites", new)] = LinkPlan("ok")
                self._link(asset, "sites", f"/old/{asset.id}", LinkPlan("moved", to=new))
            elif index < 7:  # a redirect loop: too many redirects
                self.links[("sites", f"/loop/{asset.id}/b")] = LinkPlan(
                    "loop", to=f"/loop/{asset.id}/a"
                )
                self._link(
                    asset,
                    "sites",
                    f"/loop/{asset.id}/a",
                    LinkPlan("loop", to=f"/loop/{asset.id}/b"),
                )
            elif index < 12:  # gone: 404 every night, so broken once probed twice
                self._link(asset, "sites", f"/retired/{asset.id}", LinkPlan("gone"))
            elif index < 16:
                self._link(asset, "legacy", f"/files/{asset.id}.aspx", LinkPlan("no_head"))
            elif index < 18:
                self._link(asset, "slow", f"/reports/{asset.id}", LinkPlan("slow"))
            elif index < 21:  # robots.txt disallows /internal/: never fetched
                self._link(asset, "robots", f"/internal/{asset.id}", LinkPlan("ok"))
            elif index < 23:
                self._link(asset, "robots", f"/public/{asset.id}", LinkPlan("ok"))
            else:
                self._link(asset, "down", f"/{asset.id}", LinkPlan("ok"))

    def _link(self, asset: _Asset, host: str, path: str, plan: LinkPlan) -> None:
        if asset.attribution_link is not None:
            self.links.pop(asset.attribution_link, None)
        asset.attribution_link = (host, path)
        self.links[(host, path)] = plan

    def content_maxima(self, asset: _Asset, instant: datetime) -> dict[str, datetime | None]:
        """The newest value of each date column the API knows, as of `instant`."""
        content = asset.content
        if content is None:
            return {}
        fields = [f for f in _date_fields(asset) if f != content.unknown_column]
        if content.all_null:
            return dict.fromkeys(fields)
        newest = content.frozen or asset.updates.last_update(instant, asset.created) - timedelta(
            days=content.lag_days
        )
        maxima: dict[str, datetime | None] = {}
        for index, field_name in enumerate(_date_fields(asset)):
            if field_name == content.unknown_column:
                continue
            if field_name == content.future_column:
                maxima[field_name] = instant + timedelta(days=400)
            elif index == 0:
                maxima[field_name] = newest
            else:
                maxima[field_name] = newest - timedelta(days=content.offsets_days[index - 1])
        return maxima

    def api_fields(self, asset: _Asset) -> set[str]:
        """The field names SoQL knows for the dataset: the unknown column goes by another name
        there (the catalog kept the column's old name)."""
        fields = {c[1] for c in asset.columns}
        if asset.content is not None and asset.content.unknown_column is not None:
            fields.discard(asset.content.unknown_column)
            fields.add(f"{asset.content.unknown_column}_new")
        return fields

    # --- answering as of an instant ---------------------------------------------------------

    def _metadata_state(self, asset: _Asset, instant: datetime) -> dict[str, Any]:
        state = {"description": asset.description, "frequency": asset.frequency, "tags": asset.tags}
        for when, name, value in asset.fixes:
            if when <= instant:
                state[name] = value
        return state

    def records(self, instant: datetime) -> list[dict[str, Any]]:
        """Every asset alive at `instant`, as Discovery API results."""
        return [self._record(asset, instant) for asset in self.assets if asset.alive(instant)]

    def _record(self, asset: _Asset, instant: datetime) -> dict[str, Any]:
        state = self._metadata_state(asset, instant)
        title = asset.title
        touches = [asset.created]
        if asset.metadata_touched and asset.metadata_touched <= instant:
            touches.append(asset.metadata_touched)
        if asset.renamed and asset.renamed[0] <= instant:
            title = asset.renamed[1]
            touches.append(asset.renamed[0])
        touches.extend(when for when, _, _ in asset.fixes if when <= instant)
        metadata_updated = max(touches)
        data_updated = asset.updates.last_update(instant, asset.created)
        views = self._views(asset, instant)
        domain_metadata = [
            {"key": key, "value": value}
            for key, value in (
                ("Agency_Agency", asset.agency),
                ("Details_Geographic-Unit", asset.geographic_unit),
                ("Details_Update-Frequency", state["frequency"]),
            )
            if value is not None and asset.domain == SOCRATA_DOMAIN
        ]
        classification: dict[str, Any] = {"categories": [], "tags": []}
        if asset.category is not None:
            classification["domain_category"] = asset.category
        classification["domain_tags"] = list(state["tags"])
        classification["domain_metadata"] = domain_metadata
        metadata: dict[str, Any] = {"domain": asset.domain}
        if asset.license is not None:
            metadata["license"] = asset.license
        host = f"https://{asset.domain}"
        permalink = (
            f"{host}/stories/s/{asset.id}" if asset.type == "story" else f"{host}/d/{asset.id}"
        )
        owner = {"id": asset.id[::-1], "user_type": "interactive", "display_name": asset.owner}
        return {
            "resource": {
                "name": title,
                "id": asset.id,
                "resource_name": None,
                "parent_fxf": list(asset.parent_ids),
                "description": state["description"],
                "attribution": asset.attribution,
                "attribution_link": None
                if asset.attribution_link is None
                else self.hosts.url(*asset.attribution_link),
                "contact_email": None,
                "type": asset.type,
                "updatedAt": _iso(max(data_updated, metadata_updated)),
                "createdAt": _iso(asset.created),
                "metadata_updated_at": _iso(metadata_updated),
                "data_updated_at": None if asset.no_data_timestamp else _iso(data_updated),
                "page_views": {
                    **views,
                    **{f"{key}_log": math.log2(value + 1) for key, value in views.items()},
                },
                "columns_name": [c[0] for c in asset.columns],
                "columns_field_name": [c[1] for c in asset.columns],
                "columns_datatype": [c[2] for c in asset.columns],
                "columns_description": [c[3] for c in asset.columns],
                "columns_format": [{"align": "left"} for _ in asset.columns],
                "download_count": round(views["page_views_total"] * asset.download_ratio),
                "provenance": asset.provenance,
                "lens_view_type": "tabular" if asset.columns else asset.type,
                "lens_display_type": "table" if asset.columns else asset.type,
                "locked": False,
                "blob_mime_type": "application/pdf" if asset.type == "file" else None,
                "hide_from_data_json": False,
                "publication_date": _iso(max(asset.created, data_updated)),
            },
            "classification": classification,
            "metadata": metadata,
            "permalink": permalink,
            "link": f"{host}/{_slug(asset.category or 'Other')}/{_slug(title)}/{asset.id}",
            "owner": owner,
            "creator": dict(owner),
        }

    def _views(self, asset: _Asset, instant: datetime) -> dict[str, int]:
        day = instant.astimezone(NEW_YORK).date()
        noise = random.Random(f"{self.story.seed}|{asset.id}|{day}").uniform(0.8, 1.2)
        age_days = max((instant - asset.created).total_seconds() / 86400, 0)
        rate = asset.popularity
        return {
            "page_views_last_week": round(rate * min(age_days, 7) * noise),
            "page_views_last_month": round(rate * min(age_days, 30) * noise),
            "page_views_total": round(rate * age_days * 0.9 + rate * 40),
        }


def _date_fields(asset: _Asset) -> list[str]:
    return [c[1] for c in asset.columns if c[2] == DATE_TYPE]


def _scaled_count(rng: random.Random, count: int, scale: float) -> int:
    expected = count * scale
    whole = math.floor(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


@dataclass
class _Layer:
    """One simulated Hub dataset (a layer of an ArcGIS item)."""

    item_id: str
    layer: int
    title: str
    publisher: tuple[str, str, str, int]
    created: datetime
    description: str
    keywords: list[str]
    license: str
    accrual: str | None
    updates: _UpdatePlan
    legacy_identifier: bool
    padded_publisher: bool
    template_email: bool
    template_title: bool
    template_modified: bool
    removed: datetime | None = None
    topic: str = ""
    service: str = ""  # the ArcGIS REST service the layer belongs to (one per item)
    services_host: str = "services1"
    slug: str = ""  # owner::slug, unique in the feed
    # What the layer's ?f=json says: both edit dates, only lastEditDate, neither, or an error.
    edits: str = "both"
    metadata_edits: tuple[datetime, ...] = ()  # edits of the item's description, tags...

    def alive(self, instant: datetime) -> bool:
        return self.created <= instant and (self.removed is None or self.removed > instant)

    def data_edit(self, instant: datetime) -> datetime:
        """When the layer's data last changed, as of `instant` (dataLastEditDate)."""
        return self.updates.last_update(instant, self.created)

    def modified(self, instant: datetime) -> datetime:
        """Hub's `modified`: the later of the data's edit and the item's metadata edits."""
        edits = [when for when in self.metadata_edits if when <= instant]
        return max([self.data_edit(instant), *edits])


class HubDemoFeed:
    """A geodata.ct.gov-shaped ArcGIS Hub DCAT-US 1.1 feed, with the Hub quirks of
    notes/dcat.md §1.3: template leftovers, HTML descriptions and licences, padded publisher
    names, owner usernames as contacts, accessURL-only distributions, two identifier formats."""

    def __init__(self, story: DemoStory) -> None:
        self.story = story
        self._rng = random.Random(f"hub|{story.seed}")
        self.layers: list[_Layer] = []
        self.hosts = DemoHosts()  # set by DemoPortals once its servers listen
        self.links: dict[tuple[str, str], LinkPlan] = {}  # (host key, path) -> plan
        first = night_instant(story.first_night)
        for _ in range(round(130 * max(story.scale, 0.01))):
            self._item(EPOCH + timedelta(days=self._rng.uniform(300, (first - EPOCH).days - 20)))
        for night in story.night_dates()[1:]:
            instant = night_instant(night)
            if self._rng.random() < 0.3:
                self._item(instant - timedelta(hours=self._rng.uniform(6, 16)))
            if self._rng.random() < 0.15:
                living = [layer for layer in self.layers if layer.alive(instant)]
                self._rng.choice(living).removed = instant - timedelta(hours=3)
        self._plan_probed()
        self.rekey_instant = (
            night_instant(story.rekey_night) - timedelta(hours=8) if story.rekey_night else None
        )

    def _item(self, created: datetime) -> None:
        rng = self._rng
        publisher = rng.choices(words.HUB_PUBLISHERS, weights=[p[3] for p in words.HUB_PUBLISHERS])[
            0
        ]
        topic = rng.choice(words.HUB_TOPICS)
        item_id = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        accrual = _weighted(rng, words.HUB_ACCRUAL)
        for layer in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            title = topic if layer == 0 else f"{topic} - Layer {layer}"
            if rng.random() < 0.2:
                title += f" {rng.randint(2016, 2025)}"
            self.layers.append(
                _Layer(
                    item_id=item_id,
                    layer=layer,
                    title=title,
                    publisher=publisher,
                    created=created,
                    description=self._description(topic, publisher[0]),
                    keywords=[]
                    if rng.random() < 0.03
                    else rng.sample(
                        [*topic.lower().split(), "connecticut", "gis", publisher[1].split("_")[0]],
                        k=rng.randint(1, 4),
                    ),
                    license=self._license(),
                    accrual=accrual,
                    updates=self._updates(accrual, created),
                    legacy_identifier=rng.random() < 0.1,
                    padded_publisher=rng.random() < 0.25,
                    template_email=rng.random() < 0.4,
                    template_title=rng.random() < 0.01,
                    template_modified=rng.random() < 0.01,
                    topic=topic,
                )
            )

    def _description(self, topic: str, publisher: str) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(("", "<div><br /></div>"))
        text = (
            f"{topic} for Connecticut, maintained by the {publisher}. "
            "Use the layer for planning and analysis; see the metadata for its sources."
        )
        if roll < 0.7:
            return f"<div><span style='font-family:Arial'>{text}</span></div>"
        return text

    def _license(self) -> str:
        roll = self._rng.random()
        if roll < 0.55:
            return "https://creativecommons.org/licenses/by/4.0"
        if roll < 0.7:
            return (
                "<div><b>Terms of use.</b> The State of Connecticut provides this data "
                "as is, without warranty of any kind.</div>"
            )
        if roll < 0.85:
            return "https://creativecommons.org/publicdomain/zero/1.0"
        return ""

    def _updates(self, accrual: str | None, created: datetime) -> _UpdatePlan:
        rng = self._rng
        period = {"R/P1Y": 365, "R/P1M": 30, "R/P3M": 90, "R/P1W": 7, "R/P1D": 1, "R/P6M": 180}.get(
            accrual or "", rng.choice((30, 120, 365, 900))
        )
        plan = _UpdatePlan(created + timedelta(hours=rng.uniform(5, 50)), period)
        if rng.random() < 0.35:
            plan.stop = night_instant(self.story.first_night) - timedelta(
                days=rng.uniform(0.5, 3) * period
            )
        return plan

    def _plan_probed(self) -> None:
        """Services, unique slugs, what each layer's edit dates say, how often `modified` is a
        metadata date, and how the downloads answer (a seed of their own: the v1 draws stay)."""
        rng = random.Random(f"hub-probes|{self.story.seed}")
        first = night_instant(self.story.first_night)
        services: dict[str, str] = {}
        taken: set[str] = set()
        for layer in self.layers:
            if layer.item_id not in services:
                base = _slug(layer.topic).replace("-", "_") or "Layer"
                name, suffix = base, 2
                while name in services.values():
                    name, suffix = f"{base}_{suffix}", suffix + 1
                services[layer.item_id] = name
            layer.service = services[layer.item_id]
            layer.services_host = "services1" if int(layer.item_id[0], 16) < 8 else "services2"
            owner = layer.publisher[1].split("_")[0]
            base_slug = f"{owner}::{_slug(layer.title).lower()}"
            slug, suffix = base_slug, 2
            while slug in taken:
                slug, suffix = f"{base_slug}-{suffix}", suffix + 1
            taken.add(slug)
            layer.slug = slug
            # A third of the items have their description or tags edited after their data.
            if rng.random() < 0.35:
                edits = [first - timedelta(days=rng.uniform(2, 120))]
                if rng.random() < 0.3:
                    edits.append(first + timedelta(days=rng.uniform(0, self.story.nights)))
                layer.metadata_edits = tuple(edits)
            self.links[("downloads", self._download_path(layer))] = LinkPlan("ok")
        living = [layer for layer in self.layers if layer.removed is None and layer.created < first]
        picked = rng.sample(living, k=min(len(living), 13))
        nights = self.story.night_dates()
        for index, layer in enumerate(picked):
            path = self._download_path(layer)
            if index < 2:
                layer.edits = "last_only"  # editor tracking keeps no data date
            elif index < 4:
                layer.edits = "neither"  # no editingInfo at all
            elif index < 5:
                layer.edits = "error"  # {"error": ...} with HTTP 200, as ArcGIS does
            elif index < 10:
                self.links[("downloads", path)] = LinkPlan("gone")
            elif index < 11 and len(nights) > 1:  # deleted on the second night: broken by the end
                self.links[("downloads", path)] = LinkPlan(
                    "gone_from", since=night_instant(nights[1]) - timedelta(hours=12)
                )
            elif index < 12 and len(nights) > 1:  # fails from the night before last: failing
                self.links[("downloads", path)] = LinkPlan(
                    "failing_from", since=night_instant(nights[-2]) - timedelta(hours=12)
                )

    @staticmethod
    def _download_path(layer: _Layer) -> str:
        return f"/api/download/v1/items/{layer.item_id}/csv?layers={layer.layer}"

    def layer_path(self, layer: _Layer) -> str:
        return f"/ctgis/arcgis/rest/services/{layer.service}/FeatureServer/{layer.layer}"

    def layer_url(self, layer: _Layer) -> str:
        return self.hosts.url(layer.services_host, self.layer_path(layer))

    def landing_path(self, layer: _Layer, instant: datetime) -> str:
        """The dataset's page on the Hub site: `<itemId>_<layer>` until the rekey night, then
        `<owner>::<slug>`."""
        if self.rekey_instant is not None and instant >= self.rekey_instant:
            return f"/datasets/{layer.slug}"
        return f"/datasets/{layer.item_id}_{layer.layer}"

    def feed(self, instant: datetime) -> dict[str, Any]:
        """The DCAT-US 1.1 catalog as of `instant`."""
        return {
            "@context": "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld",
            "@type": "dcat:Catalog",
            "conformsTo": "https://project-open-data.cio.gov/v1.1/schema",
            "describedBy": "https://project-open-data.cio.gov/v1.1/schema/catalog.json",
            "dataset": [
                self._dataset(layer, instant) for layer in self.layers if layer.alive(instant)
            ],
        }

    def _dataset(self, layer: _Layer, instant: datetime) -> dict[str, Any]:
        name, owner, email, _ = layer.publisher
        page = self.landing_path(layer, instant)
        # The identifier is the Hub site's page, whose form changes on the rekey night; a few
        # items are identified by their ArcGIS Online item page instead, which never changes.
        identifier = (
            f"https://www.arcgis.com/home/item.html?id={layer.item_id}&sublayer={layer.layer}"
            if layer.legacy_identifier
            else f"{HUB_SITE}{page}"
        )
        # Every URL a probe may request is on a loopback host: the demo never leaves this
        # machine.
        landing = self.hosts.url("hub", page)
        modified = layer.modified(instant)
        service = self.layer_url(layer)
        dataset: dict[str, Any] = {
            "@type": "dcat:Dataset",
            "identifier": identifier,
            "landingPage": landing,
            "title": "{{name}}" if layer.template_title else layer.title,
            "description": layer.description,
            "keyword": list(layer.keywords),
            "issued": _iso(layer.created),
            "modified": "{{modified:toISO}}" if layer.template_modified else _iso(modified),
            "publisher": {"name": ("    " + name) if layer.padded_publisher else name},
            "contactPoint": {
                "@type": "vcard:Contact",
                "fn": owner,
                "hasEmail": "{{orgContactEmail}}" if layer.template_email else f"mailto:{email}",
            },
            "accessLevel": "public",
            "spatial": "-73.7278,40.9509,-71.7869,42.0505",
            "license": layer.license,
            "distribution": [
                {
                    "@type": "dcat:Distribution",
                    "title": "ArcGIS Hub Dataset",
                    "format": "Web Page",
                    "mediaType": "text/html",
                    "accessURL": landing,
                },
                {
                    "@type": "dcat:Distribution",
                    "title": "ArcGIS GeoService",
                    "format": "ArcGIS GeoServices REST API",
                    "mediaType": "application/json",
                    "accessURL": service,
                },
                {
                    "@type": "dcat:Distribution",
                    "title": "CSV",
                    "format": "CSV",
                    "mediaType": "text/csv",
                    "accessURL": self.hosts.url("downloads", self._download_path(layer)),
                },
            ],
            "theme": ["geospatial"],
        }
        if layer.accrual:
            dataset["accrualPeriodicity"] = layer.accrual
        return dataset
