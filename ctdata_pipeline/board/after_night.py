"""What follows a night, once every portal's run for it is done (the report, the readers' copy,
the backup): when it runs, and what it says when no night was ever stored. It lives with the
board tables it reads, so the later stages import it down the flow."""

import dagster as dg
import duckdb

from ctdata_pipeline.probes.model import BROKEN_LINKS, PROBE_PLAN_METRICS, SILENTLY_STALE
from ctdata_pipeline.warehouse import scalar

# What the probe job writes for a night: the report and the readers' copy depend on it too, so
# their automation runs them again once a night's probes are in (probes run after the nightly
# run; the report first shows the night without them, then with them).
AFTER_PROBES = (PROBE_PLAN_METRICS, BROKEN_LINKS, SILENTLY_STALE)

# Build a night's report once every portal's run for it has finished (succeeded or not: a
# portal that failed is reported as missing rather than holding up the others).
REPORT_AUTOMATION = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
)


def nothing_stored_failure(database: str) -> dg.Failure:
    """A night whose every portal failed before anything was ever stored: what the report (and
    the readers' copy, in the same words, since either may fail first) says."""
    return dg.Failure(
        description=f"no night is stored in {database} yet: nothing to report (see the "
        "portals' runs for why)",
        allow_retries=False,
    )


def board_tables_exist(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether any night was ever published to the board tables."""
    return bool(
        scalar(
            conn,
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'board' AND table_name = 'plan_metrics'",
        )
    )
