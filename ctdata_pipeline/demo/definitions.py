"""The code location of the demo: the production definitions with the demo's portal file and
client (`ctdata demo`, and `dagster dev` with CTDATA_DEPLOYMENT=demo)."""

from __future__ import annotations

import dagster as dg

from ctdata_pipeline.code_location import build_definitions
from ctdata_pipeline.demo.resources import DemoPortalClient, DemoPortalList
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.settings import Settings


def demo_definitions(settings: Settings, client: DemoPortalClient) -> dg.Definitions:
    portals = DemoPortalList(last_night=client.last_night, peers=client.peers)
    return build_definitions(settings, portals, client)


def demo_definitions_from_env(settings: Settings) -> dg.Definitions:
    """The demo's definitions for a story ending today."""
    client = DemoPortalClient(last_night=today_in_new_york().isoformat())
    return demo_definitions(settings, client)
