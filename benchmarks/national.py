"""`python -m benchmarks --national`: one night of a national observatory on this machine.

Synthetic portals (half Socrata, half DCAT), their sizes drawn from the real corpus in
`../shared/realdata/national/` (the datasets of each of its 77 portals, a heavy tail: most hold
tens of datasets, a few over a thousand) and scaled so that they hold `--national-datasets` in
all, plus the 77 real feeds of the corpus as they are (three are 0-byte answers: they must fail
alone). Every portal is its own server on loopback, and every request waits
`--national-latency` seconds before it is answered, as a distant portal would. Then `ctdata
nightly --one-run` runs the night of every portal (harvest, store, metrics, board tables,
probes off, report), and `ctdata nightly` (a run per portal, today's schedule) the night of a
sample of them (`--national-baseline-portals`), in the same session for the ratio. The table
gives the wall time, the peak memory, the time per portal and the failures of each."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.catalog import CUSTOM_FIELDS, DOMAIN, BenchCatalog
from benchmarks.run import child_env, wait_measured
from ctdata_pipeline.demo.server import PortalServer, Reply, ServedRequest

REPO_ROOT = Path(__file__).resolve().parent.parent
NATIONAL_PORTALS = 1000
NATIONAL_DATASETS = 500_000
LATENCY_SECONDS = 0.2
SEED = 17
PROGRESS = re.compile(r"^progress: (\d+)/(\d+) portals done, (\d+) failed")


def corpus_folder() -> Path:
    """The national corpus: CTDATA_SHARED_DIR/realdata/national, or ../shared beside the repo."""
    shared = Path(os.environ.get("CTDATA_SHARED_DIR", REPO_ROOT.parent / "shared"))
    folder = shared / "realdata" / "national"
    if not (folder / "portals.tsv").is_file():
        raise SystemExit(
            f"python -m benchmarks --national: no national corpus at {folder} (put the shared "
            "folder beside the repository, or set CTDATA_SHARED_DIR)"
        )
    return folder


@dataclass(frozen=True)
class RealPortal:
    code: str
    datasets: int  # 0: the file is empty
    path: Path


def real_portals(corpus: Path) -> list[RealPortal]:
    """The corpus's latest feed of every portal, as portals.tsv lists them."""
    portals = []
    with (corpus / "portals.tsv").open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            path = corpus / "latest" / f"{row['code']}_{row['harvest_date']}.json"
            datasets = int(row["datasets"]) if row["datasets"].isdigit() else 0
            portals.append(RealPortal(row["code"], datasets, path))
    return portals


def synthetic_sizes(real: list[int], count: int, total: int, seed: int = SEED) -> list[int]:
    """`count` catalog sizes with the shape of the real ones (each a real size, drawn with
    replacement, times a common factor), summing to `total` within rounding."""
    rng = random.Random(seed)
    draws = [rng.choice(real) for _ in range(count)]
    factor = total / sum(draws)
    return [max(1, round(draw * factor)) for draw in draws]


def dcat_feed(template: dict[str, Any], size: int, tag: str) -> dict[str, Any]:
    """A real feed's datasets repeated (each copy with its own identifier) or cut to `size`."""
    source = template["dataset"]
    datasets = []
    for number in range(size):
        dataset = copy.deepcopy(source[number % len(source)])
        dataset["identifier"] = f"{dataset.get('identifier', 'id')}-{tag}-{number}"
        datasets.append(dataset)
    return {**template, "dataset": datasets}


def _delayed(seconds: float) -> Callable[[ServedRequest], Reply | None]:
    def hook(_request: ServedRequest) -> Reply | None:
        time.sleep(seconds)  # the server's threads answer other requests meanwhile
        return None

    return hook


def _empty_answer(_request: ServedRequest) -> Reply:
    return Reply(status=200, body=b"")


