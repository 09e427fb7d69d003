"""The table of figures, with each target judged met or not."""

from __future__ import annotations

import platform
import statistics
from dataclasses import dataclass

from benchmarks.run import Runs

GIB = 1024**3


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"


def bytes_text(size: float) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("kB", 1024)):
        if size >= factor:
            return (
                f"{size / factor:.1f} {unit}"
                if size / factor < 100
                else f"{size / factor:.0f} {unit}"
            )
    return f"{size:.0f} B"


def ratio_text(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.1f}x" if ratio < 100 else f"{ratio:.0f}x"


@dataclass
class Row:
    step: str
    size: str
    figure: str
    pipeline: str
    naive: str = ""
    ratio: str = ""
    limit: str = ""
    target: str = ""
    met: bool | None = None


class Table:
    """The rows measured so far, and notes that explain them."""

    def __init__(self, *, quick: bool, repeats: int) -> None:
        self.quick = quick
        self.repeats = repeats
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.one_portal_wall: float | None = None

    def harvest(self, size: int, pipeline: Runs, naive: Runs, limit: Runs, *, final: bool) -> None:
        label = f"{size // 1000}k"
        assets = pipeline.first("assets")
        naive_assets = naive.first("assets")
        # sodapy's datasets() stops at resultSetSize, which the API caps at 10,000: past that the
        # naive run stores part of the catalog, so its time is compared per asset.
        naive_seconds = naive.seconds * (assets / naive_assets if naive_assets else 1)
        speedup = naive_seconds / pipeline.seconds
        to_limit = pipeline.seconds / limit.seconds
        judged = final and (size >= 100_000 or self.quick)
        scope = "" if size >= 100_000 else " (for 100k)"
        naive_time = seconds_text(naive.seconds)
        if naive_assets != assets:
            naive_time += f" for {naive_assets:,} of {assets:,}"
            self.notes.append(
                f"naive at {label}: sodapy's datasets() returned {naive_assets:,} of {assets:,} "
                "assets (resultSetSize is capped at 10,000 and datasets() stops there); its "
                "time is scaled per asset for the ratio."
            )
        step = "harvest+normalize+store"
        self.rows += [
            Row(
                step,
                label,
                "wall",
                seconds_text(pipeline.seconds),
                naive_time,
                f"{ratio_text(speedup)} faster",
                f"{seconds_text(limit.seconds)} ({ratio_text(to_limit)})",
                f"<= 2x limit{scope}",
                to_limit <= 2 if judged else None,
            ),
            Row(
                "",
                "",
                "",
                "",
                "",
                "",
                "",
                f">= 3x faster than naive{scope}",
                speedup >= 3 if judged else None,
            ),
            Row(
                "",
                "",
                "peak memory",
                bytes_text(pipeline.memory),
                bytes_text(naive.memory),
                ratio_text(naive.memory / pipeline.memory),
                bytes_text(limit.memory),
                f"< 1.5 GB{scope}",
                pipeline.memory < 1.5 * 1024**3 if judged else None,
            ),
            Row(
                "",
                "",
                "DuckDB file",
                bytes_text(pipeline.median("db_bytes")),
                bytes_text(naive.median("db_bytes")),
                ratio_text(naive.median("db_bytes") / pipeline.median("db_bytes")),
            ),
        ]
        split = (
            f"harvest at {label}: {seconds_text(pipeline.median('harvest_seconds'))} fetching and "
            f"staging, {seconds_text(pipeline.median('store_seconds'))} normalizing and storing "
            f"({pipeline.first('pages')} pages)."
        )
        self.notes.append(split)

    def harvest_next(self, size: int, pipeline: Runs, naive: Runs, limit: Runs) -> None:
        """The next night's harvest (not judged: the targets are the first night's)."""
        assets = pipeline.first("assets")
        naive_assets = naive.first("assets")
        naive_seconds = naive.seconds * (assets / naive_assets if naive_assets else 1)
        self.rows += [
            Row(
                "  next night, 1% changed",
                f"{size // 1000}k",
                "wall",
                seconds_text(pipeline.seconds),
                "same",
                f"{ratio_text(naive_seconds / pipeline.seconds)} faster",
                f"{seconds_text(limit.seconds)} ({ratio_text(pipeline.seconds / limit.seconds)})",
            ),
            Row("", "", "peak memory", bytes_text(pipeline.memory)),
        ]
        self.notes.append(
            f"next night at {size // 1000}k: {seconds_text(pipeline.median('harvest_seconds'))} "
            f"fetching and staging, {seconds_text(pipeline.median('store_seconds'))} normalizing "
            "and storing (records unchanged since the last night are not normalized again)."
        )

    def metrics(self, size: int, nights: int, one: Runs, many: Runs, naive: Runs) -> None:
        label = f"{size // 1000}k datasets"
        scope = "" if size >= 100_000 else " (for 100k)"
        growth = many.seconds / one.seconds
        step = "metric+board"
        self.rows += [
            Row(
                step,
                f"{label}, 1 night",
                "wall",
                seconds_text(one.seconds),
                seconds_text(naive.seconds),
                ratio_text(naive.seconds / one.seconds),
                "",
                f"< 5 s{scope}",
                one.seconds < 5,
            ),
            Row("", "", "peak memory", bytes_text(one.memory), bytes_text(naive.memory)),
            Row(
                step,
                f"{label}, {nights} nights",
                "wall",
                seconds_text(many.seconds),
                "",
                f"{ratio_text(growth)} 1 night",
                "",
                "<= 1.3x 1 night",
                growth <= 1.3,
            ),
            Row("", "", "peak memory", bytes_text(many.memory)),
        ]
        self.notes.append(
            "metric+board: the naive figure computes two metrics (missing metadata, stale share) "
            "in pandas from tonight's full copy; the pipeline assesses all "
            f"{many.first('datasets'):,} datasets and computes every v1 metric, with FR-6 over "
            f"{many.first('history_nights')} nights."
        )

    def report(self, nights: int, report: Runs) -> None:
        self.rows += [
            Row(
                "report trend queries",
                f"{report.first('nights')} nights",
                "wall",
                seconds_text(report.seconds),
                target="< 1 s",
                met=report.seconds < 1,
            ),
            Row("", "", "whole load_night", seconds_text(report.median("load_night_seconds"))),
        ]

    def storage(self, size: int, nights: int, storage: Runs) -> None:
        result = storage.results[0]
        growth = result["pipeline_bytes"] / result["pipeline_first_bytes"]
        naive_growth = result["naive_bytes"] / result["naive_first_bytes"]
        self.rows += [
            Row(
                "storage",
                f"{size // 1000}k, 1 night",
                "DuckDB file",
                bytes_text(result["pipeline_first_bytes"]),
                bytes_text(result["naive_first_bytes"]),
            ),
            Row(
                "storage",
                f"{size // 1000}k, {nights} nights",
                "DuckDB file",
                f"{bytes_text(result['pipeline_bytes'])} ({ratio_text(growth)})",
                f"{bytes_text(result['naive_bytes'])} ({ratio_text(naive_growth)})",
                ratio_text(result["naive_bytes"] / result["pipeline_bytes"]),
                "",
                "<= 5x 1 night",
                growth <= 5,
            ),
            Row(
                "",
                "",
                "store a night",
                f"{seconds_text(result['store_first_seconds'])} first, "
                f"{seconds_text(result['store_last_seconds'])} last",
                f"{seconds_text(result['naive_last_seconds'])} last",
            ),
        ]
        self.notes.append(
            f"storage: {result['versions']:,} record versions kept for {nights} nights of "
            f"{size:,} assets; one run (sizes do not vary between runs)."
        )

    def backup(self, size: int, nights: int, runs: Runs) -> None:
        """The backup (checkpointed copy, checked) against EXPORT DATABASE to Parquet."""
        label = f"{size // 1000}k, {runs.first('snapshots')} nights"
        check = seconds_text(runs.median("check_seconds"))
        self.rows += [
            Row(
                "backup",
                label,
                "wall",
                f"{seconds_text(runs.seconds)} (check {check})",
                seconds_text(runs.median("export_seconds")),
                ratio_text(runs.median("export_seconds") / runs.seconds),
            ),
            Row(
                "",
                "",
                "backup size",
                f"{bytes_text(runs.first('bytes'))} (the file)",
                bytes_text(runs.first("export_bytes")),
            ),
            Row("", "", "skip test", seconds_text(runs.median("fingerprint_seconds"))),
            Row("", "", "restore's check", seconds_text(runs.median("restore_check_seconds"))),
        ]
        imported = (
            f"its IMPORT DATABASE failed ({runs.first('import_error')})"
            if runs.first("import_error")
            else f"its IMPORT DATABASE took {seconds_text(runs.median('import_seconds'))}"
        )
        self.notes.append(
            f"backup: `ctdata backup`'s work on {nights} nights of a {size:,}-asset catalog "
            "(every night's metrics and board rows, synthesized as for the metric lines): "
            "CHECKPOINT, copy the file while holding it, then every "
            "check of `ctdata check` on the copy (included in wall); skip test = the content "
            "fingerprint the nightly asset compares with the newest backup's. Naive = EXPORT "
            f"DATABASE (FORMAT parquet); {imported}. COPY FROM DATABASE into a new file: "
            f"{seconds_text(runs.median('copy_from_seconds'))}, "
            f"{bytes_text(runs.first('copy_from_bytes'))}."
        )

    def nightly(
        self, assets: int, walls: list[float], peaks: list[int], steps: list[float]
    ) -> None:
        wall = statistics.median(walls)
        step_time = statistics.median(steps)
        self.rows += [
            Row(
                "ctdata nightly",
                f"{assets // 1000}k",
                "wall",
                seconds_text(wall),
                target="< 20 s",
                met=wall < 20,
            ),
            Row("", "", "steps' own time", seconds_text(step_time)),
            Row("", "", "Dagster overhead", seconds_text(wall - step_time)),
            Row("", "", "peak memory", bytes_text(statistics.median(peaks))),
        ]
        self.notes.append(
            "ctdata nightly: wall time of the console script (Python start and imports included); "
            "steps' own time is the sum of every step's start-to-end in the run's Dagster events; "
            "Dagster overhead is the rest (imports, instance, run records, event writes)."
        )

    def portals(
        self, assets: int, portals: int, walls: list[float], peaks: list[int], steps: list[float]
    ) -> None:
        wall = statistics.median(walls)
        step_time = statistics.median(steps)
        per_portal = wall / portals
        at_target = portals == max(40, portals)
        self.rows += [
            Row(
                "ctdata nightly per portal",
                f"{portals} x {assets}",
                "wall / portals",
                seconds_text(per_portal),
                target="<= 0.5 s at 40" if at_target else "",
                met=per_portal <= 0.5 if at_target else None,
            ),
            Row("", "", "wall", seconds_text(wall)),
            Row("", "", "Dagster overhead", seconds_text(wall - step_time)),
            Row("", "", "peak memory", bytes_text(statistics.median(peaks))),
        ]
        if portals == 1:
            self.one_portal_wall = wall
        elif self.one_portal_wall is not None:
            added = (wall - self.one_portal_wall) / (portals - 1)
            self.rows.insert(-3, Row("", "", "each portal beyond one", seconds_text(added)))
        if portals == 1:
            self.notes.append(
                "ctdata nightly per portal: N portals serving the same small catalog, one run "
                "per portal and night (plus the night's report), wall time of the console "
                "script divided by N; Dagster overhead as for ctdata nightly."
            )

    def render(self, *, total_seconds: float) -> str:
        header = Row("step", "size", "figure", "pipeline", "naive", "ratio", "limit", "target")
        cells = [
            [
                row.step,
                row.size,
                row.figure,
                row.pipeline,
                row.naive,
                row.ratio,
                row.limit,
                row.target,
                "" if row.met is None else "met" if row.met else "NOT MET",
            ]
            for row in [header, *self.rows]
        ]
        cells[0][-1] = "met?"
        widths = [max(len(line[column]) for line in cells) for column in range(len(cells[0]))]
        lines = [
            " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in cells
        ]
        lines.insert(1, "-+-".join("-" * width for width in widths))
        machine = (
            f"{platform.python_implementation()} {platform.python_version()}, "
            f"{platform.machine()}, {_cpus()} CPUs, {_memory()}"
        )
        mode = "--quick" if self.quick else "full"
        footer = [
            "",
            f"{mode} run, median of {self.repeats} runs each, {total_seconds / 60:.1f} min; "
            f"{machine}",
            *(f"- {note}" for note in self.notes),
        ]
        return "\n".join(lines + footer)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            kib = int(meminfo.readline().split()[1])
        return f"{kib / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        return "RAM unknown"
