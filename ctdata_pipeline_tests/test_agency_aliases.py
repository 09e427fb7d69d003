"""Agency names reconciled: `agency_aliases:` groups a night's metrics under the canonical name
and keeps the name as published on every per-dataset row, end to end through the real jobs (and
again through the recompute when the aliases change); the rule that lists likely variants."""

from datetime import date, timedelta

import duckdb
import pytest

from ctdata_pipeline.catalog.migrations import migrate
from ctdata_pipeline.cli import run_nights
from ctdata_pipeline.demo.portals import UNRECONCILED_AGENCY, demo_portal_file
from ctdata_pipeline.jobs import RECOMPUTE_JOB
from ctdata_pipeline.metrics.agencies import likely_agency_variants, published_agency_names
from ctdata_pipeline.metrics.compute import compute_night
from ctdata_pipeline.metrics.definitions import NO_AGENCY
from ctdata_pipeline.portals import Portal
from ctdata_pipeline_tests.support import (
    CT_CUSTOM_FIELDS,
    Pipeline,
    nightly_source,
    portal_entry,
    query,
    serve,
    socrata_record,
    store_night,
    write_portal_file,
)

DEEP = "Department of Energy and Environmental Protection"
DEEP_ALIASES = {DEEP: ["CT DEEP", "DEEP Open Data"]}


@pytest.mark.parametrize(
    "names, group",
    [
        (["CT DEEP", "DEEP Open Data", DEEP], (DEEP, "DEEP Open Data", "CT DEEP")),
        (
            ["CT Department of Transportation", "Department of Transportation"],
            ("CT Department of Transportation", "Department of Transportation"),
        ),
        (["Department of Motor Vehicles", "DMV"], ("Department of Motor Vehicles", "DMV")),
        (["Dept. of Labor", "Department of Labor"], ("Department of Labor", "Dept. of Labor")),
        (["State of Connecticut Department of Housing", "DOH"], None),  # DOH: not DH
        (
            ["Connecticut State Library", "CSL Open Data"],
            ("Connecticut State Library", "CSL Open Data"),
        ),
        (["EEP", DEEP], (DEEP, "EEP")),  # the initials without "Department"
    ],
)
def test_variants_of_one_agency_are_grouped(names, group):
    found = likely_agency_variants(names)
    assert found == ([group] if group else [])


@pytest.mark.parametrize(
    "names",
    [
        ["Department of Labor", "Department of Public Health"],
        ["Office of Policy and Management", "Office of Early Childhood"],
        ["Department of Public Health", "Department of Public Housing"],  # same initials
        ["Department of Social Services", "Secretary of the State", "SS Open Data"],  # SS: which?
        ["Deep", DEEP],  # a word, not an acronym
        ["CT", "Open Data", "GIS", None, ""],  # nothing left to compare
    ],
)
def test_different_agencies_are_not_grouped(names):
    assert likely_agency_variants(names) == []


def test_names_already_reconciled_are_not_reported():
    names = ["CT DEEP", "DEEP Open Data", DEEP, "DMV", "Department of Motor Vehicles"]
    aliases = {"CT DEEP": DEEP, "DEEP Open Data": DEEP}
    assert likely_agency_variants(names, aliases) == [("Department of Motor Vehicles", "DMV")]
    # one variant left out: the group is its name and the canonical one it likely belongs to
    assert likely_agency_variants(names[:3], {"CT DEEP": DEEP}) == [(DEEP, "DEEP Open Data")]


def _records(night: date) -> list[dict]:
    """Eight datasets under three names of DEEP, two of Labor, one of none; the datasets
    without tags miss MD-1. A CT DEEP dataset's title differs on odd and even days, so each
    night renames it."""
    agencies = [DEEP, DEEP, "CT DEEP", "CT DEEP", "DEEP Open Data", "Department of Labor"]
    agencies += ["Department of Labor", None]
    records = []
    for number, agency in enumerate(agencies):
        title = f"Permits issued by town, table {number}"
        if number == 2 and night.day % 2 == 0:
            title += " (renamed)"
        records.append(
            socrata_record(
                f"aaaa-{number:04d}",
                title=title,
                agency=agency,
                tags=[] if number % 2 else ["permits", "ct"],
                attribution=None,
            )
        )
    return records


