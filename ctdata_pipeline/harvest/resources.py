"""The harvest's resources: the HTTP client that fetches a portal's catalog for a night, and the
staging folder where the harvest waits for the catalog step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from pathlib import Path

import dagster as dg
from pydantic import Field

from ctdata_pipeline.harvest.dcat import harvest_dcat
from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.socrata import harvest_socrata
from ctdata_pipeline.harvest.staging import HarvestSummary, StagedWriter, StagingArea
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.settings import socrata_app_token


class PortalClient(dg.ConfigurableResource, ABC):
    """Fetches a portal's whole catalog for a night into a staged writer."""

    @abstractmethod
    def as_of_date(self, portal: Portal, snapshot_date: date) -> date | None:
        """The date to ask the portal for (None: today's live catalog); raise HarvestError
        when the portal cannot give that night."""

    def reachable(self, portal: Portal) -> Portal:
        """The portal entry to send requests to (the demo's carries its loopback URL)."""
        return portal

    def fetch(self, portal: Portal, snapshot_date: date, writer: StagedWriter) -> HarvestSummary:
        portal = self.reachable(portal)
        as_of = self.as_of_date(portal, snapshot_date)
        if portal.kind == "socrata":
            return harvest_socrata(
                portal, writer, snapshot_date, app_token=socrata_app_token(), as_of=as_of
            )
        return harvest_dcat(portal, writer, snapshot_date, as_of=as_of)


class LivePortalClient(PortalClient):
    """The portals of the portal file, harvested over the network. A live portal only knows
    today's catalog, so it is never harvested for another night (a portal entry with `as_of`
    answers for a date, and must confirm it: harvest/asof.py)."""

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


class HarvestStaging(dg.ConfigurableResource):
    """The folder where a harvest waits, as raw records, for the catalog step to load it."""

    directory: str = Field(description="Folder of staged harvests (CTDATA_STAGING_DIR).")

    def area(self) -> StagingArea:
        return StagingArea(Path(self.directory))
