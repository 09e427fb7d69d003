"""Run one measured step in this (fresh) process: `python -m benchmarks.child STEP ARGS OUT`,
ARGS a JSON object of keyword arguments; the step's result is written to OUT as JSON."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from benchmarks.history import prepare_backup_year, prepare_metric_dbs
from benchmarks.probes import probe_run
from benchmarks.steps import STEPS


def main(argv: list[str]) -> None:
    """Run the step named by argv[1] with the arguments of argv[2]; write its result to argv[3]."""
    # sodapy warns about the missing app token on every client: not news in a benchmark.
    logging.disable(logging.WARNING)
    step, arguments, out = argv[1], json.loads(argv[2]), Path(argv[3])
    steps = {
        **STEPS,
        "prepare_metric_dbs": prepare_metric_dbs,
        "prepare_backup_year": prepare_backup_year,
        "probe_run": probe_run,
    }
    result = steps[step](**arguments)
    out.write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
