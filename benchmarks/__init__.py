"""Benchmarks of issue 7: `python -m benchmarks` (see README, *Benchmarks*)."""
