"""Resources: the portals (a live and a demo implementation behind one interface), the staging
folder, and the DuckDB warehouse (in warehouse.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from ctdata_pipeline.demo.generator import DEMO_NIGHTS, DemoStory
from ctdata_pipeline.demo.portals import demo_portal_file, running_demo_portals
from ctdata_pipeline.harvest.dcat import harvest_dcat
from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.socrata import harvest_socrata
from ctdata_pipeline.harvest.staging import HarvestSummary, StagedWriter, StagingArea
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.portals import Portal, PortalFile, load_portal_file
from ctdata_pipeline.settings import socrata_app_token


class PortalClient(dg.ConfigurableResource, ABC):
    """Fetches a portal's whole catalog for a night into a staged writer."""

    @abstractmethod
    def portal_file(self) -> PortalFile:
        """The portals this client serves, with their harvesting options."""

    @abstractmethod
    def as_of_date(self, portal: Portal, snapshot_date: date) -> date | None:
        """The date to ask the portal for (None: today's live catalog); raise HarvestError
        when the portal cannot give that night."""

    def portal(self, name: str) -> Portal:
        return self.portal_file().get(name)

    def reachable_portal(self, name: str) -> Portal:
        """The portal entry to send requests to (the demo's carries its loopback URL)."""
        return self.portal(name)

    def fetch(self, portal_name: str, snapshot_date: date, writer: StagedWriter) -> HarvestSummary:
        portal = self.reachable_portal(portal_name)
        as_of = self.as_of_date(portal, snapshot_date)
        if portal.kind == "socrata":
            return harvest_socrata(
                portal, writer, snapshot_date, app_token=socrata_app_token(), as_of=as_of
            )
        return harvest_dcat(portal, writer, snapshot_date, as_of=as_of)


class LivePortalClient(PortalClient):
    """The portals of the portal file (CTDATA_PORTALS), harvested over the network. A live
    portal only knows today's catalog, so it is never harvested for another night."""

    portals_file: str = Field(description="Path of the portal file (CTDATA_PORTALS).")

    def portal_file(self) -> PortalFile:
        return load_portal_file(self.portals_file)

    def as_of_date(self, portal: Portal, snapshot_date: date) -> date | None:
        today = today_in_new_york()
        if snapshot_date > today:
            raise HarvestError(
                portal.name, f"{snapshot_date} is in the future (today is {today} in New York)"
            )
        if portal.as_of:
            return snapshot_date
        if snapshot_date != today:
            raise HarvestError(
                portal.name,
                f"is a live portal, so it can only be harvested for today ({today}, New York), "
                f"not {snapshot_date}. A past night comes only from a snapshot taken that night "
                "or from an archived catalog file (`ctdata import`).",
            )
        return None


class DemoPortalClient(PortalClient):
    """The demo's generated catalogs, served on loopback in this process and harvested over
    HTTP like any portal. Demo portals answer as of any night of their story."""

    last_night: str = Field(description="The story's last night (YYYY-MM-DD).")
    nights: int = Field(default=DEMO_NIGHTS, description="How many nights the story spans.")
    seed: int = Field(default=2025, description="Random seed of the generated catalogs.")
    scale: float = Field(default=1.0, description="Catalog size; 1.0 is about data.ct.gov's.")

    def story(self) -> DemoStory:
        return DemoStory(
            last_night=date.fromisoformat(self.last_night),
            nights=self.nights,
            seed=self.seed,
            scale=self.scale,
        )

    def portal_file(self) -> PortalFile:
        return demo_portal_file()

    def reachable_portal(self, name: str) -> Portal:
        # Serving starts on the first fetch in this process, not when definitions load.
        return running_demo_portals(self.story()).portal_file().get(name)

    def as_of_date(self, portal: Portal, snapshot_date: date) -> date | None:
        return snapshot_date


class HarvestStaging(dg.ConfigurableResource):
    """The folder where a harvest waits, as raw records, for the catalog step to load it."""

    directory: str = Field(description="Folder of staged harvests (CTDATA_STAGING_DIR).")

    def area(self) -> StagingArea:
        return StagingArea(Path(self.directory))
