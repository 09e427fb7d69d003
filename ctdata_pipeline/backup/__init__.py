"""Backups of the warehouse, their retention, and restoring one (after checking it)."""
