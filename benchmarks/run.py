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
    """Wait for `process` and return its peak resident memory in bytes.

    Not ru_maxrss alone: Linux carries into it the high-water mark of the address space the
    child had between fork and exec, a copy of this process (which holds the catalogs it
    serves, 1.3 GB at 100k), so every child would seem to peak at this process's size. The
    child's own high-water mark (VmHWM, per address space) is sampled until it exits, from
    the moment it runs its own program; ru_maxrss is the answer only for a child too quick
    to sample."""
    sampled = 0
    while True:
        sampled = max(sampled, _own_high_water_mark(process.pid))
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    process.returncode = os.waitstatus_to_exitcode(status)
    return sampled or usage.ru_maxrss * 1024


def _own_high_water_mark(pid: int) -> int:
    """VmHWM of a child once it has exec'd its own program (before that it is a copy of this
    process); 0 when it cannot be read."""
    try:
        if Path(f"/proc/{pid}/cmdline").read_bytes() == Path("/proc/self/cmdline").read_bytes():
            return 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


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
    # stderr to a file, not a pipe: the wait samples memory and must not block on reading.
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=errors
        )
        peak = wait_measured(process)
        wall = time.perf_counter() - started
        if process.returncode != 0:
            errors.seek(0)
            sys.stderr.write(errors.read().decode("utf-8", "replace")[-2000:])
    return wall, peak, process.returncode
