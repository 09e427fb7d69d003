"""Metrics: the State Data Plan's metrics (metrics.md v1), computed in DuckDB for each night."""