def _night_rows(db_path, table, columns, night):
    return query(
        db_path,
        f"SELECT {columns} FROM {table} WHERE snapshot_date = ? AND portal = 'ct' ORDER BY ALL",
        [night],
    )


def test_aliases_group_the_metrics_and_keep_the_names_as_published(tmp_path, instance, today):
    first, second = today - timedelta(days=3), today - timedelta(days=2)
    with serve("socrata", nightly_source(_records)) as server:
        entry = portal_entry("ct", server, as_of=True)
        # the portal's own aliases add to the file's
        entry["agency_aliases"] = {"Department of Labor": ["Labour Dept"]}
        pipeline = Pipeline(tmp_path, [entry], agency_aliases=DEEP_ALIASES)
        pipeline.run_ok(instance, first, "ct")
        pipeline.run_ok(instance, second, "ct")
    db = pipeline.db_path
    # the dataset that names no agency falls back to its owner account (the spec's rule)
    [(owner,)] = query(
        db, "SELECT DISTINCT agency FROM catalog.assets WHERE asset_id = 'aaaa-0007'"
    )

    scorecard = dict(_night_rows(db, "board.agency_scorecard", "agency, datasets", second))
    assert scorecard == {DEEP: 5, "Department of Labor": 2, owner: 1}
    published = _night_rows(db, "metrics.datasets", "agency, agency_as_published", second)
    assert sorted({row for row in published}) == [
        (DEEP, "CT DEEP"),
        (DEEP, "DEEP Open Data"),
        (DEEP, DEEP),
        ("Department of Labor", "Department of Labor"),
        (owner, owner),
    ]
    # catalog.assets keeps the name as published alone
    raw = _night_rows(db, "catalog.assets", "DISTINCT agency", second)
    assert ("CT DEEP",) in raw and ("DEEP Open Data",) in raw
    missing = _night_rows(
        db, "board.missing_metadata", "asset_id, agency, agency_as_published", second
    )
    assert ("aaaa-0003", DEEP, "CT DEEP") in missing
    assert {row[1] for row in missing} <= set(scorecard)

    # per agency, the numerators add up to the portal's
    for metric in ("datasets_in_scope", "pct_missing_metadata", "pct_meets_ct_standard"):
        rows = query(
            db,
            "SELECT agency, numerator, denominator FROM board.plan_metrics "
            "WHERE snapshot_date = ? AND portal = 'ct' AND metric = ?",
            [second, metric],
        )
        per_agency = [row for row in rows if row[0] is not None]
        [portal_wide] = [row for row in rows if row[0] is None]
        assert {row[0] for row in per_agency} == set(scorecard), metric
        assert sum(row[1] for row in per_agency) == portal_wide[1], metric
        if portal_wide[2] is not None:
            assert sum(row[2] for row in per_agency) == portal_wide[2], metric

    # the rename (catalog_changes, INV-2 per agency) is the canonical agency's
    changes = _night_rows(
        db, "board.catalog_changes", "asset_id, change, agency, agency_as_published", second
    )
    assert changes == [("aaaa-0002", "renamed", DEEP, "CT DEEP")]
    renamed = query(
        db,
        "SELECT agency, value FROM board.plan_metrics WHERE snapshot_date = ? AND portal = 'ct' "
        "AND metric = 'datasets_renamed' AND value > 0",
        [second],
    )
    assert sorted(renamed, key=str) == sorted([(None, 1.0), (DEEP, 1.0)], key=str)

    # the rule lists nothing once DEEP's names are reconciled
    with duckdb.connect(str(db), read_only=True) as conn:
        names = published_agency_names(conn, "ct", second)
    assert names == sorted(["CT DEEP", "DEEP Open Data", DEEP, "Department of Labor", owner])
    assert likely_agency_variants(names, pipeline_aliases(pipeline)) == []
    assert likely_agency_variants(names) == [(DEEP, "DEEP Open Data", "CT DEEP")]

    # Without the aliases, the recompute regroups the stored nights under the names published.
    entry.pop("agency_aliases")
    write_portal_file(tmp_path, [entry])
    unaliased = Pipeline(tmp_path, [entry])
    for result in run_nights(
        unaliased.defs, [(first, "ct"), (second, "ct")], instance, "ERROR", job_name=RECOMPUTE_JOB
    ):
        assert result.success, result.reason
    scorecard = dict(_night_rows(db, "board.agency_scorecard", "agency, datasets", second))
    assert scorecard == {
        DEEP: 2,
        "CT DEEP": 2,
        "DEEP Open Data": 1,
        "Department of Labor": 2,
        owner: 1,
    }
    changes = _night_rows(
        db, "board.catalog_changes", "asset_id, agency, agency_as_published", second
    )
    assert changes == [("aaaa-0002", "CT DEEP", "CT DEEP")]