@contextmanager
def national_portals(
    count: int, datasets: int, latency: float, corpus: Path
) -> Iterator[tuple[list[dict[str, Any]], int]]:
    """Serve the synthetic portals and the corpus's real feeds; yield their portal entries and
    the datasets they hold."""
    real = real_portals(corpus)
    feeds = [json.loads(p.path.read_text(encoding="utf-8")) for p in real if p.datasets]
    sizes = synthetic_sizes([p.datasets for p in real if p.datasets], count, datasets)
    now = datetime.now(UTC)
    entries: list[dict[str, Any]] = []
    running: list[PortalServer] = []
    with ExitStack() as servers:
        # Stopped side by side: one at a time, each waits for its serving loop's half-second
        # poll, nine minutes for a thousand servers.
        servers.callback(_stop_all, running)

        def start(kind: str, answer: Any, hook: Any) -> PortalServer:
            server = PortalServer(kind, lambda _as_of: (answer, now), hook=hook)
            running.append(server.start())
            return server

        delay = _delayed(latency)
        for number, size in enumerate(sizes):
            if number % 2 == 0:
                records = BenchCatalog(size, date.today(), seed=number).records
                server = start("socrata", records, delay)
                entry = {"kind": "socrata", "domain": DOMAIN, "custom_fields": CUSTOM_FIELDS}
            else:
                feed = dcat_feed(feeds[number % len(feeds)], size, f"s{number}")
                server = start("dcat", feed, delay)
                entry = {"kind": "dcat"}
            entries.append({"name": f"s{number:04d}", "url": server.url, **entry})
        for portal in real:
            if portal.datasets:
                answer = json.loads(portal.path.read_text(encoding="utf-8"))
                server = start("dcat", answer, delay)
            else:
                server = start("dcat", {}, _empty_answer)
            entries.append({"name": f"real.{portal.code}", "kind": "dcat", "url": server.url})
        for number, entry in enumerate(entries):
            entry.update({"timeout_seconds": 120, "max_retries": 0, "probes": {"enabled": False}})
            # The first two (a Socrata and a DCAT portal) stand for the Board's own two; the
            # rest are the peers they are compared with.
            entry["role"] = "own" if number < 2 else "peer"
        yield entries, sum(sizes) + sum(portal.datasets for portal in real)


def _stop_all(servers: list[PortalServer]) -> None:
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(PortalServer.stop, servers))


@dataclass(frozen=True)
class NationalNight:
    design: str
    portals: int
    datasets: int
    wall_seconds: float
    steps_seconds: float  # until the last portal's progress line: harvest, store, metrics, board
    peak_bytes: int
    failed: int
    exit_code: int

    @property
    def per_portal_seconds(self) -> float:
        return self.wall_seconds / self.portals


ONE_RUN = "one run (`--one-run`)"
PER_PORTAL = "a run per portal (today's)"
ELAPSED = re.compile(r" (\d+):(\d\d) elapsed ")


def run_night(
    entries: list[dict[str, Any]],
    datasets: int,
    folder: Path,
    one_run: bool,
    concurrent_runs: int = 1,
) -> NationalNight:
    """`ctdata nightly` over the portal entries, in a fresh folder and Dagster home."""
    folder.mkdir(parents=True)
    portal_file = folder / "portals.yaml"
    portal_file.write_text(yaml.safe_dump({"portals": entries}), encoding="utf-8")
    home = folder / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nconcurrency:\n  pools:\n    default_limit: 1\n"
        f"  runs:\n    max_concurrent_runs: {concurrent_runs}\n",
        encoding="utf-8",
    )
    env = child_env(
        CTDATA_PORTALS=str(portal_file),
        CTDATA_DB=str(folder / "data" / "ctdata.duckdb"),
        CTDATA_REPORT_DIR=str(folder / "reports"),
        DAGSTER_HOME=str(home),
        CTDATA_HARVEST_RETRIES="0",
    )
    script = Path(sys.executable).with_name("ctdata")
    command = [str(script) if script.exists() else shutil.which("ctdata") or "ctdata", "nightly"]
    if one_run:
        command.append("--one-run")
    started = time.perf_counter()
    failed, steps = 0, 0.0
    with (folder / "stdout.txt").open("w+", encoding="utf-8") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.DEVNULL
        )
        peak = wait_measured(process)
        wall = time.perf_counter() - started
        out.seek(0)
        for line in out:
            if match := PROGRESS.match(line):
                failed = int(match.group(3))
                if elapsed := ELAPSED.search(line):
                    steps = int(elapsed.group(1)) * 60 + int(elapsed.group(2))
    design = ONE_RUN if one_run else PER_PORTAL
    return NationalNight(
        design, len(entries), datasets, wall, steps, peak, failed, process.returncode
    )


