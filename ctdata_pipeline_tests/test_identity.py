"""Dataset identity across identifier changes (catalog/identity.py, metrics.md "Dataset
identity"): the three real Hub histories of ../shared/realdata/national/history/ imported night
by night read their 2022 identifier changes as `rekeyed`, not as the catalog removed and added;
FR-6 follows a dataset across its ids; the match is one-to-one, rule by rule; a night written
out of order and a file stored before identity was kept are matched too."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ctdata_pipeline.board.publish import publish_night
from ctdata_pipeline.catalog.identity import Candidate, Rekeying, match_ids
from ctdata_pipeline.catalog.importer import import_archive
from ctdata_pipeline.catalog.schema import ensure_schema
from ctdata_pipeline.catalog.write import store_records
from ctdata_pipeline.cli import main
from ctdata_pipeline.metrics.compute import compute_night
from ctdata_pipeline.portals import Portal
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import metrics_of, realdata, store_night

HISTORY = "national/history"


def history_nights(code: str) -> list[tuple[date, Path]]:
    nights = []
    for path in sorted(realdata(f"{HISTORY}/{code}").glob(f"{code}_*.json")):
        stamp = path.stem.split("_")[1]
        nights.append((date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:])), path))
    return nights


def import_history(path: Path, code: str) -> duckdb.DuckDBPyConnection:
    """Every night of one history, in order, through what `ctdata import` runs: the archive
    stored as the night, then the night's metrics and board tables."""
    portal = Portal(name=code, kind="dcat", url=f"https://{code}.example/data.json")
    conn = connect(path)
    for night, archive in history_nights(code):
        import_archive(
            conn,
            portal,
            night,
            archive,
            first_night=date(2020, 1, 1),
            portal_file_path=path.with_name("portals.yaml"),
            min_ratio=0.5,
        )
        compute_night(conn, portal, night)
        publish_night(conn, code, night)
    return conn


def inv2(conn: duckdb.DuckDBPyConnection, code: str) -> dict[date, dict[str, int]]:
    """The nights with a change: {night: {added/removed/renamed/rekeyed: count > 0}}."""
    changes: dict[date, dict[str, int]] = {}
    for night, metric, value in conn.execute(
        "SELECT snapshot_date, metric, value FROM board.plan_metrics WHERE portal = ? "
        "AND metric_id = 'INV-2' AND agency IS NULL AND value > 0 ORDER BY 1, 2",
        [code],
    ).fetchall():
        changes.setdefault(night, {})[metric.removeprefix("datasets_")] = int(value)
    return changes


# Measured with the rule, each checked against the archives by reading the unmatched records:
# before identity the same nights read 8+8 and 49+49 (01b-18163), 82+83 and 35+35 (05b-27019,
# the issue's figure), 32+29 and 23+23 (08b-42043) added + removed.
EXPECTED = {
    "01b-18163": {
        date(2021, 1, 19): {"added": 1},
        date(2021, 5, 13): {"removed": 4},
        date(2021, 10, 24): {"added": 1},
        date(2021, 12, 31): {"removed": 1},
        date(2022, 1, 30): {"rekeyed": 8},
        date(2022, 4, 17): {"rekeyed": 49},
    },
    "05b-27019": {
        date(2021, 3, 26): {"removed": 10},
        date(2021, 10, 24): {"added": 1},
        date(2021, 11, 22): {"added": 3},
        # Plat Boundaries (6755b7a9..._13) is in no later night under any id: really removed.
        date(2022, 1, 30): {"rekeyed": 82, "removed": 1},
        # "Chaska Zoning Districts - Parcel Based" went, "CC Annexation Boundaries" came.
        date(2022, 2, 27): {"added": 1, "rekeyed": 1, "removed": 1},
        date(2022, 3, 27): {"removed": 1},
        date(2022, 4, 17): {"rekeyed": 35},
    },
    "08b-42043": {
        date(2021, 2, 10): {"removed": 1},
        date(2021, 3, 26): {"removed": 1},
        date(2021, 12, 31): {"added": 1},
        # three datasets new that night (Millage Rates, Parcel Characteristics, Tax Assessment
        # District Codes): no id disappeared for them
        date(2022, 1, 30): {"added": 3, "rekeyed": 29},
        date(2022, 4, 17): {"rekeyed": 23},
    },
}


