"""`python -m benchmarks`: generate catalogs, serve them on loopback, measure the pipeline against
the naive approach and the download-and-parse limit, and print one table (see README,
*Benchmarks*)."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

from benchmarks.catalog import BenchCatalog, portal_entry
from benchmarks.national import LATENCY_SECONDS, NATIONAL_DATASETS, NATIONAL_PORTALS
from benchmarks.report import Table
from benchmarks.run import Runs, child_env, run_step, timed_command
from benchmarks.steps import limit_fetch, naive_fetch_pages
from ctdata_pipeline.demo.server import PortalServer

NIGHT = date(2025, 6, 30)  # a past night: the served portal answers "as of" it
NIGHTLY_ASSETS = 3000
PORTAL_ASSETS = 300  # a small catalog: what a night costs per portal beyond its data
PORTAL_COUNTS = [1, 10, 40]
HARVEST_TARGET_ASSETS = 100_000


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="1k and 10k assets, 30 nights (about 5 minutes)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="catalog sizes to harvest")
    parser.add_argument("--nights", type=int, help="nights of history (default 365; quick 30)")
    parser.add_argument("--metric-size", type=int, help="in-scope datasets of the metric step")
    parser.add_argument("--storage-size", type=int, default=10_000, help="assets, storage line")
    parser.add_argument("--repeats", type=int, help="runs of each step (median; default 3)")
    parser.add_argument(
        "--portal-counts",
        type=int,
        nargs="+",
        default=PORTAL_COUNTS,
        help="portals of the per-portal cost line (default 1 10 40)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["harvest", "metrics", "storage", "nightly", "portals", "report", "backup"],
        help="measure only these lines",
    )
    parser.add_argument("--work-dir", type=Path, help="keep the databases here (default: temp)")
    parser.add_argument(
        "--probes",
        action="store_true",
        help="only the probe engine on a data.ct.gov-sized portal (one night's share and all "
        "at once: about 30 minutes; with --quick the night's share only)",
    )
    parser.add_argument(
        "--national",
        action="store_true",
        help="only the national night: 1,000 synthetic portals and the 77 real feeds of "
        "../shared/realdata/national on loopback, 200 ms a request (issue 17)",
    )
    parser.add_argument(
        "--national-portals", type=int, default=NATIONAL_PORTALS, help="synthetic portals"
    )
    parser.add_argument(
        "--national-datasets", type=int, default=NATIONAL_DATASETS, help="their datasets in all"
    )
    parser.add_argument(
        "--national-latency",
        type=float,
        default=LATENCY_SECONDS,
        help="seconds added to every request",
    )
    parser.add_argument(
        "--national-baseline-portals",
        type=int,
        default=100,
        help="portals of the per-portal (today's design) night measured beside the one run "
        "(0: every one; at about 11 s a portal a full one takes hours)",
    )
    options = parser.parse_args(argv)
    options.sizes = options.sizes or ([1000, 10_000] if options.quick else [1000, 10_000, 100_000])
    options.nights = options.nights or (30 if options.quick else 365)
    options.metric_size = options.metric_size or (10_000 if options.quick else 100_000)
    options.repeats = options.repeats or 3
    options.only = set(
        options.only or ["harvest", "metrics", "storage", "nightly", "portals", "report", "backup"]
    )
    return options


def size_text(assets: int) -> str:
    return f"{assets // 1000}k" if assets % 1000 == 0 else f"{assets:,}"


def served(catalog: BenchCatalog, *, as_of: bool = True) -> PortalServer:
    return PortalServer("socrata", catalog.answer, as_of_enabled=as_of, cache_replies=True)


def measure_harvest(options: argparse.Namespace, work: Path, table: Table) -> None:
    """Harvest + normalize + store, for each size: pipeline, naive, limit; on a first night (an
    empty database) and on the next night (1% of the catalog changed)."""
    for size in options.sizes:
        say(f"harvest {size_text(size)}: generating the catalog")
        catalog = BenchCatalog(size, NIGHT)
        night = NIGHT.isoformat()
        with served(catalog) as server:
            # One unmeasured pass of each paging fills the server's reply cache.
            limit_fetch(server.url, night)
            naive_fetch_pages(server.url)
            pipeline, naive, limit = Runs(), Runs(), Runs()
            base = work / f"harvest-{size}.duckdb"
            for attempt in range(options.repeats):
                say(f"harvest {size_text(size)}: run {attempt + 1} of {options.repeats}")
                run_step("limit_fetch", {"url": server.url, "night": night}, limit)
                folder = work / f"harvest-{size}-{attempt}"
                folder.mkdir(parents=True)
                arguments = {"url": server.url, "night": night}
                run_step(
                    "pipeline_harvest",
                    {**arguments, "db": str(folder / "ctdata.duckdb"), "staging": str(folder)},
                    pipeline,
                )
                run_step("naive_harvest", {**arguments, "db": str(folder / "naive.duckdb")}, naive)
                if attempt == 0:
                    shutil.copyfile(folder / "ctdata.duckdb", base)
                shutil.rmtree(folder)
            # The next night: the first night stored, 1% of the catalog changed since.
            next_night = catalog.advance().isoformat()
            server.forget()
            limit_fetch(server.url, next_night)
            following = Runs()
            for attempt in range(options.repeats):
                say(
                    f"harvest {size_text(size)}, next night: run {attempt + 1} of {options.repeats}"
                )
                folder = work / f"harvest-{size}-next-{attempt}"
                folder.mkdir(parents=True)
                shutil.copyfile(base, folder / "ctdata.duckdb")
                run_step(
                    "pipeline_harvest",
                    {
                        "url": server.url,
                        "night": next_night,
                        "db": str(folder / "ctdata.duckdb"),
                        "staging": str(folder),
                    },
                    following,
                )
                shutil.rmtree(folder)
            base.unlink()
        del catalog
        table.harvest(size, pipeline, naive, limit, final=size == max(options.sizes))
        table.harvest_next(size, following, naive, limit)


def measure_metrics(options: argparse.Namespace, work: Path, table: Table) -> None:
    """The metric + board step on one night, with 1 and with `nights` nights of history; the
    report's queries over those nights."""
    size, nights = options.metric_size, options.nights
    one, many, naive_db = (
        work / "metrics-1.duckdb",
        work / "metrics-n.duckdb",
        work / "naive.duckdb",
    )
    say(f"metrics {size_text(size)}: storing tonight and synthesizing {nights} nights")
    prepared = run_step(
        "prepare_metric_dbs",
        {
            "size": size,
            "nights": nights,
            "night": NIGHT.isoformat(),
            "one_db": str(one),
            "many_db": str(many),
            "naive_db": str(naive_db),
        },
    )
    say(f"metrics: prepared in {prepared.seconds:.0f} s")
    night = {"night": NIGHT.isoformat()}
    one_night, many_nights, naive, report = Runs(), Runs(), Runs(), Runs()
    for attempt in range(options.repeats):
        say(f"metrics {size_text(size)}: run {attempt + 1} of {options.repeats}")
        if "metrics" in options.only:
            run_step("metric_board", {"db": str(one), **night}, one_night)
            run_step("metric_board", {"db": str(many), **night}, many_nights)
            run_step("naive_metrics", {"db": str(naive_db), **night}, naive)
        if "report" in options.only:
            run_step("report_trends", {"db": str(many), **night}, report)
    if "metrics" in options.only:
        table.metrics(size, nights, one_night, many_nights, naive)
    if "report" in options.only:
        table.report(nights, report)


