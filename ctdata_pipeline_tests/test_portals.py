"""The portal file: the spec's example works as written, and every bad file gets one clear error
that names the file, the entry and the problem."""

from datetime import date, timedelta
from pathlib import Path

import pytest

from ctdata_pipeline.partitions import today_in_new_york
from ctdata_pipeline.portals import (
    DEFAULT_FIRST_NIGHT,
    DEFAULT_PORTALS_FILE,
    PortalFileError,
    load_portal_file,
)
from ctdata_pipeline.settings import Settings

SPEC_EXAMPLE = """
portals:
  - name: data.ct.gov            # stable id, used as `portal` in every table
    kind: socrata                 # Discovery API /api/catalog/v1 via sodapy
    url: https://data.ct.gov      # scheme + host[:port]; http://127.0.0.1:PORT must work
    domain: data.ct.gov
    custom_fields:
      agency: Agency_Agency
      update_frequency: Details_Update-Frequency
      geographic_unit: Details_Geographic-Unit
  - name: geodata.ct.gov
    kind: dcat
    url: https://geodata.ct.gov/api/feed/dcat-us/1.1.json
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portals.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_default_is_the_two_ct_portals():
    portal_file = load_portal_file(DEFAULT_PORTALS_FILE)
    assert portal_file.names == ["data.ct.gov", "geodata.ct.gov"]
    socrata, dcat = portal_file.portals
    assert socrata.custom_fields["agency"] == "Agency_Agency"
    assert socrata.socrata_domain == "data.ct.gov"
    assert dcat.url == "https://geodata.ct.gov/api/feed/dcat-us/1.1.json"
    assert portal_file.guard_ratio(socrata) == 0.5
    assert not socrata.as_of and not dcat.as_of


def test_the_spec_example_parses_as_written(tmp_path):
    portal_file = load_portal_file(write(tmp_path, SPEC_EXAMPLE))
    assert portal_file.names == ["data.ct.gov", "geodata.ct.gov"]
    assert portal_file.first_night == DEFAULT_FIRST_NIGHT == date(2025, 1, 1)


@pytest.mark.parametrize(
    ("line", "first_night"),
    [
        ("first_night: 2019-06-01", date(2019, 6, 1)),
        ("first_night: '2024-02-29'", date(2024, 2, 29)),
        (f"first_night: {today_in_new_york()}", today_in_new_york()),
    ],
)
def test_the_first_night_is_read_from_the_file(tmp_path, line, first_night):
    portal_file = load_portal_file(write(tmp_path, f"{line}\n{SPEC_EXAMPLE}"))
    assert portal_file.first_night == first_night
    assert load_portal_file(DEFAULT_PORTALS_FILE).first_night == date(2025, 1, 1)


def test_loopback_urls_and_domain_default(tmp_path):
    portal_file = load_portal_file(
        write(
            tmp_path,
            """
portals:
  - {name: local, kind: socrata, url: "http://127.0.0.1:8123/"}
""",
        )
    )
    local = portal_file.get("local")
    assert local.url == "http://127.0.0.1:8123"
    assert local.netloc == "127.0.0.1:8123" and local.scheme == "http"
    assert local.socrata_domain == "127.0.0.1"


def test_guard_ratio_from_the_file_and_per_portal(tmp_path):
    portal_file = load_portal_file(
        write(
            tmp_path,
            """
shrink_guard: {min_in_scope_ratio: 0.8}
portals:
  - {name: a, kind: dcat, url: "https://a.example/data.json"}
  - {name: b, kind: dcat, url: "https://b.example/data.json", min_in_scope_ratio: 0.1}