# (last night's datasets whose identity the first night held, last night's datasets): by id
# alone none of them, every id having changed form since 2020-09-18.
CONTINUING = {"01b-18163": (54, 56), "05b-27019": (76, 81), "08b-42043": (28, 32)}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_a_real_history_reads_its_identifier_changes_as_rekeyed(tmp_path, code):
    conn = import_history(tmp_path / "ctdata.duckdb", code)
    assert inv2(conn, code) == EXPECTED[code]
    # every rekeyed row of the board names both ids, the previous one held the night before
    rekeyed = conn.execute(
        """
        SELECT c.snapshot_date, c.asset_id, c.previous_asset_id,
               EXISTS (SELECT 1 FROM catalog.assets AS a WHERE a.portal = c.portal
                       AND a.snapshot_date = c.previous_date AND a.asset_id = c.previous_asset_id)
        FROM board.catalog_changes AS c
        WHERE c.portal = ? AND c.change = 'rekeyed'
        """,
        [code],
    ).fetchall()
    assert len(rekeyed) == sum(n.get("rekeyed", 0) for n in EXPECTED[code].values())
    assert all(new != previous and held for _, new, previous, held in rekeyed)
    # the trend continues: the last night's datasets are, by identity, those of the first
    # night still there (the catalog never really emptied)
    first, last = history_nights(code)[0][0], history_nights(code)[-1][0]
    continuing = conn.execute(
        """
        SELECT count(*) FILTER (WHERE coalesce(i.dataset_id, a.asset_id) IN (
                   SELECT asset_id FROM catalog.assets WHERE portal = $portal
                   AND snapshot_date = $first)),
               count(*)
        FROM catalog.assets AS a
        LEFT JOIN catalog.asset_identity AS i USING (portal, asset_id)
        WHERE a.portal = $portal AND a.snapshot_date = $last
        """,
        {"portal": code, "first": first, "last": last},
    ).fetchone()
    assert continuing == CONTINUING[code]
    conn.close()


def test_the_rekeyed_rows_of_the_issues_night(tmp_path):
    """history/05b-27019 on 2022-01-30 (the issue's "83 removed + 82 added"): a layer, a
    Hub item and a PDF map, each matched by its own rule, with both ids on the board."""
    conn = import_history(tmp_path / "ctdata.duckdb", "05b-27019")
    rows = conn.execute(
        """
        SELECT c.title, c.previous_asset_id, c.asset_id, r.matched_by
        FROM board.catalog_changes AS c
        JOIN catalog.rekeyed AS r
            ON r.portal = c.portal AND r.snapshot_date = c.snapshot_date
            AND r.asset_id = c.asset_id
        WHERE c.snapshot_date = '2022-01-30' AND c.change = 'rekeyed'
          AND c.title IN ('Waconia Zoning Districts', '2017 Commissioner Districts PDF Map')
        ORDER BY 1
        """
    ).fetchall()
    hub = "https://data-carver.opendata.arcgis.com/"
    assert rows == [
        (
            "2017 Commissioner Districts PDF Map",
            "bb83a3513b9148afad4e7d5590d020d4",
            hub + "documents/carver::2017-commissioner-districts-pdf-map",
            "title_publisher",
        ),
        (
            "Waconia Zoning Districts",
            "db98813771be4eed9ec380ce607490a4_1",
            hub + "datasets/carver::waconia-zoning-districts",
            "layer_url",
        ),
    ]
    by_rule = dict(
        conn.execute(
            "SELECT matched_by, count(*) FROM catalog.rekeyed WHERE snapshot_date = '2022-01-30' "
            "GROUP BY ALL"
        ).fetchall()
    )
    assert by_rule == {"layer_url": 34, "hub_item": 22, "title_publisher": 26}
    # the second change (2022-04-17, /datasets/ -> /maps/) chains to the first id
    assert conn.execute(
        "SELECT dataset_id FROM catalog.asset_identity WHERE asset_id = ?",
        [hub + "maps/carver::waconia-zoning-districts"],
    ).fetchall() == [("db98813771be4eed9ec380ce607490a4_1",)]
    conn.close()


