"""The demo's resources: its portal file and the client that serves its generated catalogs on
loopback, in place of the live ones."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlsplit

from pydantic import Field

from ctdata_pipeline.demo.generator import DEMO_NIGHTS, DemoStory
from ctdata_pipeline.demo.peers import running_peer_feeds
from ctdata_pipeline.demo.portals import demo_portal_file, running_demo_portals
from ctdata_pipeline.harvest.resources import PortalClient
from ctdata_pipeline.portals import Portal, PortalFile
from ctdata_pipeline.resources import PortalList


class DemoPortalList(PortalList):
    """The demo portal file of a story ending `last_night`."""

    last_night: str = Field(description="The story's last night (YYYY-MM-DD).")
    peers: bool = Field(default=False, description="With the national corpus's peers.")

    def load(self) -> PortalFile:
        return demo_portal_file(last_night=date.fromisoformat(self.last_night), peers=self.peers)


class DemoPortalClient(PortalClient):
    """The demo's generated catalogs, served on loopback in this process and harvested over
    HTTP like any portal. Demo portals answer as of any night of their story."""

    last_night: str = Field(description="The story's last night (YYYY-MM-DD).")
    nights: int = Field(default=DEMO_NIGHTS, description="How many nights the story spans.")
    seed: int = Field(default=2025, description="Random seed of the generated catalogs.")
    scale: float = Field(default=1.0, description="Catalog size; 1.0 is about data.ct.gov's.")
    peers: bool = Field(default=False, description="With the national corpus's peers.")

    def story(self) -> DemoStory:
        return DemoStory(
            last_night=date.fromisoformat(self.last_night),
            nights=self.nights,
            seed=self.seed,
            scale=self.scale,
        )

    def portal_file(self) -> PortalFile:
        """The story's portal file (what DemoPortalList holds)."""
        return demo_portal_file(last_night=self.story().last_night, peers=self.peers)

    def reachable(self, portal: Portal) -> Portal:
        # Serving starts on the first fetch in this process, not when definitions load.
        if portal.role == "peer":
            path = urlsplit(portal.url).path
            return portal.model_copy(update={"url": running_peer_feeds().base_url + path})
        return running_demo_portals(self.story()).portal_file().get(portal.name)

    def as_of_date(self, portal: Portal, snapshot_date: date) -> date | None:
        return snapshot_date
