"""A dry run's messages as .eml files (RFC 5322, CRLF line ends) that a mail client opens."""

from __future__ import annotations

import os
from email.message import EmailMessage
from pathlib import Path

from ctdata_pipeline.delivery.model import WIRE_POLICY
from ctdata_pipeline.durable import sync_to_disk


def write_eml(message: EmailMessage, path: Path) -> Path:
    """Write `message` to `path` whole or not at all: a reader never finds half a message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temporary.write_bytes(message.as_bytes(policy=WIRE_POLICY))
        sync_to_disk(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    sync_to_disk(path.parent)
    return path