def candidate(asset_id, title, layer=None, agency="County GIS", item_url=None):
    distributions = tuple(url for url in (layer, item_url) if url)
    return Candidate(asset_id, title, agency, (asset_id,), distributions)


def test_the_rules_apply_in_order_and_one_to_one():
    service = "https://gis.example/arcgis/rest/services/Parcels/MapServer"
    new = [
        # same layer, new title: the layer URL says it is the same dataset
        candidate("n-roads", "Road centerlines 2022", f"{service}/3?f=json"),
        # two new ids share a service URL with two old ones: ambiguous, so the title decides
        candidate("n-zoning", "Zoning", service),
        candidate("n-parks", "Parks", service),
        # the Hub item id from a download URL
        candidate(
            "n-trails",
            "Trails (new)",
            item_url="https://hub.example/datasets/0123456789abcdef0123456789abcdef_2.geojson",
        ),
        # two new datasets with one old one's title and publisher: neither is matched
        candidate("n-a", "Bridges"),
        candidate("n-b", "Bridges"),
    ]
    gone = [
        candidate("o-roads", "Roads", f"{service.upper()}/3/"),
        candidate("o-zoning", " zoning ", service),
        candidate("o-parks", "PARKS", service + "/"),
        candidate("0123456789abcdef0123456789abcdef_2", "Trails"),
        candidate("o-bridges", "Bridges"),
    ]
    assert sorted(match_ids(new, gone), key=lambda m: m.asset_id) == [
        Rekeying("n-parks", "o-parks", "title_publisher"),
        Rekeying("n-roads", "o-roads", "layer_url"),
        Rekeying("n-trails", "0123456789abcdef0123456789abcdef_2", "hub_item"),
        Rekeying("n-zoning", "o-zoning", "title_publisher"),
    ]
    # a different publisher is a different dataset
    assert match_ids([candidate("x", "Parks", agency="City")], [candidate("y", "Parks")]) == []


PORTAL = Portal(name="hub", kind="dcat", url="https://hub.example/data.json")
ITEM = "a" * 32
LAYER = "https://gis.example/arcgis/rest/services/Parcels/FeatureServer/0"


def hub_dataset(identifier: str, title: str, modified: datetime, layer: str | None = None):
    return {
        "identifier": identifier,
        "title": title,
        "description": f"{title} of the county, kept by the GIS office.",
        "keyword": ["gis"],
        "modified": modified.isoformat(),
        "publisher": {"name": "County GIS"},
        "contactPoint": {"fn": "GIS", "hasEmail": "mailto:gis@example.org"},
        "accessLevel": "public",
        "accrualPeriodicity": "R/P1W",
        "distribution": [{"accessURL": layer}] if layer else [],
    }