def baseline_sample(entries: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """About `count` portals for the per-portal night: the two own ones and an even spread of
    the rest (every k-th), so their sizes follow the whole set's; every portal when count is 0
    or covers them all."""
    if count <= 0 or count >= len(entries):
        return entries
    rest = entries[2:]
    step = max(1, len(rest) // max(1, count - 2))
    return entries[:2] + rest[::step][: count - 2]


def measure(options: argparse.Namespace, work: Path) -> str:
    """Serve the national portals; run the night in one run over all of them, then today's
    design (a run per portal) over a sample of them in the same session; return the table."""
    corpus = corpus_folder()
    nights = []
    with national_portals(
        options.national_portals, options.national_datasets, options.national_latency, corpus
    ) as (entries, datasets):
        sample = baseline_sample(entries, options.national_baseline_portals)
        share = datasets * len(sample) // len(entries)  # for the table only: an estimate
        for design, chosen in ((ONE_RUN, entries), (PER_PORTAL, sample)):
            print(
                f"[{time.strftime('%H:%M:%S')}] national: {len(chosen)} portals, {design}",
                file=sys.stderr,
                flush=True,
            )
            folder = work / ("one-run" if design == ONE_RUN else "per-portal")
            total = datasets if chosen is entries else share
            nights.append(run_night(chosen, total, folder, design == ONE_RUN))
    return render(options, nights)


def render(options: argparse.Namespace, nights: list[NationalNight]) -> str:
    one, each = nights
    lines = [
        f"National night: {options.national_portals} synthetic portals holding "
        f"{options.national_datasets:,} datasets (sizes drawn from the corpus's 77) + the "
        f"corpus's 77 real feeds, {options.national_latency * 1000:.0f} ms added to every "
        "request; `ctdata nightly` (harvest, store, metrics, board tables, report; probes off; "
        "two portals own, the rest peers)",
        "",
        "| design | portals | datasets | wall | steps | per portal | peak memory | failed | exit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for night in nights:
        lines.append(
            f"| {night.design} | {night.portals} | {night.datasets:,} "
            f"| {night.wall_seconds / 60:.1f} min | {night.steps_seconds / 60:.1f} min "
            f"| {night.per_portal_seconds:.2f} s | {night.peak_bytes / 2**20:,.0f} MiB "
            f"| {night.failed} | {night.exit_code} |"
        )
    ratio = each.per_portal_seconds / one.per_portal_seconds
    lines += [
        "",
        f"A run per portal costs {ratio:.1f}x the one run's time per portal; at its rate the "
        f"{one.portals} portals would take {each.per_portal_seconds * one.portals / 60:.0f} min "
        f"one run per portal. Per-portal overhead of the one run: "
        f"{one.per_portal_seconds:.2f} s (wall / portals). `steps` ends at the last portal's "
        "progress line; the rest is the report and the process's start.",
        "",
        "Targets (issue 17): the whole night under 30 min for 1,000 portals, peak memory under "
        "2 GB. `failed` counts the portals whose night failed (the corpus's three 0-byte feeds "
        "must, and only they); exit 1 is then expected.",
    ]
    return "\n".join(lines)
