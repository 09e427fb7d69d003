"""The restore drill, through the console script as an operator would run it: a real demo
database and its backups; the file truncated, then overwritten with garbage, then a table
dropped. Each time `ctdata check` names the damage in one line, `ctdata restore` with the newest
backup brings the warehouse back, `ctdata check` passes, and the next `ctdata nightly`
completes (against the demo's portals, served on loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from ctdata_pipeline.backup.folder import list_backups
from ctdata_pipeline.demo.generator import DemoStory
from ctdata_pipeline.demo.portals import DemoPortals
from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline_tests.support import database_contents, run_ctdata

NIGHTS = 2


def cut_in_half(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size // 2)


def overwrite_with_garbage(path: Path) -> None:
    size = path.stat().st_size
    path.write_bytes(bytes((index * 7919) % 251 for index in range(size)))


def drop_a_table(path: Path) -> None:
    conn = duckdb.connect(str(path))
    conn.execute("DROP TABLE board.stale_datasets")
    conn.close()


# (the damage, what `ctdata check` says of the file of that many bytes)
DAMAGE: list[tuple[Callable[[Path], None], Callable[[int], str]]] = [
    (cut_in_half, lambda size: f"is truncated: DuckDB needs bytes past its end ({size:,} bytes)"),
    (
        overwrite_with_garbage,
        lambda size: "is not a DuckDB file (it does not start with DuckDB's header)",
    ),
    (drop_a_table, lambda size: "is missing board.stale_datasets (dropped or never created)"),
]


@pytest.fixture
def demo_portals(tmp_path: Path) -> Iterator[Path]:
    """A portal file naming the demo's portals, served on loopback with the demo's story."""
    portals = DemoPortals(DemoStory(today_in_new_york(), nights=NIGHTS)).start()
    try:
        entries = [
            portal.model_dump(mode="json", exclude_none=True)
            for portal in portals.portal_file().portals
        ]
        path = tmp_path / "demo-portals.yaml"
        path.write_text(yaml.safe_dump({"portals": entries}, sort_keys=False), encoding="utf-8")
        yield path
    finally:
        portals.stop()


def test_the_restore_drill(tmp_path, demo_portals):
    demo = run_ctdata(tmp_path, "demo", "--nights", str(NIGHTS))
    assert demo.returncode == 0, demo.stderr[-3000:]
    db = tmp_path / "data" / "ctdata.duckdb"
    backups = tmp_path / "data" / "backups"
    # The demo's night ended with its report and a backup; one more on demand.
    [after_the_demo] = list_backups(backups, db)
    taken = run_ctdata(tmp_path, "backup")
    assert taken.returncode == 0, taken.stderr
    nightly_env = {"CTDATA_PORTALS": str(demo_portals), "CTDATA_HARVEST_RETRIES": "0"}

    for damage, said in DAMAGE:
        newest = list_backups(backups, db)[-1].path
        damage(db)
        damaged = db.read_bytes()

        checked = run_ctdata(tmp_path, "check")
        assert checked.returncode == 1
        assert checked.stderr == (
            f"ctdata check: FAIL {db} {said(len(damaged))}; to put the newest backup back: "
            f"ctdata restore {newest}\n"
        )

        restored = run_ctdata(tmp_path, "restore", str(newest))
        assert restored.returncode == 0, restored.stderr
        first, second = restored.stdout.splitlines()
        assert first.startswith(f"ctdata restore: {db} now holds {newest}: ")
        aside = Path(second.removeprefix("the file it replaced is kept at "))
        assert aside.parent == db.parent and aside.read_bytes() == damaged
        assert database_contents(db) == database_contents(newest)

        checked = run_ctdata(tmp_path, "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr

        nightly = run_ctdata(tmp_path, "nightly", **nightly_env)
        assert nightly.returncode == 0, nightly.stdout + nightly.stderr
        # The night was stored again, and backed up after its report.
        assert list_backups(backups, db)[-1].path != newest

    assert after_the_demo.path not in [backup.path for backup in list_backups(backups, db)]
    checked = run_ctdata(tmp_path, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
