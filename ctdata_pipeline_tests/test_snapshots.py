"""Nights stored as dated snapshots, through real Dagster runs of the nightly job against
loopback portals: idempotent re-runs, atomic writes, the shrink guard, and no past nights from
live portals."""

import json
from datetime import timedelta

import dagster as dg
import duckdb

from ctdata_pipeline.catalog import schema, stage, write
from ctdata_pipeline.catalog.migrations import migrations
from ctdata_pipeline.partitions import night_key
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    Pipeline,
    load_realdata,
    nightly_source,
    portal_entry,
    query,
    serve,
    socrata_catalog,
)

SPEC_COLUMNS = {
    "snapshot_date",
    "portal",
    "asset_id",
    "asset_type",
    "in_scope",
    "title",
    "description",
    "agency",
    "category",
    "tags",
    "license",
    "update_frequency",
    "data_updated_at",
    "metadata_updated_at",
    "columns_total",
    "columns_described",
    "views_last_month",
    "views_total",
    "downloads_total",
    "url",
}
CT_PORTAL = Portal(
    name="ct", kind="socrata", url="https://data.ct.gov", custom_fields=CT_CUSTOM_FIELDS
)
AGENCY_RULES = "SELECT agency_rule, count(*) FROM catalog.assets GROUP BY 1 ORDER BY 1"
GEOHIVE = "dcat/arcgis-hub/dcat-us-1.1/geohive-ie_dcat-us-1.1.json"


def state_of(db_path, *, harvest_times=True):
    """Everything stored, in a comparable form; without the harvest's own clock readings when
    `harvest_times` is False (a re-run is a new harvest, taken a moment later)."""
    volatile = "loaded_at" if harvest_times else "loaded_at, snapshot_time, harvest_seconds"
    asset_volatile = "" if harvest_times else "EXCLUDE (snapshot_time)"
    return {
        "snapshots": query(
            db_path, f"SELECT * EXCLUDE ({volatile}) FROM catalog.snapshots ORDER BY ALL"
        ),
        "assets": query(
            db_path,
            f"SELECT * {asset_volatile} FROM catalog.assets "
            "ORDER BY snapshot_date, portal, asset_id",
        ),
        "versions": query(db_path, "SELECT count(*) FROM catalog.asset_versions"),
    }


