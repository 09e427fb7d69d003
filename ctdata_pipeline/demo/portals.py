"""The demo's two portals, served on loopback for a story of simulated nights."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, date, datetime, timedelta

from ctdata_pipeline.demo.answers import hub_routes, layer_routes, link_routes, soql_routes
from ctdata_pipeline.demo.generator import (
    HOST_KEYS,
    DemoHosts,
    DemoStory,
    HubDemoFeed,
    LinkPlan,
    SocrataDemoCatalog,
    owner_account,
)
from ctdata_pipeline.demo.peers import peer_entries
from ctdata_pipeline.demo.server import PortalServer, host_server
from ctdata_pipeline.demo.vocabulary import AGENCIES
from ctdata_pipeline.partitions import night_instant, today_in_new_york
from ctdata_pipeline.portals import PortalFile, parse_portal_document

DEMO_SOCRATA = "demo.data.ct.gov"
DEMO_HUB = "demo.geodata.ct.gov"
_UNSTARTED = "http://127.0.0.1:9"  # the discard port: a demo portal file before its servers run
DEMO_MAX_NIGHTS = 400  # the longest story `ctdata demo --nights` tells
# The demo's probes: every target each second night, 20 ms between requests to a host, and a
# timeout the slow site exceeds, so `ctdata demo` stays quick.
DEMO_PROBES = {"probe_interval_days": 2, "min_interval_seconds": 0.005, "timeout_seconds": 1.5}
# Left out of the demo's agency_aliases: "DMV" and "DMV Open Data" stay its likely variants.
UNRECONCILED_AGENCY = "Department of Motor Vehicles"


def demo_portal_file(
    socrata_url: str = _UNSTARTED,
    hub_url: str = _UNSTARTED,
    last_night: date | None = None,
    peers: bool = False,
    peers_url: str = _UNSTARTED,
) -> PortalFile:
    """The demo portal file. Demo portals answer "as of" a date, so they (alone) may be
    harvested for past nights. Its nights begin where the longest story ending `last_night`
    (default: today) begins, so any demo's nights are partitions, whatever `--nights` was, and
    every partition is a night the demo portals answer for. `peers` adds the national
    corpus's peers (demo/peers.py), served at `peers_url`."""
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
                    "probes": DEMO_PROBES,
                },
                {
                    "name": DEMO_HUB,
                    "kind": "dcat",
                    "url": hub_url,
                    "as_of": True,
                    "probes": DEMO_PROBES,
                },
                *(peer_entries(peers_url) if peers else []),
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
    """The generated catalogs of one story, each behind its own loopback server, and the hosts
    their probes reach (layers, downloads, linked sites), each a server of its own."""

    def __init__(self, story: DemoStory) -> None:
        self.story = story
        self.socrata_catalog = SocrataDemoCatalog(story)
        self.hub_feed = HubDemoFeed(story)
        self.socrata = PortalServer(
            "socrata", self._socrata_answer, routes=soql_routes(self.socrata_catalog)
        )
        self.hub = PortalServer("dcat", self._hub_answer, routes=hub_routes(self.hub_feed))
        plans: dict[str, dict[str, LinkPlan]] = {key: {} for key in HOST_KEYS}
        for (host, path), plan in [
            *self.socrata_catalog.links.items(),
            *self.hub_feed.links.items(),
        ]:
            plans[host][path] = plan
        layers = layer_routes(self.hub_feed)
        self.hosts: dict[str, PortalServer] = {
            key: host_server(
                layers
                if key.startswith("services")
                else link_routes(plans[key], robots=key == "robots")
            )
            for key in HOST_KEYS
            if key != "down"
        }
        bases = {key: server.base_url for key, server in self.hosts.items()}
        bases.update(socrata=self.socrata.base_url, hub=self.hub.base_url, down=_closed_port())
        self.socrata_catalog.hosts = self.hub_feed.hosts = DemoHosts(tuple(sorted(bases.items())))

    def _socrata_answer(self, as_of: date | None) -> tuple[list, datetime]:
        instant = night_instant(as_of) if as_of else datetime.now(UTC)
        return self.socrata_catalog.records(instant), instant

    def _hub_answer(self, as_of: date | None) -> tuple[dict, datetime]:
        instant = night_instant(as_of) if as_of else datetime.now(UTC)
        return self.hub_feed.feed(instant), instant

    def start(self) -> DemoPortals:
        for server in self._servers():
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers():
            server.stop()

    def _servers(self) -> list[PortalServer]:
        return [self.socrata, self.hub, *self.hosts.values()]

    def portal_file(self) -> PortalFile:
        return demo_portal_file(self.socrata.url, self.hub.url, self.story.last_night)


def _closed_port() -> str:
    """A loopback address nothing listens on (a host that is down: connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


_running: dict[DemoStory, DemoPortals] = {}
_running_lock = threading.Lock()


def running_demo_portals(story: DemoStory) -> DemoPortals:
    """The demo portals of `story`, started once per process and kept for its lifetime."""
    with _running_lock:
        if story not in _running:
            _running[story] = DemoPortals(story).start()
        return _running[story]
