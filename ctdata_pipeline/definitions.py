"""The ctdata_pipeline code location: `dagster dev` (and `dg dev`) load `defs` from here."""

from ctdata_pipeline.code_location import definitions_from_env

defs = definitions_from_env()
