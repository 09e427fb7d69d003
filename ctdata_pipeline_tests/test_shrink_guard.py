"""The shrink guard on every path that replaces a night: `ctdata nightly` run again on a night
already stored, `ctdata import` over an imported night, and re-normalizing a stored night. Each
is compared with the larger of the stored snapshot of the night and the last good one before
it; a refusal leaves every row and every report file as it was, and `accept_shrink` is the one
deliberate way past it."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from ctdata_pipeline.demo.server import PortalServer
from ctdata_pipeline.partitions import night_key, today_in_new_york
from ctdata_pipeline_tests.support import (
    Pipeline,
    database_contents,
    files_under,
    nightly_source,
    portal_entry,
    query,
    realdata,
    run_ctdata,
    serve,
    socrata_catalog,
    write_portal_file,
)

GOOD = 60  # tonight's first harvest: 60 in-scope datasets
FCC = "dcat/socrata/dcat-us-1.1/opendata.fcc.gov_data.json_2025-01-31.json"
ACCEPT_SHRINK = {"ops": {"catalog_snapshot": {"config": {"accept_shrink": True}}}}


class ChangingPortal:
    """A live-looking Socrata portal whose catalog the test replaces between runs."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = socrata_catalog(GOOD, datasets_only=True)

    def __call__(self, as_of: date | None) -> tuple[Any, datetime]:
        return self.records, datetime.now(UTC)


@dataclass
class Tonight:
    """A folder where `ctdata nightly` stored tonight (snapshot, metrics, board tables,
    report), the portal it harvested, and everything it left, to compare against."""

    folder: Path
    portal: ChangingPortal
    night: date
    tables: dict[str, list[tuple]]
    reports: dict[str, bytes]

    def nightly(self, *options: str) -> Any:
        return run_ctdata(
            self.folder,
            "nightly",
            *options,
            CTDATA_PORTALS=str(self.folder / "portals.yaml"),
            DAGSTER_HOME=str(self.folder / "home"),
            CTDATA_HARVEST_RETRIES="0",
        )

    @property
    def db_path(self) -> Path:
        return self.folder / "data" / "ctdata.duckdb"

    def assert_nothing_lost(self) -> None:
        assert database_contents(self.db_path) == self.tables
        assert files_under(self.folder / "reports") == self.reports