""",
        )
    )
    assert portal_file.guard_ratio(portal_file.get("a")) == 0.8
    assert portal_file.guard_ratio(portal_file.get("b")) == 0.1


def test_the_environment_chooses_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, SPEC_EXAMPLE)
    monkeypatch.setenv("CTDATA_PORTALS", str(path))
    monkeypatch.setenv("CTDATA_DB", "db/x.duckdb")
    settings = Settings.from_env(cwd=tmp_path)
    assert settings.portals_file == path
    assert settings.db_path == tmp_path / "db" / "x.duckdb"
    assert settings.staging_dir == tmp_path / "db" / "staging"
    assert settings.load_portals().names == ["data.ct.gov", "geodata.ct.gov"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("portals: [", "not valid YAML"),
        ("[]", "must be a mapping with a 'portals' list"),
        ("portals: []", "'portals' must be a non-empty list"),
        ("portal: []", "must be a mapping with a 'portals' list"),
        ("portals:\n  - just-a-string\n", "portals[0]: must be a mapping"),
        (
            "portals:\n  - {kind: dcat, url: 'https://x.example/d.json'}\n",
            "portals[0]: name: is required",
        ),
        (
            "portals:\n  - {name: x, kind: ckan, url: 'https://x.example'}\n",
            "portals[0] (x): kind: Input should be 'socrata' or 'dcat'",
        ),
        (
            "portals:\n  - {name: x, kind: socrata, url: data.ct.gov}\n",
            "portals[0] (x): url: 'data.ct.gov' must start with http:// or https://",
        ),
        (
            "portals:\n  - {name: x, kind: socrata, url: 'https://data.ct.gov/api/catalog/v1'}\n",
            "portals[0] (x): a socrata url is scheme + host[:port] only",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://g.example/d.json', domain: g}\n",
            "portals[0] (x): domain applies to socrata portals only",
        ),
        (
            "portals:\n  - {name: x, kind: socrata, url: 'https://d.example',"
            " custom_fields: {agncy: A}}\n",
            "portals[0] (x): custom_fields: unknown standard field(s) agncy",
        ),
        (
            "portals:\n  - {name: x, kind: socrata, url: 'https://d.example', colour: red}\n",
            "portals[0] (x): colour: unknown key",
        ),
        (
            "portals:\n  - {name: 'has space', kind: dcat, url: 'https://d.example/x.json'}\n",
            "portals[0] (has space): name: must be 1-63 letters",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://a.example/d.json'}\n"
            "  - {name: x, kind: dcat, url: 'https://b.example/d.json'}\n",
            "portals[1] (x): the name is used twice",
        ),
        (
            "portals:\n  - {name: x, kind: socrata, url: 'https://d.example', page_size: 20000}\n",
            "portals[0] (x): page_size: Input should be less than or equal to 10000",
        ),
        (
            "shrink_guard: {min_in_scope_ratio: 2}\nportals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "shrink_guard: min_in_scope_ratio must be a number from 0 to 1",
        ),
        (
            "checks: {metric_change_warn_points: -1}\nportals:\n"
            "  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "checks: metric_change_warn_points must be a number from 0 to 100",
        ),
        (
            "first_night: 2025-02-30\nportals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "first_night: 2025-02-30 is not a real date (day is out of range for month)",
        ),
        (
            "first_night: last year\nportals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "first_night: must be a date written YYYY-MM-DD, not 'last year'",
        ),
        (
            "first_night: 2025-01-01 02:00\nportals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "first_night: must be a date written YYYY-MM-DD, not '2025-01-01 02:00'",
        ),
        (
            "first_night: 20250101\nportals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "first_night: must be a date written YYYY-MM-DD, not 20250101",
        ),
        (
            f"first_night: {today_in_new_york() + timedelta(days=1)}\nportals:\n"
            "  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            f"first_night: {today_in_new_york() + timedelta(days=1)} is in the future (today is "
            f"{today_in_new_york()} in New York)",
        ),
        ("portals: []\nextra: 1\n", "'portals' must be a non-empty list"),
        (
            "agency_aliases:\n  Department of Labor: [DOL]\n  Dept of Labor: [DOL]\n"
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "agency_aliases: 'DOL' is listed under both 'Department of Labor' and 'Dept of Labor'",
        ),
        (
            "agency_aliases:\n  Department of Labor: [DOL]\n  DOL: [CT DOL]\n"
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "agency_aliases: 'DOL' is a canonical name and a variant of 'Department of Labor'",
        ),
        (
            "agency_aliases:\n  Department of Labor: ['  ']\n"
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "agency_aliases: 'Department of Labor' lists an empty variant",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json',\n"
            "     agency_aliases: {DEEP: [CT DEEP]}, agency_alias: {}}\n",
            "portals[0] (x): agency_alias: unknown key",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json',\n"
            "     agency_aliases: {DEEP: [CT DEEP], CT DEEP: [DEEP Open Data]}}\n",
            "portals[0] (x): agency_aliases: 'CT DEEP' is a canonical name and a variant of 'DEEP'",
        ),
        (
            "targets: {MD1: {below: 20}}\n"
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n",
            "targets: 'MD1' is not a metric id such as MD-1",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\nextra: 1\n",
            "unknown key(s) extra",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json'}\n"
            "  - {name: y, kind: dcat, url: 'https://d.example/y.json', role: Peer}\n",
            "portals[1] (y): role: Input should be 'own' or 'peer'",
        ),
        (
            "portals:\n  - {name: x, kind: dcat, url: 'https://d.example/x.json', role: [peer]}\n",
            "portals[0] (x): role: Input should be 'own' or 'peer'",
        ),
    ],
)
def test_a_bad_file_gets_one_clear_error(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(PortalFileError) as raised:
        load_portal_file(path)
    message = str(raised.value)
    assert message.startswith(f"portal file {path}: ")
    assert expected in message
    assert "\n" not in message


def test_a_database_named_like_a_schema_is_refused(tmp_path, monkeypatch):
    from ctdata_pipeline.warehouse import WarehouseNameError

    monkeypatch.setenv("CTDATA_DB", str(tmp_path / "metrics.duckdb"))
    with pytest.raises(WarehouseNameError, match=r"metrics\.duckdb: DuckDB would name"):
        Settings.from_env()


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PortalFileError, match=f"portal file {missing}: cannot be read"):
        load_portal_file(missing)


def test_role_says_which_portals_are_the_boards_and_which_are_peers(tmp_path):
    path = write(
        tmp_path,
        "portals:\n"
        "  - {name: ct, kind: dcat, url: 'https://d.example/ct.json'}\n"
        "  - {name: ma, kind: dcat, url: 'https://d.example/ma.json', role: peer}\n"
        "  - {name: geo, kind: dcat, url: 'https://d.example/geo.json', role: own}\n"
        "  - {name: ny, kind: dcat, url: 'https://d.example/ny.json', role: peer}\n",
    )
    portal_file = load_portal_file(path)
    assert [portal.role for portal in portal_file.portals] == ["own", "peer", "own", "peer"]
    assert portal_file.own_names == ["ct", "geo"]
    assert portal_file.peer_names == ["ma", "ny"]
    assert portal_file.names == ["ct", "ma", "geo", "ny"]  # every portal is harvested
    # The shipped file's portals are the Board's own.
    assert {portal.role for portal in load_portal_file().portals} == {"own"}
