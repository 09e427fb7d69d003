"""Files published by a rename (backups, the readers' copy) are flushed to disk first, so a
crash right after the rename cannot leave an empty or half-written file under the new name."""

from __future__ import annotations

import os
from pathlib import Path


def sync_to_disk(path: Path) -> None:
    """Flush a file's data, or a folder's entries (a rename into it), to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