def catalog_snapshot_records(home: Path) -> list[Any]:
    """catalog_snapshot's materializations recorded in a Dagster home, oldest first."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(
            dg.AssetKey("catalog_snapshot"), limit=100
        ).records
        runs = {record.run_id: instance.get_run_by_id(record.run_id) for record in records}
    return [(record, runs[record.run_id]) for record in reversed(records)]


def shrink_guard_of(record: Any) -> str:
    return record.asset_materialization.metadata["shrink_guard"].value


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[ChangingPortal, PortalServer]]:
    changing = ChangingPortal()
    with serve("socrata", changing) as server:
        yield changing, server


@pytest.fixture(scope="module")
def first_night(
    portal: tuple[ChangingPortal, PortalServer], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, date]:
    """Tonight stored once by `ctdata nightly` (the portal's first night): a template."""
    server = portal[1]
    folder = tmp_path_factory.mktemp("tonight")
    write_portal_file(folder, [portal_entry("ct", server)])
    completed = run_ctdata(
        folder,
        "nightly",
        CTDATA_PORTALS=str(folder / "portals.yaml"),
        DAGSTER_HOME=str(folder / "home"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    [(record, _)] = catalog_snapshot_records(folder / "home")
    # The very first night of a portal has nothing to be compared with, and says so.
    assert shrink_guard_of(record) == "no reference: the first night of this portal"
    return folder, today_in_new_york()


@pytest.fixture
def tonight(
    first_night: tuple[Path, date], portal: tuple[ChangingPortal, PortalServer], tmp_path: Path
) -> Iterator[Tonight]:
    template, night = first_night
    for part in ("data", "reports"):
        shutil.copytree(template / part, tmp_path / part)
    shutil.copy(template / "portals.yaml", tmp_path / "portals.yaml")
    contents = database_contents(tmp_path / "data" / "ctdata.duckdb")
    assert contents is not None
    changing = portal[0]
    yield Tonight(tmp_path, changing, night, contents, files_under(tmp_path / "reports"))
    changing.records = socrata_catalog(GOOD, datasets_only=True)


def half_out_of_scope() -> list[dict[str, Any]]:
    """The same 60 assets, 35 of them no longer datasets: in scope falls to 25, assets stay."""
    records = socrata_catalog(GOOD, datasets_only=True)
    for record in records[:35]:
        record["resource"]["type"] = "chart"
    return records


SHRUNKEN = {
    # name: (what the portal serves on the second run, the refusal after "ct: refused: ")
    "a small fraction": (
        lambda: socrata_catalog(3, datasets_only=True),
        "for {night}, 3 in-scope datasets and 3 assets are below 0.5 x the 60 and 60 of the "
        "stored snapshot of this night ({night}); nothing was written. If the portal really "
        "shrank, run the night again with `ctdata nightly --portal ct --accept-shrink` (or "
        "accept_shrink: true in catalog_snapshot's run config), or lower min_in_scope_ratio "
        "for it in the portal file.",
    ),
    "an empty catalog": (
        list,
        "the catalog for {night} holds no assets at all, against 60 in the stored snapshot of "
        "this night ({night}); an empty catalog is never stored, so nothing was written (a "
        "portal that is gone is taken out of the portal file)",
    ),
    "in scope halved, assets not": (
        half_out_of_scope,
        "for {night}, 25 in-scope datasets is below 0.5 x the 60 of the stored snapshot of "
        "this night ({night}); nothing was written. If the portal really shrank,",
    ),
}


@pytest.mark.parametrize("case", list(SHRUNKEN))
def test_a_stored_night_run_again_against_a_shrunken_portal_is_refused(case, tonight):
    serves, refusal = SHRUNKEN[case]
    tonight.portal.records = serves()
    completed = tonight.nightly()
    assert completed.returncode == 1
    line = completed.stderr.strip().splitlines()[-1]
    assert line.startswith(f"ctdata nightly: ct: refused: {refusal.format(night=tonight.night)}")
    assert f"{tonight.night} report: ok" in completed.stdout.splitlines()
    # The night's snapshot, metrics and board tables, and its report (written again after the
    # refused run, from the same stored data), byte for byte as the first run left them.
    tonight.assert_nothing_lost()


def test_accept_shrink_stores_the_smaller_night_and_says_so(tonight):
    tonight.portal.records = socrata_catalog(3, datasets_only=True)
    completed = tonight.nightly("--portal", "ct", "--accept-shrink")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert query(
        tonight.db_path, "SELECT assets_total, datasets_in_scope FROM catalog.snapshots"
    ) == [(3, 3)]
    assert query(
        tonight.db_path,
        "SELECT DISTINCT snapshot_date, value FROM board.plan_metrics "
        "WHERE metric = 'datasets_in_scope' AND agency IS NULL",
    ) == [(tonight.night, 3.0)]
    [(record, run)] = catalog_snapshot_records(tonight.folder / "home")
    assert shrink_guard_of(record) == (
        "overridden: accept_shrink; in scope 3 vs 60 and assets 3 vs 60 of the stored snapshot "
        f"of this night ({tonight.night}) (ratio 0.5) would have been refused"
    )
    # The override lives in the run's config, as a launch from the UI would set it.
    assert run.run_config["ops"]["catalog_snapshot"]["config"] == {"accept_shrink": True}


def test_the_reference_is_the_larger_of_the_stored_night_and_the_night_before(
    tmp_path, instance, today
):
    """Yesterday 200, tonight stored with 120 (passes), tonight again with 90: 90 is most of
    the 120 it would replace, but not half of yesterday's 200."""
    yesterday = today - timedelta(days=1)
    sizes = {yesterday: 200, today: 120}
    source = nightly_source(lambda night: socrata_catalog(sizes[night], datasets_only=True))
    with serve("socrata", source) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        pipeline.run_ok(instance, yesterday, "ct")
        pipeline.run_ok(instance, today, "ct")
    before = database_contents(pipeline.db_path)
    # A server of its own: the loopback portal keeps its answer for a date once given.
    with serve("socrata", socrata_catalog(90, datasets_only=True)) as shrunken:
        [refused] = Pipeline(tmp_path, [portal_entry("ct", shrunken, as_of=True)]).run(
            instance, today, "ct"
        )
    assert not refused.success
    assert refused.reason.startswith(
        f"ct: refused: for {today}, 90 in-scope datasets and 90 assets are below 0.5 x the 200 "
        f"and 200 of the last good snapshot before it ({yesterday}); nothing was written."
    )
    assert database_contents(pipeline.db_path) == before
    passed = instance.fetch_materializations(dg.AssetKey("catalog_snapshot"), limit=1).records
    assert shrink_guard_of(passed[0]) == (
        f"in scope 120 vs 200 and assets 120 vs 200 of the last good snapshot before it "
        f"({yesterday}) (ratio 0.5): passed"
    )


def renormalize(pipeline: Pipeline, instance: dg.DagsterInstance, night: date, **kwargs: Any):
    """Materialize catalog_snapshot alone for a stored night: no harvest, the stored records
    normalized again under the current portal file (what a backfill of the asset does)."""
    catalog_snapshot = pipeline.defs.resolve_assets_def("catalog_snapshot")
    harvested = pipeline.defs.resolve_assets_def("harvested_catalog")
    return dg.materialize(
        [harvested, catalog_snapshot],
        selection=[catalog_snapshot],
        partition_key=night_key(night, "ct"),
        instance=instance,
        raise_on_error=False,
        **kwargs,
    )


def test_re_normalizing_a_stored_night_is_guarded_too(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(30, datasets_only=True)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
        requests = len(socrata.requests)
        same = renormalize(pipeline, instance, today)
        assert same.success
        [written] = same.asset_materializations_for_node("catalog_snapshot")
        assert written.metadata["shrink_guard"].value == (
            f"in scope 30 vs 30 and assets 30 vs 30 of the stored snapshot of this night "
            f"({today}) (ratio 0.5): passed"
        )
        before = database_contents(pipeline.db_path)
        # The portal file now names another domain: none of the stored records is the
        # portal's own any more, so none is in scope.
        moved = Pipeline(tmp_path, [portal_entry("ct", socrata, domain="data.other.example")])
        refused = renormalize(moved, instance, today)
        assert not refused.success
        assert database_contents(pipeline.db_path) == before
        accepted = renormalize(moved, instance, today, run_config=ACCEPT_SHRINK)
        assert accepted.success
        assert len(socrata.requests) == requests  # never harvested again
    [failure] = [event for event in refused.all_events if event.event_type_value == "STEP_FAILURE"]
    assert failure.step_failure_data.user_failure_data.description == (
        f"ct: refused: for {today}, 0 in-scope datasets is below 0.5 x the 30 of the stored "
        f"snapshot of this night ({today}); nothing was written. If the portal really shrank, "
        "materialize catalog_snapshot for the night again with accept_shrink: true in its run "
        "config, or lower min_in_scope_ratio for it in the portal file."
    )
    [overridden] = accepted.asset_materializations_for_node("catalog_snapshot")
    assert overridden.metadata["shrink_guard"].value.startswith(
        "overridden: accept_shrink; in scope 0 vs 30 and assets 30 vs 30"
    )
    assert query(
        pipeline.db_path, "SELECT assets_total, datasets_in_scope FROM catalog.snapshots"
    ) == [(30, 0)]


def test_an_import_over_an_imported_night_with_far_fewer_assets(tmp_path):
    portals = tmp_path / "portals.yaml"
    portals.write_text(
        "portals:\n  - {name: fcc, kind: dcat, url: 'https://opendata.fcc.gov/data.json'}\n"
    )
    environment = {
        "CTDATA_PORTALS": str(portals),
        "CTDATA_DB": str(tmp_path / "data" / "ctdata.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    whole = realdata(FCC)
    feed = json.loads(whole.read_text(encoding="utf-8"))
    few = copy.deepcopy(feed)
    few["dataset"] = feed["dataset"][:5]
    (tmp_path / "few.json").write_text(json.dumps(few), encoding="utf-8")

    def import_file(path: Path, *options: str) -> Any:
        arguments = ["import", "--portal", "fcc", "--date", "2025-01-31", str(path), *options]
        return run_ctdata(tmp_path, *arguments, **environment)

    assert import_file(whole).returncode == 0
    before = database_contents(tmp_path / "data" / "ctdata.duckdb")
    refused = import_file(tmp_path / "few.json")
    assert refused.returncode == 1
    assert refused.stderr == (
        "ctdata import: fcc: refused: for 2025-01-31, 5 in-scope datasets and 5 assets are "
        "below 0.5 x the 59 and 59 of the stored snapshot of this night (2025-01-31); nothing "
        "was written. If the portal really shrank, run `ctdata import` again with "
        "--accept-shrink, or lower min_in_scope_ratio for it in the portal file.\n"
    )
    assert database_contents(tmp_path / "data" / "ctdata.duckdb") == before

    accepted = import_file(tmp_path / "few.json", "--accept-shrink")
    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert "fcc 2025-01-31: imported 5 assets (5 in scope)" in accepted.stdout
    assert query(
        tmp_path / "data" / "ctdata.duckdb",
        "SELECT assets_total, origin FROM catalog.snapshots",
    ) == [(5, "import")]
    records = catalog_snapshot_records(tmp_path / "home")
    assert [shrink_guard_of(record) for record, _ in records] == [
        "no reference: the first night of this portal",
        "overridden: accept_shrink; in scope 5 vs 59 and assets 5 vs 59 of the stored snapshot "
        "of this night (2025-01-31) (ratio 0.5) would have been refused",
    ]
