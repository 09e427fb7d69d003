"""The demo's recipients file: the Board and each demo agency's data officer, at example.org
addresses (a domain reserved for examples, RFC 2606), so `ctdata demo` writes the digests a
real deployment would send (as .eml files: the demo never sends mail)."""

from __future__ import annotations

from pathlib import Path

import yaml
from slugify import slugify

from ctdata_pipeline.demo.vocabulary import AGENCIES

DEMO_RECIPIENTS_FILE = "demo_recipients.yaml"
DEMO_BOARD = ("data-board-chair@example.org", "data-board-secretary@example.org")
# Agencies that asked to hear from us even on a period with nothing to fix.
WHEN_CLEAN = frozenset({"Office of Policy and Management"})
# One entry written as the catalogs write the agency, matched through the portal file's
# agency_aliases as a real recipients file may be.
WRITTEN_AS = {"Department of Energy and Environmental Protection": "CT DEEP"}


def demo_recipients_document() -> dict[str, object]:
    agencies: dict[str, object] = {}
    for agency, *_ in AGENCIES:
        address = f"{slugify(agency, max_length=40, word_boundary=True)}-data@example.org"
        entry: object = [address]
        if agency in WHEN_CLEAN:
            entry = {"addresses": [address], "send_when_clean": True}
        agencies[WRITTEN_AS.get(agency, agency)] = entry
    return {
        "board": list(DEMO_BOARD),
        "agencies": agencies,
        "schedule": {"board": "monthly", "agencies": "weekly"},
    }


def write_demo_recipients(folder: Path) -> Path:
    """`folder/demo_recipients.yaml`, rewritten only when its text would change."""
    path = folder / DEMO_RECIPIENTS_FILE
    text = "# Written by ctdata demo: who the demo's digests are addressed to.\n" + yaml.safe_dump(
        demo_recipients_document(), sort_keys=False, allow_unicode=True
    )
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path
