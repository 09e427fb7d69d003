"""`python -m benchmarks --probes`: the probe engine on a portal the size of data.ct.gov, with
default politeness, against loopback hosts that add 50-500 ms of latency to every request.

The portal: 1,000 datasets, each with a date column (an upper bound: every dataset gets a
content_date probe), and 3,000 URLs. The URLs are spread the way a catalog's links are: 5% on
the portal's own host, the other 95% over 60 other hosts with a Zipf (1/rank) heavy tail, so the
busiest of them holds about a fifth of the links and the last ones a handful. Each host is its
own loopback server (its own port, so its own politeness key). The links answer like real ones:
mostly 200, 5% a 301 to a 200 on the same host, 2% a 302 to a page on another host, 4% 404, 3%
HEAD refused (405) and a GET answering 200; two hosts have a robots.txt disallowing /private/,
where a fifth of their links are. The portal host's robots.txt is a 404 (allowed).

A night probes ceil(n / probe_interval_days) of the items (a random seventh of them here: what
longest-unprobed-first settles into); "all at once" probes every item in one run. Each run is
one fresh process (`benchmarks.child probe_run`), so its peak memory is the engine's own; the
requests are counted by the servers."""

from __future__ import annotations

import json
import math
import random
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.run import Runs, run_step

PORTAL_DATASETS = 1000
PORTAL_URLS = 3000
OTHER_HOSTS = 60
PORTAL_LINK_SHARE = 0.05
LATENCY_SECONDS = (0.05, 0.5)
SEED = 20261203


@dataclass(frozen=True)
class Planned:
    kind: str
    host: int  # 0 = the portal, 1..OTHER_HOSTS the others by rank
    path: str
    columns: tuple[str, ...] = ()


def plan(seed: int = SEED) -> list[Planned]:
    """Every probe item of the benchmark portal, by host index and path."""
    chooser = random.Random(seed)
    items = [
        Planned(
            "content_date",
            0,
            f"/resource/{number:04d}-data.json",
            tuple(f"date_{column}" for column in range(1 + number % 3)),
        )
        for number in range(PORTAL_DATASETS)
    ]
    portal_links = round(PORTAL_URLS * PORTAL_LINK_SHARE)
    weights = [1 / rank for rank in range(1, OTHER_HOSTS + 1)]
    hosts = [0] * portal_links + chooser.choices(
        range(1, OTHER_HOSTS + 1), weights=weights, k=PORTAL_URLS - portal_links
    )
    for number, host in enumerate(hosts):
        private = host in (10, 30) and chooser.random() < 0.2
        items.append(Planned("link", host, f"/{'private/' if private else ''}file-{number}.csv"))
    return items


def behaviour(path: str) -> str:
    """What a link's server does, fixed by its path."""
    bucket = int(path.rsplit("-", 1)[1].split(".")[0]) % 100
    if bucket < 5:
        return "moved"  # 301 -> same host, 200
    if bucket < 7:
        return "elsewhere"  # 302 -> another host, 200
    if bucket < 11:
        return "missing"  # 404
    if bucket < 14:
        return "no_head"  # 405 to HEAD, 200 to GET
    return "ok"


class BenchHosts:
    """The 61 loopback hosts, serving the plan."""

    def __init__(self, items: list[Planned]) -> None:
        from ctdata_pipeline_tests.probe_servers import Answer, ProbeServer, json_answer, redirect

        self._random = random.Random(SEED + 1)
        self._lock = threading.Lock()
        self.servers = [
            ProbeServer(
                robots="User-agent: *\nDisallow: /private/\n" if index in (10, 30) else None,
                latency=self._latency,
            )
            for index in range(OTHER_HOSTS + 1)
        ]
        row = {"max_0": "2026-11-30T00:00:00.000", "max_1": "2026-10-01T00:00:00.000"}
        for item in items:
            server = self.servers[item.host]
            if item.kind == "content_date":
                server.routes[item.path] = json_answer([row])
                continue
            what = behaviour(item.path)
            if what == "moved":
                server.routes[item.path] = redirect(item.path + ".new", 301)
                server.routes[item.path + ".new"] = Answer(200)
            elif what == "elsewhere":
                other = self.servers[1 + item.host % OTHER_HOSTS]
                server.routes[item.path] = lambda _r, o=other, p=item.path: redirect(o.url + p, 302)
                other.routes[item.path] = Answer(200)
            elif what == "missing":
                pass  # the server's 404
            elif what == "no_head":
                server.routes[item.path] = lambda r: Answer(405 if r.method == "HEAD" else 200)
            else:
                server.routes[item.path] = Answer(200)

    def _latency(self) -> float:
        with self._lock:
            return self._random.uniform(*LATENCY_SECONDS)

    def __enter__(self) -> BenchHosts:
        for server in self.servers:
            server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.__exit__(*exc)

    def requests(self) -> list[int]:
        return [len(server.all_received()) for server in self.servers]

    def forget(self) -> None:
        for server in self.servers:
            with server._lock:
                server.received.clear()

    def item_rows(self, items: list[Planned]) -> list[dict[str, Any]]:
        rows = []
        for item in items:
            url = self.servers[item.host].url + item.path
            target = item.path.rsplit("/", 1)[1].split(".")[0] if item.kind != "link" else url
            rows.append({"kind": item.kind, "target": target, "url": url, "columns": item.columns})
        return rows


