"""Writes that fail for reasons outside the code (a full disk, a read-only file, a missing
folder): one clear failure that says what could not be done, where, and why, instead of a
stack trace. What the step was writing was not committed."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)
# DuckDB's class prefixes say nothing to the person reading the run.
_DUCKDB_PREFIXES = ("IO Error: ", "TransactionContext Error: ", "Failed to commit: ")


@contextmanager
def failing_clearly(
    action: str, path: Path, *, os_errors: bool = True, writing: bool = True
) -> Iterator[None]:
    """Run a block that writes (or opens) `path`; a DuckDB storage error, and with `os_errors`
    an OS error, becomes one dg.Failure: "could not <action> <path>: <reason>"."""
    try:
        yield
    except OSError as error:
        # Network errors are OSErrors too (requests'); only storage faults are meant here.
        if not os_errors or error.errno not in STORAGE_ERRNOS:
            raise
        reason = error.strerror or str(error)
        if error.filename and Path(error.filename) != path:
            reason = f"{reason} ({error.filename})"
        raise storage_failure(action, path, reason, writing) from None
    except (duckdb.IOException, duckdb.PermissionException) as error:
        raise storage_failure(action, path, duckdb_reason(error), writing) from None
    except duckdb.TransactionException as error:
        if "Failed to commit" not in str(error):
            raise
        raise storage_failure(action, path, duckdb_reason(error), writing) from None


def storage_failure(action: str, path: Path, reason: str, writing: bool = True) -> dg.Failure:
    after = "; what was there before is unchanged" if writing else ""
    return dg.Failure(
        description=f"could not {action} {path}: {reason}{after}",
        # A full disk or a read-only file stays that way for the seconds a retry waits.
        allow_retries=False,
    )


def duckdb_reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    stripped = True
    while stripped:
        stripped = False
        for prefix in _DUCKDB_PREFIXES:
            if text.startswith(prefix):
                text, stripped = text[len(prefix) :], True
    return text
