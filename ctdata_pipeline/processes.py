"""Which processes are still running: for telling a run or a staged file whose process was
killed from one that another process is still working on."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (signal 0 only checks)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def remove_abandoned_partials(folder: Path, pattern: str) -> None:
    """Remove the scratch files and folders (`<name>.partial-<pid>[-…]`) matching `pattern`
    whose writing process is gone: a killed run leaves them, and they are never published."""
    for partial in folder.glob(pattern):
        pid = partial.name.rsplit(".partial-", 1)[-1].split("-", 1)[0]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        if partial.is_dir() and not partial.is_symlink():
            shutil.rmtree(partial, ignore_errors=True)
        else:
            partial.unlink(missing_ok=True)