def probe_run(items_file: str) -> dict[str, Any]:
    """The measured step: probe_items over the items in `items_file`, default settings."""
    from ctdata_pipeline.portals import ProbeSettings
    from ctdata_pipeline.probes.engine import probe_items
    from ctdata_pipeline.probes.model import ProbeItem

    rows = json.loads(Path(items_file).read_text(encoding="utf-8"))
    items = [
        ProbeItem(row["kind"], row["target"], row["url"], tuple(row["columns"])) for row in rows
    ]
    settings = ProbeSettings()
    started = time.perf_counter()
    outcomes = Counter(result.outcome for result in probe_items(items, settings))
    return {"seconds": time.perf_counter() - started, "outcomes": dict(outcomes)}


def night_share(items: list[Planned], interval_days: int, seed: int = SEED) -> list[Planned]:
    """ceil(n / interval) of the items, a random sample."""
    count = math.ceil(len(items) / interval_days)
    return random.Random(seed + 2).sample(items, count)


def measure(quick: bool) -> str:
    """Run the night's share (and, unless quick, every item at once); return the table."""
    from ctdata_pipeline.portals import ProbeSettings

    settings = ProbeSettings()
    items = plan()
    per_host = Counter(item.host for item in items)
    lines: list[tuple[str, list[Planned]]] = [
        ("one night (1/7)", night_share(items, settings.probe_interval_days))
    ]
    if not quick:
        lines.append(("all at once", items))
    rows = []
    with BenchHosts(items) as hosts, tempfile.TemporaryDirectory() as folder:
        for label, chosen in lines:
            path = Path(folder) / "items.json"
            path.write_text(json.dumps(hosts.item_rows(chosen)), encoding="utf-8")
            hosts.forget()
            _say(f"probes, {label}: {len(chosen)} items")
            runs = run_step("probe_run", {"items_file": str(path)}, Runs())
            requests = hosts.requests()
            busiest = max(range(len(requests)), key=requests.__getitem__)
            mean_latency = sum(LATENCY_SECONDS) / 2
            floor = requests[busiest] * (mean_latency + settings.min_interval_seconds)
            rows.append(
                (
                    label,
                    len(chosen),
                    sum(requests),
                    sum(1 for count in requests if count),
                    requests[busiest],
                    floor,
                    runs.seconds,
                    runs.memory,
                    runs.first("outcomes"),
                )
            )
    return _table(rows, per_host, settings)


def _table(rows: list[tuple], per_host: Counter, settings: Any) -> str:
    head = (
        f"{'run':<16} | {'items':>5} | {'requests':>8} | {'hosts':>5} | {'busiest host':>12} | "
        f"{'its floor':>9} | {'wall':>8} | {'peak RSS':>8}"
    )
    out = [head, "-" * len(head)]
    for label, items, requests, hosts, busiest, floor, wall, peak, _ in rows:
        out.append(
            f"{label:<16} | {items:>5} | {requests:>8} | {hosts:>5} | {busiest:>12} | "
            f"{floor:>7.0f} s | {wall:>6.0f} s | {peak / 2**20:>5.0f} MB"
        )
    top = sorted((count for host, count in per_host.items() if host), reverse=True)
    out += [
        "",
        f"portal: {PORTAL_DATASETS} content_date probes + {PORTAL_URLS} links on "
        f"{OTHER_HOSTS + 1} hosts; the portal host holds {per_host[0]} items, the other hosts "
        f"{top[0]}, {top[1]}, {top[2]} ... {top[-1]} (Zipf 1/rank)",
        f"politeness: {settings.min_interval_seconds:g} s per host (end to start), concurrency "
        f"{settings.concurrency}, latency {LATENCY_SECONDS[0]:g}-{LATENCY_SECONDS[1]:g} s per "
        f"request; probe_interval_days {settings.probe_interval_days}",
        "requests: as counted by the servers (robots.txt, redirect hops and GET fallbacks "
        "included); its floor = the busiest host's requests x (mean latency + interval), "
        "the least time politeness allows",
    ]
    for label, *_, outcomes in rows:
        out.append(
            f"outcomes, {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        )
    return "\n".join(out)


def _say(text: str) -> None:
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)