def test_a_night_of_two_portals_lands_in_catalog_assets(tmp_path, instance, today):
    socrata_records = socrata_catalog(60)
    with serve("socrata", socrata_records) as socrata, serve("dcat", load_realdata(GEOHIVE)) as hub:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata), portal_entry("hub", hub)])
        pipeline.run_ok(instance, today, "ct", "hub")

    rows = query(
        pipeline.db_path,
        "SELECT portal, assets_total, datasets_in_scope, kind, paging, origin "
        "FROM catalog.snapshots WHERE snapshot_date = ? ORDER BY portal",
        [today],
    )
    expected_in_scope = sum(
        r["resource"]["type"] == "dataset"
        and r["resource"]["provenance"] == "official"
        and not r["resource"]["parent_fxf"]
        for r in socrata_records
    )
    assert rows == [
        ("ct", 60, expected_in_scope, "socrata", "offset", "harvest"),
        ("hub", 372, 372, "dcat", "feed", "harvest"),
    ]
    columns = {row[0]: row[1] for row in query(pipeline.db_path, "DESCRIBE catalog.assets")}
    assert set(columns) >= SPEC_COLUMNS
    assert columns["data_updated_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["tags"] == "VARCHAR[]"
    counts = query(
        pipeline.db_path,
        "SELECT portal, count(*), count(DISTINCT asset_id), sum(in_scope::INT) FROM catalog.assets "
        "GROUP BY portal ORDER BY portal",
    )
    assert counts == [("ct", 60, 60, expected_in_scope), ("hub", 372, 372, 372)]
    # Loaded harvests leave the staging folder.
    assert not list(pipeline.settings.staging_dir.rglob("*.ndjson"))

    materialization = instance.get_latest_materialization_event(dg.AssetKey("catalog_snapshot"))
    assert materialization is not None
    records = instance.fetch_materializations(dg.AssetKey("catalog_snapshot"), limit=10).records
    [ct_event] = [
        record.event_log_entry.asset_materialization
        for record in records
        if record.event_log_entry.asset_materialization.partition == night_key(today, "ct")
    ]
    assert ct_event.metadata["dagster/row_count"].value == 60
    assert ct_event.metadata["datasets_in_scope"].value == expected_in_scope
    assert len(ct_event.metadata["preview"].value.records) == 10


def test_running_a_night_again_replaces_it(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(80)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
        first = state_of(pipeline.db_path, harvest_times=False)
        pipeline.run_ok(instance, today, "ct")
    second = state_of(pipeline.db_path, harvest_times=False)
    assert second == first
    assert query(pipeline.db_path, "SELECT count(*) FROM catalog.snapshot_assets") == [(80,)]
    assert query(pipeline.db_path, "SELECT count(*) FROM catalog.snapshots") == [(1,)]


def test_history_stores_what_changed_not_a_copy_per_night(tmp_path, instance, today):
    base = socrata_catalog(100, datasets_only=True)

    def catalog_for(night):
        records = json.loads(json.dumps(base))
        if night == today:
            records[0]["resource"]["name"] = "Renamed tonight"
            for record in records:  # views move every night; they are not a new version
                record["resource"]["page_views"]["page_views_last_week"] += 7
        return records

    with serve("socrata", nightly_source(catalog_for)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        pipeline.run_ok(instance, today - timedelta(days=1), "ct")
        pipeline.run_ok(instance, today, "ct")
    assert query(pipeline.db_path, "SELECT count(*) FROM catalog.asset_versions") == [(101,)]
    assert query(pipeline.db_path, "SELECT count(*) FROM catalog.snapshot_assets") == [(200,)]
    titles = query(
        pipeline.db_path,
        "SELECT snapshot_date, title FROM catalog.assets WHERE asset_id = ? ORDER BY 1",
        [base[0]["resource"]["id"]],
    )
    assert titles == [
        (today - timedelta(days=1), base[0]["resource"]["name"]),
        (today, "Renamed tonight"),
    ]
    # Raw records, most of what history costs, are compressed with zstd in a new file.
    assert "ZSTD" in record_compressions(pipeline.db_path)


def test_a_failure_mid_write_leaves_everything_as_it_was(tmp_path, instance, today, monkeypatch):
    catalogs = {"records": socrata_catalog(50)}
    with serve("socrata", nightly_source(lambda night: catalogs["records"])) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
        before = state_of(pipeline.db_path)

        catalogs["records"] = socrata_catalog(70, start=1000)

        def disk_full(conn, portal):
            raise OSError("No space left on device")

        # The last statement of the night's transaction fails, after the night was deleted and
        # re-inserted.
        monkeypatch.setattr(write, "drop_unused_versions", disk_full)
        [result] = pipeline.run(instance, today, "ct")
    assert not result.success and "No space left on device" in result.reason
    assert state_of(pipeline.db_path) == before


def test_an_empty_harvest_is_refused_and_the_last_good_snapshot_stays(tmp_path, instance, today):
    yesterday = today - timedelta(days=1)
    records = socrata_catalog(40)
    source = nightly_source(lambda night: records if night == yesterday else [])
    with serve("socrata", source) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        pipeline.run_ok(instance, yesterday, "ct")
        before = state_of(pipeline.db_path)
        [result] = pipeline.run(instance, today, "ct")
    assert not result.success
    assert result.reason == (
        f"ct: refused: the catalog for {today} holds no assets at all, against 40 in the last "
        f"good snapshot before it ({yesterday}); an empty catalog is never stored, so nothing "
        "was written (a portal that is gone is taken out of the portal file)"
    )
    assert state_of(pipeline.db_path) == before


def test_a_shrunken_catalog_is_refused_unless_the_portal_allows_it(tmp_path, instance, today):
    yesterday = today - timedelta(days=1)

    def catalog_for(night):
        return socrata_catalog(200 if night == yesterday else 80, datasets_only=True)

    with serve("socrata", nightly_source(catalog_for)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata, as_of=True)])
        pipeline.run_ok(instance, yesterday, "ct")
        [refused] = pipeline.run(instance, today, "ct")
        assert not refused.success
        assert refused.reason.startswith(
            f"ct: refused: for {today}, 80 in-scope datasets and 80 assets are below 0.5 x the "
            f"200 and 200 of the last good snapshot before it ({yesterday}); nothing was written."
        )
        assert query(pipeline.db_path, "SELECT max(snapshot_date) FROM catalog.snapshots") == [
            (yesterday,)
        ]

        lenient = portal_entry("ct", socrata, as_of=True, min_in_scope_ratio=0.3)
        relaxed = Pipeline(tmp_path, [lenient])
        relaxed.run_ok(instance, today, "ct")
    assert query(
        relaxed.db_path, "SELECT datasets_in_scope FROM catalog.snapshots ORDER BY snapshot_date"
    ) == [(200,), (80,)]


def test_a_live_portal_is_never_harvested_for_a_past_night(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(10)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        [result] = pipeline.run(instance, today - timedelta(days=2), "ct")
    assert not result.success
    assert "ct: is a live portal, so it can only be harvested for today" in result.reason
    assert socrata.requests == []
    assert not pipeline.db_path.exists() or query(
        pipeline.db_path, "SELECT count(*) FROM catalog.snapshots"
    ) == [(0,)]


def test_a_stored_night_is_renormalized_when_the_rules_change(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(30, datasets_only=True)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        pipeline.run_ok(instance, today, "ct")
        rules_before = query(pipeline.db_path, AGENCY_RULES)
        # The agency custom field is dropped from the portal file: the stored raw records are
        # read again under the new rules, without a new harvest.
        changed = Pipeline(tmp_path, [portal_entry("ct", socrata, custom_fields={})])
        requests_before = len(socrata.requests)
        catalog_snapshot = changed.defs.resolve_assets_def("catalog_snapshot")
        harvested = changed.defs.resolve_assets_def("harvested_catalog")
        result = dg.materialize(
            [harvested, catalog_snapshot],
            selection=[catalog_snapshot],
            partition_key=night_key(today, "ct"),
            instance=instance,
        )
        assert result.success
        assert len(socrata.requests) == requests_before
    rules_after = query(pipeline.db_path, AGENCY_RULES)
    assert ("custom_field", 30) not in rules_after and sum(n for _, n in rules_after) == 30
    assert dict(rules_before).get("custom_field", 0) > 0
    assert query(pipeline.db_path, "SELECT origin, assets_total FROM catalog.snapshots") == [
        ("harvest", 30)
    ]


def test_the_app_token_never_leaves_the_request_header(
    tmp_path, instance, today, monkeypatch, capfd
):
    token = "tok-SECRET-0123456789"
    monkeypatch.setenv("SOCRATA_APP_TOKEN", token)
    with serve("socrata", socrata_catalog(25)) as socrata:
        pipeline = Pipeline(tmp_path, [portal_entry("ct", socrata)])
        [result] = pipeline.run(instance, today, "ct")
    assert result.success
    assert {request.headers.get("X-App-Token") for request in socrata.requests} == {token}
    logs = instance.all_logs(result.run_id)
    assert logs and not any(token in json.dumps(dg.serialize_value(entry)) for entry in logs)
    assert token.encode() not in pipeline.db_path.read_bytes()
    for path in pipeline.settings.staging_dir.parent.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    captured = capfd.readouterr()
    assert token not in captured.out and token not in captured.err


def test_a_portal_that_fails_leaves_the_other_portals_night_complete(tmp_path, instance, today):
    with serve("socrata", socrata_catalog(20)) as healthy, serve("dcat", {"dataset": []}) as hub:
        down = {"name": "down", "kind": "dcat", "url": f"{hub.base_url}/missing.json"}
        pipeline = Pipeline(tmp_path, [portal_entry("good", healthy), down])
        results = {r.portal: r for r in pipeline.run(instance, today, "good", "down")}
    assert results["good"].success
    assert not results["down"].success
    assert results["down"].reason.startswith("down: HTTP 404 from http://127.0.0.1:")
    stored = query(pipeline.db_path, "SELECT portal, assets_total FROM catalog.snapshots")
    assert stored == [("good", 20)]
    # the good portal's night is complete down to the board tables
    for table in ("board.plan_metrics", "metrics.datasets", "board.agency_scorecard"):
        assert query(pipeline.db_path, f"SELECT DISTINCT portal FROM {table}") == [("good",)]


def test_a_database_from_before_a_new_catalog_column_is_migrated(tmp_path, instance, today):
    db = tmp_path / "data" / "ctdata.duckdb"
    db.parent.mkdir(parents=True)
    conn = duckdb.connect(str(db))  # DuckDB's default storage format: before zstd
    # The first step's tables without a recorded version: a file from before versions were
    # recorded, whose normalizer did not know the newest column.
    migrations()[0].apply(conn)
    conn.execute("ALTER TABLE catalog.asset_versions DROP COLUMN schema_errors")
    conn.close()
    with serve("dcat", load_realdata(GEOHIVE)) as hub:
        pipeline = Pipeline(tmp_path, [portal_entry("hub", hub)])
        pipeline.run_ok(instance, today, "hub")
    invalid = query(db, "SELECT count(*) FROM catalog.assets WHERE len(schema_errors) > 0")
    assert invalid[0][0] > 0


def record_compressions(db):
    rows = query(
        db,
        "SELECT DISTINCT compression FROM pragma_storage_info('catalog.asset_versions') "
        "WHERE column_name = 'record'",
    )
    return {row[0] for row in rows}


def test_a_night_normalizes_only_what_changed_and_stores_every_asset(tmp_path):
    """6,000 records, four of them changed tonight: the others reuse last night's versions and
    only the four are normalized; tonight's snapshot is whole, and the four keep their types."""
    from datetime import UTC, date, datetime

    from ctdata_pipeline.harvest.staging import HarvestSummary
    from ctdata_pipeline.warehouse import connect

    portal = CT_PORTAL
    records = socrata_catalog(6000)
    normalized = []
    conn = connect(tmp_path / "ctdata.duckdb")
    schema.ensure_schema(conn)
    for night in (date(2025, 3, 1), date(2025, 3, 2)):
        if night.day == 2:
            for changed in (4001, 4002, 4003, 4004):
                records[changed]["resource"]["name"] = "Renamed tonight"
        report = stage.stage_records(conn, portal, ((r["resource"]["id"], r) for r in records))
        [(new_versions,)] = conn.execute(f"SELECT count(*) FROM {stage.STAGED_VERSIONS}").fetchall()
        normalized.append(new_versions)
        summary = HarvestSummary(
            "ct",
            "socrata",
            night,
            datetime(2025, 3, night.day, 7, tzinfo=UTC),
            "test",
            6000,
            6000,
            2,
            "offset",
            0,
            0.0,
        )
        written = write.write_snapshot(
            conn, portal, summary, report, origin="harvest", min_ratio=0.5
        )
        assert written.assets_total == 6000
        assert sum(report.asset_types.values()) == 6000
    assert normalized == [6000, 4]
    assert conn.execute(
        "SELECT count(*), count(title) FROM catalog.assets WHERE snapshot_date = '2025-03-02'"
    ).fetchone() == (6000, 6000)
    assert conn.execute("SELECT count(*) FROM catalog.asset_versions").fetchone() == (6004,)
    # The changed records' fields arrive typed as they were normalized (lists, numbers, times).
    night_one, night_two = (
        conn.execute(
            "SELECT tags, columns_total, created_at, data_updated_at FROM catalog.assets "
            "WHERE snapshot_date = ? AND asset_id = ?",
            [night, records[4001]["resource"]["id"]],
        ).fetchone()
        for night in (date(2025, 3, 1), date(2025, 3, 2))
    )
    assert night_two == night_one and isinstance(night_two[0], list) and night_two[1] > 0
    conn.close()


def test_version_runs_follow_every_way_a_night_is_written(tmp_path):
    """FR-6 reads catalog.version_runs instead of every asset and night of its window; after
    each write (nights in order, a record that changes and changes back, an asset that leaves
    and returns, the latest night written again with other content, an older night imported
    late, a middle night written again) the runs equal a rebuild from the snapshots."""
    import copy
    from datetime import date

    from ctdata_pipeline.catalog.version_runs import RUNS_DIFFER_SQL
    from ctdata_pipeline.warehouse import connect
    from ctdata_pipeline_tests.support import store_night

    portal = CT_PORTAL
    base = socrata_catalog(30, datasets_only=True)

    def catalog(renamed: int | None = None, without: int | None = None) -> list[dict]:
        records = copy.deepcopy(base)
        if renamed is not None:
            records[renamed]["resource"]["name"] = "Renamed"
        return [r for i, r in enumerate(records) if i != without]

    conn = connect(tmp_path / "ctdata.duckdb")
    schema.ensure_schema(conn)
    day = date(2025, 3, 1)
    writes = [
        (day, catalog()),
        (day + timedelta(days=1), catalog(renamed=3)),  # a new version
        (day + timedelta(days=2), catalog()),  # changed back: the first version again
        (day + timedelta(days=3), catalog(without=5)),  # an asset leaves
        (day + timedelta(days=4), catalog()),  # and returns
        (day + timedelta(days=4), catalog(renamed=7, without=9)),  # the latest night again
        (day + timedelta(days=7), catalog(renamed=3)),  # a gap of two nights
        (day + timedelta(days=5), catalog(renamed=3)),  # an older night, written late
        (day + timedelta(days=2), catalog(renamed=8)),  # a middle night written again
    ]
    for night, records in writes:
        store_night(conn, portal, night, records)
        assert conn.execute(RUNS_DIFFER_SQL, {"portal": None}).fetchall() == [], night
    runs = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE first_night < last_night) "
        "FROM catalog.version_runs"
    ).fetchone()
    assert runs[0] > 30 and runs[1] > 0  # versions held across several nights, and gaps
    conn.close()


def test_a_portals_recent_nights_are_rewritten_in_asset_order_keeping_every_row(
    tmp_path, monkeypatch
):
    """catalog/compact.py: each month of nightly rows is rewritten ordered by asset and night
    (what it saves is the storage line of `python -m benchmarks`). The same 20 nights (1% of
    records changing, every counter moving, an asset leaving and returning, the latest night
    written again) stored with a compaction every 4 nights and with none: every table holds
    the same rows, the version runs match the snapshots, and the compacted rows lie in asset
    order, four nights at a time."""
    import copy
    import random
    from datetime import date

    from ctdata_pipeline.catalog import compact
    from ctdata_pipeline.catalog.version_runs import RUNS_DIFFER_SQL
    from ctdata_pipeline.warehouse import connect
    from ctdata_pipeline_tests.support import store_night, warehouse_contents

    portal = CT_PORTAL
    base = socrata_catalog(300, datasets_only=True)
    first = date(2025, 3, 1)

    def nights():
        rng = random.Random(7)
        records = copy.deepcopy(base)
        for index in range(20):
            for record in records:
                views = record["resource"].setdefault("page_views", {})
                views["page_views_total"] = views.get("page_views_total", 0) + rng.randint(0, 9)
                record["resource"]["download_count"] = index * 3 + rng.randint(0, 2)
            for record in rng.sample(records, 3):
                record["resource"]["name"] = f"Renamed on night {index}"
            tonight = [r for i, r in enumerate(records) if not (5 <= index < 7 and i == 42)]
            yield first + timedelta(days=index), copy.deepcopy(tonight)
            if index == 10:  # the latest night written again, with other content
                yield first + timedelta(days=index), copy.deepcopy(tonight[:-1])

    def stored(name, nights_per_compaction):
        monkeypatch.setattr(compact, "NIGHTS_PER_COMPACTION", nights_per_compaction)
        conn = connect(tmp_path / name)
        schema.ensure_schema(conn)
        for night, records in nights():
            store_night(conn, portal, night, records)
        assert conn.execute(RUNS_DIFFER_SQL, {"portal": None}).fetchall() == []
        order = conn.execute(
            "SELECT asset_id, snapshot_date FROM catalog.snapshot_assets ORDER BY rowid"
        ).fetchall()
        contents = warehouse_contents(conn)
        conn.close()
        return order, contents

    compacted_order, compacted = stored("compacted.duckdb", 4)
    appended_order, appended = stored("appended.duckdb", 10**6)

    assert compacted.pop("catalog.unsorted_nights") == []  # 20 nights: 5 compactions
    assert len(appended.pop("catalog.unsorted_nights")) == 20
    assert compacted == appended
    assert len(compacted["catalog.snapshot_assets"]) == 20 * 300 - 2 - 1
    # Four nights at a time (the latest night's second write included), by asset and night.
    assert compacted_order == sorted(
        compacted_order, key=lambda row: ((row[1] - first).days // 4, row[0], row[1])
    )
    assert appended_order != sorted(appended_order, key=lambda row: (row[0], row[1]))
