"""The portal file as a resource: which portals there are and their options (guard ratios,
warning bands, the first night), for every asset that needs the list. Reaching the portals is
the harvest's HTTP client (harvest/resources.py), which only the harvest asset takes."""

from __future__ import annotations

from abc import ABC, abstractmethod

import dagster as dg
from pydantic import Field, PrivateAttr

from ctdata_pipeline.portals import Portal, PortalFile, load_portal_file


class PortalList(dg.ConfigurableResource, ABC):
    """The portal file, loaded on first use and held for the rest of the run (a step reads one
    portal file, even if it is edited meanwhile)."""

    _held: PortalFile | None = PrivateAttr(default=None)

    @abstractmethod
    def load(self) -> PortalFile:
        """Read the portal file."""

    def source(self) -> str:
        """The portal file, as an error message names it."""
        return "of the demo"

    def portal_file(self) -> PortalFile:
        if self._held is None:
            self._held = self.load()
        return self._held

    def portal(self, name: str) -> Portal:
        return self.portal_file().get(name)


class PortalFileResource(PortalList):
    """The portal file at CTDATA_PORTALS."""

    path: str = Field(description="Path of the portal file (CTDATA_PORTALS).")

    def load(self) -> PortalFile:
        return load_portal_file(self.path)

    def source(self) -> str:
        return self.path
