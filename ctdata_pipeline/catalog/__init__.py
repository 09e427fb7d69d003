"""Catalog: normalize staged harvests and keep them as dated snapshots in DuckDB."""
