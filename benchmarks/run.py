"""Running steps in fresh processes and collecting their figures."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a step's process: this checkout's code first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if part
    )
    env.update(extra)
    return env


def wait_measured(process: subprocess.Popen) -> int:
    """Wait for `process` and return its peak resident memory in bytes (ru_maxrss is KiB on
    Linux; wait4 reports the child alone, not every child this process ever had)."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss * 1024


@dataclass
class Runs:
    """Repeated runs of one step: each run's result and peak memory."""

    results: list[dict[str, Any]] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(result[key] for result in self.results)

    @property
    def seconds(self) -> float:
        return self.median("seconds")

    @property
    def memory(self) -> float:
        return statistics.median(self.peak_bytes)

    def first(self, key: str) -> Any:
        return self.results[0][key]


def run_step(step: str, arguments: dict[str, Any], runs: Runs | None = None) -> Runs:
    """Run `step` once in a fresh Python process; add its result and peak memory to `runs`."""
    runs = runs if runs is not None else Runs()
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    try:
        command = [sys.executable, "-m", "benchmarks.child", step, json.dumps(arguments)]
        process = subprocess.Popen([*command, str(out_path)], cwd=REPO_ROOT, env=child_env())
        peak = wait_measured(process)
        if process.returncode != 0:
            raise RuntimeError(f"benchmark step {step} failed (exit {process.returncode})")
        runs.results.append(json.loads(out_path.read_text(encoding="utf-8")))
        runs.peak_bytes.append(peak)
    finally:
        out_path.unlink(missing_ok=True)
    return runs


def timed_command(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int, int]:
    """(wall seconds, peak memory bytes, exit code) of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    # Read stderr to its end before waiting, so a chatty process cannot block on a full pipe.
    errors = process.stderr.read()
    peak = wait_measured(process)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.stderr.write(errors.decode("utf-8", "replace")[-2000:])
    return wall, peak, process.returncode