def test_fr6_follows_a_dataset_across_its_ids(tmp_path):
    """32 nights; the parcels layer's data changed every 2 days for its first 16 nights, under
    `<item>_0`; its id then became `owner::parcels` (its data unchanged since). FR-6 of the last
    night sees the whole series (median 2 days between changes); read by id, the new id would
    have one data date and no interval at all."""
    conn = connect(tmp_path / "ctdata.duckdb")
    start = date(2025, 1, 1)
    base = datetime(2024, 12, 31, 12, tzinfo=UTC)
    for day in range(32):
        night = start + timedelta(days=day)
        changed = base + timedelta(days=2 * min(day // 2, 7))
        parcels = (
            hub_dataset(f"https://hub.example/datasets/{ITEM}_0", "Parcels", changed, LAYER)
            if day < 16
            else hub_dataset(
                "https://hub.example/datasets/county::parcels", "Parcels", changed, LAYER
            )
        )
        roads = hub_dataset("https://hub.example/datasets/" + "b" * 32 + "_1", "Roads", base)
        store_night(conn, PORTAL, night, [parcels, roads])
        compute_night(conn, PORTAL, night)
    last = start + timedelta(days=31)
    assessed = dict(
        conn.execute(
            "SELECT asset_id, observed_interval_days FROM metrics.datasets "
            "WHERE portal = 'hub' AND snapshot_date = ?",
            [last],
        ).fetchall()
    )
    assert assessed == {"https://hub.example/datasets/county::parcels": 2.0, "b" * 32 + "_1": None}
    assert metrics_of(conn, "hub", start + timedelta(days=16))["datasets_rekeyed"][2] == 1
    assert metrics_of(conn, "hub", start + timedelta(days=16))["datasets_added"][2] == 0
    conn.close()


def test_a_night_written_out_of_order_moves_the_rekeying(tmp_path):
    """Nights 1 and 3 first (the id changed between them), then night 2 (already the new id):
    the rekeying is night 2's, night 3 has none."""
    conn = connect(tmp_path / "ctdata.duckdb")
    modified = datetime(2024, 6, 1, tzinfo=UTC)
    old = hub_dataset(f"https://hub.example/datasets/{ITEM}_0", "Parcels", modified, LAYER)
    new = hub_dataset("https://hub.example/datasets/county::parcels", "Parcels", modified, LAYER)
    nights = [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 3)]
    store_night(conn, PORTAL, nights[0], [old])
    store_night(conn, PORTAL, nights[2], [new])
    rekeyed = "SELECT snapshot_date, asset_id, previous_asset_id FROM catalog.rekeyed ORDER BY 1"
    assert conn.execute(rekeyed).fetchall() == [
        (nights[2], "https://hub.example/datasets/county::parcels", f"{ITEM}_0")
    ]
    store_night(conn, PORTAL, nights[1], [new])
    assert conn.execute(rekeyed).fetchall() == [
        (nights[1], "https://hub.example/datasets/county::parcels", f"{ITEM}_0")
    ]
    changes = "SELECT change, asset_id, previous_asset_id FROM catalog.changes('hub', ?)"
    assert conn.execute(changes, [nights[1]]).fetchall() == [
        ("rekeyed", "https://hub.example/datasets/county::parcels", f"{ITEM}_0")
    ]
    assert conn.execute(changes, [nights[2]]).fetchall() == []
    conn.close()


def test_a_rekeyed_dataset_with_a_new_title_is_renamed_too(tmp_path):
    """Matched by its layer URL under a new id and a new title: one 'rekeyed' row and one
    'renamed' row, both naming the id it had; INV-2 counts it rekeyed and renamed, not added."""
    conn = connect(tmp_path / "ctdata.duckdb")
    modified = datetime(2024, 6, 1, tzinfo=UTC)
    nights = [date(2025, 1, 1), date(2025, 1, 2)]
    store_night(conn, PORTAL, nights[0], [hub_dataset(ITEM, "Parcels", modified, LAYER)])
    written = store_records(
        conn,
        PORTAL,
        nights[1],
        [hub_dataset("county::parcels", "Tax parcels", modified, LAYER)],
        source="test",
    )
    # what the catalog step logs and puts in the snapshot's metadata (and ctdata import prints)
    assert written.rekeyed == (
        "1 dataset rekeyed (a new id for a dataset of the previous snapshot, not removed + "
        "added): 1 by ArcGIS REST layer URL"
    )
    assert conn.execute(
        "SELECT change, asset_id, title, previous_title, previous_asset_id "
        "FROM catalog.changes('hub', ?) ORDER BY 1",
        [nights[1]],
    ).fetchall() == [
        ("rekeyed", "county::parcels", "Tax parcels", "Parcels", ITEM),
        ("renamed", "county::parcels", "Tax parcels", "Parcels", ITEM),
    ]
    compute_night(conn, PORTAL, nights[1])
    metrics = metrics_of(conn, "hub", nights[1])
    assert {m: metrics[f"datasets_{m}"][2] for m in ("added", "removed", "renamed", "rekeyed")} == {
        "added": 0,
        "removed": 0,
        "renamed": 1,
        "rekeyed": 1,
    }
    conn.close()


def test_a_file_stored_before_identity_gets_its_rekeyings(tmp_path):
    """A file at schema version 3 (no catalog.rekeyed, no previous_asset_id on the board, no
    valid_fields in metrics.datasets): migration 0004 adds them and matches the nights already
    stored; the night's recompute fills valid_fields."""
    db = tmp_path / "ctdata.duckdb"
    conn = connect(db)
    modified = datetime(2024, 6, 1, tzinfo=UTC)
    nights = [date(2025, 1, 1), date(2025, 1, 2)]
    store_night(conn, PORTAL, nights[0], [hub_dataset(f"{ITEM}", "Parcels", modified, LAYER)])
    store_night(conn, PORTAL, nights[1], [hub_dataset("county::p", "Parcels", modified, LAYER)])
    for night in nights:
        compute_night(conn, PORTAL, night)
        publish_night(conn, "hub", night)
    conn.execute("DROP TABLE catalog.rekeyed")
    conn.execute("DROP TABLE catalog.asset_identity")
    conn.execute("DELETE FROM board.catalog_changes")
    conn.execute("ALTER TABLE board.catalog_changes DROP COLUMN previous_asset_id")
    conn.execute("ALTER TABLE metrics.datasets DROP COLUMN valid_fields")
    conn.execute("UPDATE main.schema_version SET version = 3")
    conn.close()

    conn = connect(db)
    ensure_schema(conn)
    assert conn.execute("SELECT * FROM catalog.rekeyed").fetchall() == [
        ("hub", nights[1], "county::p", ITEM, "layer_url")
    ]
    publish_night(conn, "hub", nights[1])
    assert conn.execute(
        "SELECT change, asset_id, previous_asset_id FROM board.catalog_changes"
    ).fetchall() == [("rekeyed", "county::p", ITEM)]
    compute_night(conn, PORTAL, nights[1])
    assert conn.execute(
        "SELECT snapshot_date, valid_fields FROM metrics.datasets ORDER BY 1"
    ).fetchall() == [
        (nights[0], None),
        (nights[1], ["contactPoint.hasEmail", "modified", "accessLevel"]),
    ]
    conn.close()


def test_ctdata_import_says_rekeyed(tmp_path, monkeypatch):
    """`ctdata import` of 08b-42043's nights around its first change prints the rekeyings."""
    (tmp_path / "portals.yaml").write_text(
        "first_night: 2020-01-01\nportals:\n"
        "  - {name: dauphin, kind: dcat, url: 'https://data-dauphinco.opendata.arcgis.com/data.json'}\n"
    )
    monkeypatch.setenv("CTDATA_PORTALS", str(tmp_path / "portals.yaml"))
    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "data" / "ctdata.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    nights = dict(history_nights("08b-42043"))
    outputs = []
    for night in (date(2021, 12, 31), date(2022, 1, 30)):
        result = CliRunner().invoke(
            main, ["import", "--portal", "dauphin", "--date", str(night), str(nights[night])]
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    assert "rekeyed" not in outputs[0]
    assert (
        "dauphin 2022-01-30: 29 datasets rekeyed (a new id for a dataset of the previous "
        "snapshot, not removed + added): 21 by ArcGIS REST layer URL, 1 by Hub item id, "
        "7 by title and publisher"
    ) in outputs[1]
