"""The demo's two portals, served on loopback for a story of simulated nights."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from ctdata_pipeline.demo.generator import DemoStory, HubDemoFeed, SocrataDemoCatalog, owner_account
from ctdata_pipeline.demo.server import PortalServer
from ctdata_pipeline.demo.vocabulary import AGENCIES
from ctdata_pipeline.partitions import night_instant, today_in_new_york
from ctdata_pipeline.portals import PortalFile, parse_portal_document

DEMO_SOCRATA = "demo.data.ct.gov"
DEMO_HUB = "demo.geodata.ct.gov"
_UNSTARTED = "http://127.0.0.1:9"  # the discard port: a demo portal file before its servers run
DEMO_MAX_NIGHTS = 400  # the longest story `ctdata demo --nights` tells
# Left out of the demo's agency_aliases: "DMV" and "DMV Open Data" stay its likely variants.
UNRECONCILED_AGENCY = "Department of Motor Vehicles"


def demo_portal_file(
    socrata_url: str = _UNSTARTED, hub_url: str = _UNSTARTED, last_night: date | None = None
) -> PortalFile:
    """The demo portal file. Demo portals answer "as of" a date, so they (alone) may be
    harvested for past nights. Its nights begin where the longest story ending `last_night`
    (default: today) begins, so any demo's nights are partitions, whatever `--nights` was, and
    every partition is a night the demo portals answer for."""
    first_night = (last_night or today_in_new_york()) - timedelta(days=DEMO_MAX_NIGHTS - 1)
    return parse_portal_document(
        {
            "first_night": first_night,
            # The shipped file's target, so the demo's report judges its headline as the
            # Board's would.
            "targets": {"MD-1": {"below": 20}},
            "report": {"title": "Connecticut's open data portals (demo)"},
            "agency_aliases": demo_agency_aliases(),
            "portals": [
                {
                    "name": DEMO_SOCRATA,
                    "kind": "socrata",
                    "url": socrata_url,
                    "domain": "data.ct.gov",
                    "federated_domains": ["data.hartford.gov"],
                    "custom_fields": {
                        "agency": "Agency_Agency",
                        "update_frequency": "Details_Update-Frequency",
                        "geographic_unit": "Details_Geographic-Unit",
                    },
                    "as_of": True,
                },
                {
                    "name": DEMO_HUB,
                    "kind": "dcat",
                    "url": hub_url,
                    "as_of": True,
                },
            ],
        },
        source="the demo portal file",
    )


def demo_agency_aliases() -> dict[str, list[str]]:
    """The demo catalogs' agency variants (an attribution such as "CT DEEP", an owner account
    such as "DEEP Open Data") under the agency's name, as a data officer would reconcile them;
    all but UNRECONCILED_AGENCY's, which the report lists as likely variants to confirm."""
    aliases = {}
    for agency, attribution, _, _ in AGENCIES:
        variants = sorted({attribution, owner_account(agency)} - {agency})
        if agency != UNRECONCILED_AGENCY and variants:
            aliases[agency] = variants
    return aliases


class DemoPortals:
    """The generated catalogs of one story, each behind its own loopback server."""

    def __init__(self, story: DemoStory) -> None:
        self.story = story
        self.socrata_catalog = SocrataDemoCatalog(story)
        self.hub_feed = HubDemoFeed(story)
        self.socrata = PortalServer("socrata", self._socrata_answer)
        self.hub = PortalServer("dcat", self._hub_answer)

    def _socrata_answer(self, as_of: date | None) -> tuple[list, datetime]:
        instant = night_instant(as_of) if as_of else datetime.now(UTC)
        return self.socrata_catalog.records(instant), instant

    def _hub_answer(self, as_of: date | None) -> tuple[dict, datetime]:
        instant = night_instant(as_of) if as_of else datetime.now(UTC)
        return self.hub_feed.feed(instant), instant

    def start(self) -> DemoPortals:
        self.socrata.start()
        self.hub.start()
        return self

    def stop(self) -> None:
        self.socrata.stop()
        self.hub.stop()

    def portal_file(self) -> PortalFile:
        return demo_portal_file(self.socrata.url, self.hub.url, self.story.last_night)


_running: dict[DemoStory, DemoPortals] = {}
_running_lock = threading.Lock()


def running_demo_portals(story: DemoStory) -> DemoPortals:
    """The demo portals of `story`, started once per process and kept for its lifetime."""
    with _running_lock:
        if story not in _running:
            _running[story] = DemoPortals(story).start()
        return _running[story]
