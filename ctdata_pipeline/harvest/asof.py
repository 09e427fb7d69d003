"""Harvesting "as of" a past date: only portals that can answer for a date (the demo portals and
the test servers) may be asked, and every answer must confirm the date it was given for."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests

from ctdata_pipeline.harvest.http import HarvestError

AS_OF_PARAM = "as_of"
# The instant (ISO 8601, UTC) the portal answered for; its New York date must be the date asked.
AS_OF_HEADER = "X-Ctdata-As-Of"
NEW_YORK = ZoneInfo("America/New_York")


class AsOfCheck:
    """Watches a harvest's responses; for an as-of harvest, holds the instant the portal
    confirmed, which becomes the snapshot time."""

    def __init__(self, portal: str, as_of: date | None) -> None:
        self.portal = portal
        self.as_of = as_of
        self._confirmed: datetime | None = None
        self._last_answer: str | None = None

    def on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """A requests response hook: remember what the portal said its as-of instant was."""
        if self.as_of is not None:
            self._last_answer = response.headers.get(AS_OF_HEADER)

    def raise_if_unconfirmed(self) -> None:
        if self.as_of is None:
            return
        answer = self._last_answer
        instant = _parse_instant(answer)
        if instant is None or instant.astimezone(NEW_YORK).date() != self.as_of:
            said = f"it said {answer!r}" if answer else f"it sent no {AS_OF_HEADER} header"
            raise HarvestError(
                self.portal,
                f"was asked for the catalog as of {self.as_of} but did not confirm that date "
                f"({said}); a portal that only knows today's catalog is never stored under a "
                "past date",
            )
        self._confirmed = instant

    def snapshot_time(self) -> datetime:
        """The UTC instant the snapshot stands for: the confirmed as-of instant, or now."""
        if self.as_of is not None:
            if self._confirmed is None:
                raise HarvestError(self.portal, "no response confirmed the as-of date")
            return self._confirmed
        return datetime.now(UTC)


def _parse_instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return instant.astimezone(UTC)