def measure_storage(options: argparse.Namespace, work: Path, table: Table) -> None:
    """Storage after `nights` nights of a catalog with ~1% changing a night (one run: sizes do
    not vary)."""
    size, nights = options.storage_size, options.nights
    say(f"storage {size_text(size)}: storing {nights} nights, pipeline and naive")
    started = time.perf_counter()
    storage = run_step(
        "storage_history",
        {
            "size": size,
            "nights": nights,
            "first_night": NIGHT.isoformat(),
            "pipeline_db": str(work / "storage.duckdb"),
            "naive_db": str(work / "storage-naive.duckdb"),
        },
    )
    say(f"storage: {time.perf_counter() - started:.0f} s")
    table.storage(size, nights, storage)


def measure_backup(options: argparse.Namespace, work: Path, table: Table) -> None:
    """`ctdata backup` on a year (`nights`) of a `storage_size` catalog with every night's
    metrics and board tables, against EXPORT DATABASE and COPY FROM DATABASE."""
    size, nights = options.storage_size, options.nights
    db = work / "backup-year.duckdb"
    say(f"backup {size_text(size)}: storing tonight and synthesizing {nights} nights")
    prepared = run_step(
        "prepare_backup_year",
        {"size": size, "nights": nights, "night": NIGHT.isoformat(), "db": str(db)},
    )
    say(f"backup: prepared in {prepared.seconds:.0f} s")
    runs = Runs()
    for attempt in range(options.repeats):
        say(f"backup {size_text(size)}: run {attempt + 1} of {options.repeats}")
        arguments = {
            "db": str(db),
            "backups": str(work / "backups"),
            "alternatives": str(work / "backup-alternatives"),
        }
        run_step("backup_warehouse", arguments, runs)
    table.backup(size, nights, runs)


