"""Many portals' harvests at once, polite to each host: one harvest at a time per host (its
pages one after another, as the metrics v2 spec asks of every request to a host), several
hosts at once up to a bound. Each harvest is staged on disk exactly as the harvest asset
stages it, and is handed on as soon as it is done, so a night's writer can store one portal
while the others are still being fetched."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date

from ctdata_pipeline.harvest.http import HarvestError
from ctdata_pipeline.harvest.resources import PortalClient
from ctdata_pipeline.harvest.staging import HarvestSummary, StagingArea
from ctdata_pipeline.portals import Portal

# Hosts harvested at once when nothing says otherwise: the probes' bound across hosts
# (metrics v2 spec), since a harvest is mostly waiting for a distant server.
DEFAULT_HOSTS_AT_ONCE = 8


@dataclass(frozen=True)
class Harvested:
    """One portal's harvest for the night: staged (summary) or failed (why, in one line)."""

    portal: Portal
    summary: HarvestSummary | None
    failure: str = ""
    attempts: int = 1


def harvest_side_by_side(
    portals: Sequence[Portal],
    client: PortalClient,
    area: StagingArea,
    snapshot_date: date,
    hosts_at_once: int = DEFAULT_HOSTS_AT_ONCE,
    retries: int = 0,
    retry_delay_seconds: float = 0.0,
) -> Iterator[Harvested]:
    """Yield every portal's harvest as it finishes, in finishing order. Portals on the same host
    (its name and port) are harvested one after another by one worker; at most `hosts_at_once`
    hosts at once. A retryable failure (a timeout, a 5xx) is tried again up to `retries` times,
    waiting `retry_delay_seconds`, doubled each time, with jitter (as the harvest asset's
    RetryPolicy does); any failure ends that portal's harvest only."""
    by_host: dict[str, list[Portal]] = {}
    for portal in portals:
        by_host.setdefault(client.reachable(portal).netloc, []).append(portal)
    hosts: queue.SimpleQueue[list[Portal]] = queue.SimpleQueue()
    for host_portals in by_host.values():
        hosts.put(host_portals)
    done: queue.SimpleQueue[Harvested] = queue.SimpleQueue()

    def work() -> None:
        while True:
            try:
                host_portals = hosts.get_nowait()
            except queue.Empty:
                return
            for portal in host_portals:
                done.put(
                    _harvest(portal, client, area, snapshot_date, retries, retry_delay_seconds)
                )

    workers = [
        threading.Thread(target=work, name=f"harvest-{number}", daemon=True)
        for number in range(max(1, min(hosts_at_once, len(by_host))))
    ]
    for worker in workers:
        worker.start()
    for _ in portals:
        yield done.get()
    for worker in workers:
        worker.join()


def _harvest(
    portal: Portal,
    client: PortalClient,
    area: StagingArea,
    snapshot_date: date,
    retries: int,
    retry_delay_seconds: float,
) -> Harvested:
    attempt = 0
    while True:
        attempt += 1
        try:
            with area.writer(portal.name, snapshot_date) as writer:
                summary = client.fetch(portal, snapshot_date, writer)
                writer.commit(summary)
            return Harvested(portal, summary, attempts=attempt)
        except HarvestError as error:
            if not error.retryable or attempt > retries:
                return Harvested(portal, None, str(error), attempt)
        except Exception as error:  # one portal's surprise must not end the others' night
            return Harvested(portal, None, f"{portal.name}: {type(error).__name__}: {error}")
        delay = retry_delay_seconds * 2 ** (attempt - 1)
        time.sleep(delay * random.uniform(0.75, 1.25))
