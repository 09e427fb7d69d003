"""`ctdata demo --peers`: peer portals made from real feeds of the national corpus
(`shared/realdata/national/latest/`, DCAT-US data.json files of US states, counties and cities),
served byte for byte on loopback as DCAT portals with `role: peer`.

The corpus is found as the tests find it: CTDATA_SHARED_DIR, else the folder `shared` beside
the repository. Each peer is one Dagster run a night, so the demo harvests the peers on its
last night only (see cli.demo)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, date
from pathlib import Path
from typing import Any

from ctdata_pipeline.demo.server import DCAT_PATHS, PortalServer, Reply, ServedRequest, host_server
from ctdata_pipeline.harvest.asof import AS_OF_HEADER, AS_OF_PARAM
from ctdata_pipeline.partitions import night_instant

SHARED_DIR_VARIABLE = "CTDATA_SHARED_DIR"
NATIONAL_LATEST = Path("realdata") / "national" / "latest"
PEER_PROBES = {"enabled": False}  # their catalogs link to the real portals: never probed here


@dataclass(frozen=True)
class PeerFeed:
    """A real feed of the corpus and the portal it came from (its host: the peer's name)."""

    name: str
    file: str
    empty: bool = False  # a 0-byte file: that night the portal answered nothing


# Ten real portals from 8 to 870 datasets, Hub- and Socrata-generated feeds, and one of the
# corpus's three 0-byte answers, so the report names a peer whose harvest failed.
PEER_FEEDS = (
    PeerFeed("open-data-slcgis.hub.arcgis.com", "05b-27137_20220417.json"),
    PeerFeed("data.macoupincountyil.gov", "02b-17117_20200722.json"),
    PeerFeed("data.princegeorgescountymd.gov", "04b-24033_20200722.json"),
    PeerFeed("gis-countyofdane.opendata.arcgis.com", "10b-55025_20220417.json"),
    PeerFeed("opendata.howardcountymd.gov", "04b-24027_20200722.json"),
    PeerFeed("data.cincinnati-oh.gov", "11c-01_20200722.json"),
    PeerFeed("data.detroitmi.gov", "07c-01_20220417.json"),
    PeerFeed("geodata.iowa.gov", "03a-03_20220417.json"),
    PeerFeed("data.baltimorecity.gov", "04c-02_20220417.json"),
    PeerFeed("data.indy.gov", "01c-02_20220417.json"),
    PeerFeed("data.imap.maryland.gov", "04a-01_20220417.json", empty=True),
)
EXPECTED_TO_FAIL = frozenset(feed.name for feed in PEER_FEEDS if feed.empty)


class PeersMissing(RuntimeError):
    """The national corpus is not where the demo looks; the message says where to put it."""


def shared_dir() -> Path:
    """CTDATA_SHARED_DIR, else `shared` beside the repository (as the tests find it)."""
    value = os.environ.get(SHARED_DIR_VARIABLE)
    if value:
        return Path(value)
    return Path(__file__).resolve().parents[2].parent / "shared"


def corpus_folder() -> Path:
    """The folder of the peers' feeds, every one present; PeersMissing otherwise."""
    folder = shared_dir() / NATIONAL_LATEST
    missing = [feed.file for feed in PEER_FEEDS if not (folder / feed.file).is_file()]
    if missing:
        where = folder if not folder.is_dir() else f"{folder} (without {', '.join(missing)})"
        raise PeersMissing(
            f"--peers serves real feeds of the national corpus, and {where} is missing: "
            f"set {SHARED_DIR_VARIABLE} to the folder holding realdata/national/latest"
        )
    return folder


def peer_entries(base_url: str) -> list[dict[str, Any]]:
    """The peers' entries of the demo's portal file, served at `base_url/<file>`."""
    return [
        {
            "name": feed.name,
            "kind": "dcat",
            "url": f"{base_url}/{feed.file}",
            "role": "peer",
            "as_of": True,
            "timeout_seconds": 30,
            "max_retries": 1,
            "probes": PEER_PROBES,
        }
        for feed in PEER_FEEDS
    ]


class PeerFeeds:
    """One loopback host serving every peer's file as it is, at /<file> (and /<file>/data.json),
    confirming the night asked for like the demo's own portals."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = {feed.file for feed in PEER_FEEDS}
        self.server: PortalServer = host_server(self._answer)

    def _answer(self, request: ServedRequest) -> Reply | None:
        name = request.path.strip("/")
        for suffix in DCAT_PATHS:
            name = name.removesuffix(suffix)
        if name not in self.files:
            return None
        reply = Reply(
            body=(self.folder / name).read_bytes(),
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        asked = request.param(AS_OF_PARAM)
        if asked:
            try:
                instant = night_instant(date.fromisoformat(asked))
            except ValueError:  # not a date: answered without confirming one (refused)
                return reply
            reply.headers[AS_OF_HEADER] = instant.astimezone(UTC).isoformat()
        return reply

    @property
    def base_url(self) -> str:
        return self.server.base_url


_running: PeerFeeds | None = None
_running_lock = threading.Lock()


def running_peer_feeds() -> PeerFeeds:
    """The peers' host, started once per process and kept for its lifetime."""
    global _running
    with _running_lock:
        if _running is None:
            _running = PeerFeeds(corpus_folder())
            _running.server.start()
        return _running