def measure_nightly(options: argparse.Namespace, work: Path, table: Table) -> None:
    """`ctdata nightly` end to end on a live-looking 3k-asset portal, and Dagster's share."""
    walls, peaks, steps = nightly_runs(options, work, NIGHTLY_ASSETS, 1)
    table.nightly(NIGHTLY_ASSETS, walls, peaks, steps)


def measure_portals(options: argparse.Namespace, work: Path, table: Table) -> None:
    """What a portal costs a night: `ctdata nightly` over 1, 10 and 40 portals of one small
    catalog (each its own run, as the schedule launches them), and Dagster's share."""
    for count in options.portal_counts:
        walls, peaks, steps = nightly_runs(options, work, PORTAL_ASSETS, count)
        table.portals(PORTAL_ASSETS, count, walls, peaks, steps)


def nightly_runs(
    options: argparse.Namespace, work: Path, assets: int, portals: int
) -> tuple[list[float], list[int], list[float]]:
    """Wall times, peak memory and summed step times of `options.repeats` runs of the console
    script over `portals` portals that serve the same `assets`-asset catalog."""
    catalog = BenchCatalog(assets, NIGHT)
    script = Path(sys.executable).with_name("ctdata")
    command = [str(script) if script.exists() else shutil.which("ctdata") or "ctdata", "nightly"]
    walls: list[float] = []
    peaks: list[int] = []
    steps: list[float] = []
    with served(catalog, as_of=False) as server:
        for attempt in range(options.repeats):
            say(f"nightly {size_text(assets)} x {portals}: run {attempt + 1} of {options.repeats}")
            folder = work / f"nightly-{assets}-{portals}-{attempt}"
            folder.mkdir(parents=True)
            entries = []
            for number in range(portals):
                entry = portal_entry(server.url, as_of=False)
                if portals > 1:
                    entry["name"] = f"p{number:03d}.{entry['name']}"
                entries.append(entry)
            portal_file = folder / "portals.yaml"
            portal_file.write_text(yaml.safe_dump({"portals": entries}), encoding="utf-8")
            env = child_env(
                CTDATA_PORTALS=str(portal_file),
                CTDATA_DB=str(folder / "data" / "ctdata.duckdb"),
                CTDATA_REPORT_DIR=str(folder / "reports"),
                DAGSTER_HOME=str(folder / "dagster_home"),
                CTDATA_HARVEST_RETRIES="0",
            )
            wall, peak, code = timed_command(command, env, folder)
            if code != 0:
                raise RuntimeError(f"ctdata nightly failed (exit {code})")
            walls.append(wall)
            peaks.append(peak)
            steps.append(dagster_step_seconds(folder / "dagster_home"))
            shutil.rmtree(folder)
    return walls, peaks, steps


def dagster_step_seconds(home: Path) -> float:
    """The summed durations of every step of every run recorded in the instance at `home`:
    what the steps' own code took. The rest of the wall time is Dagster (and Python start)."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    try:
        return sum(
            stats.end_time - stats.start_time
            for run in instance.get_runs()
            for stats in instance.get_run_step_stats(run.run_id)
            if stats.start_time and stats.end_time
        )
    finally:
        instance.dispose()


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Measure what the options select and print the table."""
    options = parse_options(sys.argv[1:] if argv is None else argv)
    if options.probes:
        from benchmarks.probes import measure as measure_probes

        started = time.perf_counter()
        print(measure_probes(options.quick))
        print(f"\nprobes benchmark: {time.perf_counter() - started:.0f} s")
        return
    if options.national:
        from benchmarks.national import measure as measure_national

        started = time.perf_counter()
        national_work = options.work_dir or Path(tempfile.mkdtemp(prefix="ctdata-national-"))
        try:
            print(measure_national(options, national_work))
        finally:
            if options.work_dir is None:
                shutil.rmtree(national_work, ignore_errors=True)
        print(f"\nnational benchmark: {time.perf_counter() - started:.0f} s")
        return
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="ctdata-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    table = Table(quick=options.quick, repeats=options.repeats)
    started = time.perf_counter()
    lines: list[tuple[str, Callable[[argparse.Namespace, Path, Table], None]]] = [
        ("harvest", measure_harvest),
        ("metrics", measure_metrics),
        ("storage", measure_storage),
        ("nightly", measure_nightly),
        ("portals", measure_portals),
        ("backup", measure_backup),
    ]
    try:
        for name, measure in lines:
            if name in options.only or (name == "metrics" and "report" in options.only):
                measure(options, work, table)
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table.render(total_seconds=time.perf_counter() - started))


if __name__ == "__main__":
    main()
