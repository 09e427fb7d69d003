"""The backup asset: after each night's report, a checked copy of the whole warehouse."""

from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from ctdata_pipeline.backup.folder import newest_backup
from ctdata_pipeline.backup.retention import KeepPolicy, RetentionError
from ctdata_pipeline.backup.take import BackupRefused, take_backup
from ctdata_pipeline.board.after_night import REPORT_AUTOMATION
from ctdata_pipeline.board.verify import content_fingerprint
from ctdata_pipeline.failures import failing_clearly
from ctdata_pipeline.report.assets import REPORT
from ctdata_pipeline.warehouse import DUCKDB_POOL, DuckDBWarehouse

BACKUP = dg.AssetKey("warehouse_backup")


class BackupFolder(dg.ConfigurableResource):
    """Where backups of the warehouse go (CTDATA_BACKUP_DIR) and how many are kept
    (CTDATA_BACKUP_KEEP, restic's daily/weekly/monthly rule)."""

    directory: str = Field(description="Backup folder (CTDATA_BACKUP_DIR).")
    keep: str = Field(default="", description="Retention, e.g. daily=7,weekly=5,monthly=12.")

    def path(self) -> Path:
        return Path(self.directory)

    def policy(self) -> KeepPolicy:
        return KeepPolicy.parse(self.keep)


def build_backup_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=BACKUP,
        group_name="backup",
        partitions_def=daily,
        deps=[REPORT],
        kinds={"duckdb"},
        pool=DUCKDB_POOL,
        # After the night's report (whatever the portals did), as the report after the portals.
        automation_condition=REPORT_AUTOMATION,
    )
    def warehouse_backup(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, backups: BackupFolder
    ) -> dg.MaterializeResult:
        """A copy of the whole warehouse (every night's snapshots, metrics and board tables)
        taken after the night's report, checked as `ctdata check` checks the warehouse, in
        CTDATA_BACKUP_DIR: if the DuckDB file is ever lost or damaged, `ctdata restore` puts
        the Board's history back as of the last good night. Kept 7 daily, 5 weekly and 12
        monthly (CTDATA_BACKUP_KEEP); skipped on a night that wrote nothing new."""
        db_path, folder = Path(warehouse.database), backups.path()
        try:
            policy = backups.policy()
        except RetentionError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        if warehouse.lake:
            # Its tables are its catalog database's rows and its data folder's files: backed up
            # with those (pg_dump and a copy of the folder), not as one DuckDB file.
            return _skipped(
                f"the warehouse is {warehouse.location}: back up its catalog database and its "
                "data folder (README, Production)"
            )
        if not db_path.exists():
            return _skipped(f"no warehouse at {db_path} yet: nothing to back up")
        unchanged = _unchanged_since_newest(warehouse, folder, db_path)
        if unchanged:
            return _skipped(
                f"nothing written to the warehouse since the newest backup, {unchanged.name} "
                "(same content fingerprint)",
                newest=str(unchanged),
            )
        try:
            with failing_clearly("write the backup in", folder, writing=False):
                taken = take_backup(db_path, folder, policy)
        except BackupRefused as refusal:
            raise dg.Failure(description=str(refusal), allow_retries=False) from None
        manifest = taken.manifest
        context.log.info(
            f"Backup {taken.backup.path} ({manifest.bytes:,} bytes, {manifest.seconds:.2f}s); "
            f"{len(taken.kept)} kept, {len(taken.deleted)} deleted by retention"
        )
        return dg.MaterializeResult(
            metadata={
                "backup": dg.MetadataValue.path(str(taken.backup.path.resolve())),
                "bytes": manifest.bytes,
                "seconds": manifest.seconds,
                "check_seconds": manifest.check_seconds,
                "snapshots": manifest.snapshots,
                "last_night": manifest.last_night or "",
                "schema_version": manifest.schema_version or 0,
                "retention": policy.describe(),
                "kept": len(taken.kept),
                "deleted": len(taken.deleted),
                "kept_backups": dg.MetadataValue.json([b.path.name for b in taken.kept]),
                "deleted_backups": dg.MetadataValue.json([b.path.name for b in taken.deleted]),
            }
        )

    return [warehouse_backup]


def _unchanged_since_newest(warehouse: DuckDBWarehouse, folder: Path, db_path: Path) -> Path | None:
    """The newest backup, if the warehouse holds exactly what it holds (its manifest's
    fingerprint of every row of every table); None when something was written since."""
    newest = newest_backup(folder, db_path)
    manifest = newest.manifest() if newest else None
    if newest is None or manifest is None:
        return None
    try:
        with warehouse.get_connection(read_only=True) as conn:
            fingerprint = content_fingerprint(conn)
    except (duckdb.Error, dg.Failure):
        return None  # a file that cannot be read whole: taking the backup says why
    return newest.path if fingerprint == manifest.fingerprint else None


def _skipped(reason: str, **extra: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"skipped": reason, **extra})