def pipeline_aliases(pipeline: Pipeline) -> dict[str, str]:
    from ctdata_pipeline.portals import load_portal_file

    portal_file = load_portal_file(pipeline.portals_file)
    return portal_file.aliases_for(portal_file.get("ct"))


def test_migration_0003_gives_stored_rows_their_names_as_published(tmp_path):
    """A file of schema version 2 with metrics and board rows: the column is added and holds
    the agency stored (none for '(no agency)'), once."""
    db = tmp_path / "ctdata.duckdb"
    portal = Portal(
        name="ct", kind="socrata", url="https://data.ct.gov", custom_fields=CT_CUSTOM_FIELDS
    )
    night = date(2025, 3, 1)
    conn = duckdb.connect(str(db))
    store_night(conn, portal, night, _records(night))
    compute_night(conn, portal, night)
    from ctdata_pipeline.board.publish import publish_night

    publish_night(conn, "ct", night)
    expected = conn.execute(
        "SELECT asset_id, agency_as_published FROM metrics.datasets ORDER BY ALL"
    ).fetchall()
    for table in ("metrics.datasets", "board.missing_metadata", "board.stale_datasets"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN agency_as_published")
    conn.execute("ALTER TABLE board.catalog_changes DROP COLUMN agency_as_published")
    conn.execute("UPDATE main.schema_version SET version = 2")
    assert [step.name for step in migrate(conn)] == [
        "0003_agency_as_published",
        "0004_dataset_identity",
        "0005_unsorted_nights",
    ]
    assert migrate(conn) == []
    assert (
        conn.execute(
            "SELECT asset_id, agency_as_published FROM metrics.datasets ORDER BY ALL"
        ).fetchall()
        == expected
    )
    assert conn.execute(
        "SELECT count(*) FROM board.missing_metadata WHERE agency_as_published IS DISTINCT FROM "
        "nullif(agency, ?)",
        [NO_AGENCY],
    ).fetchone() == (0,)
    conn.close()


def test_the_demo_counts_each_reconciled_agency_once(demo_run):
    """The demo's scorecard holds no variant its aliases reconcile, and the rule lists only the
    agency the demo leaves unreconciled."""
    db = demo_run.folder / "data" / "ctdata.duckdb"
    portal_file = demo_portal_file()
    socrata = portal_file.get("demo.data.ct.gov")
    aliases = portal_file.aliases_for(socrata)
    variants = {variant for variant, canonical in aliases.items() if variant != canonical}
    with duckdb.connect(str(db), read_only=True) as conn:
        night = conn.execute("SELECT max(snapshot_date) FROM board.agency_scorecard").fetchone()[0]
        scorecard = {
            agency
            for (agency,) in conn.execute(
                "SELECT agency FROM board.agency_scorecard WHERE snapshot_date = ? AND portal = ?",
                [night, socrata.name],
            ).fetchall()
        }
        names = published_agency_names(conn, socrata.name, night)
    assert scorecard and not scorecard & variants
    assert scorecard == {aliases.get(name, name) for name in names} | ({NO_AGENCY} & scorecard)
    assert len(scorecard) < len(names)  # reconciled names were counted apart before
    groups = likely_agency_variants(names, aliases)
    assert all(UNRECONCILED_AGENCY in group or "DMV" in group for group in groups), groups
