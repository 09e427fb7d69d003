"""The code location of the demo: the production definitions with the demo's portal file and
client (`ctdata demo`, and `dagster dev` with CTDATA_DEPLOYMENT=demo)."""

from __future__ import annotations

import os

import dagster as dg

from ctdata_pipeline.code_location import build_definitions
from ctdata_pipeline.demo.resources import DemoPortalClient, DemoPortalList
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.settings import Settings


def demo_definitions(settings: Settings, client: DemoPortalClient) -> dg.Definitions:
    portals = DemoPortalList(last_night=client.last_night, peers=client.peers)
    return build_definitions(settings, portals, client)


PEERS_VARIABLE = "CTDATA_DEMO_PEERS"


def demo_peers_from_env() -> bool:
    """CTDATA_DEMO_PEERS=1: the demo's location with the peers of `ctdata demo --peers`, so
    the UI shows their partitions and commands accept their names."""
    return os.environ.get(PEERS_VARIABLE, "") == "1"


def demo_definitions_from_env(settings: Settings) -> dg.Definitions:
    """The demo's definitions for a story ending today."""
    client = DemoPortalClient(
        last_night=today_in_new_york().isoformat(), peers=demo_peers_from_env()
    )
    return demo_definitions(settings, client)
