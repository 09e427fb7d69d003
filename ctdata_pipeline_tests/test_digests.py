"""The digests' contents (delivery/compose.py), composed from a stored and reported night: the
Board's headlines, targets and movement, its attachments; each agency's figures and work
lists; hostile portal text escaped in HTML and kept out of the headers."""

from __future__ import annotations

import copy
import email
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from html import unescape
from pathlib import Path

import duckdb
import pytest

from ctdata_pipeline.delivery import compose
from ctdata_pipeline.delivery.compose import compose_agency_digests, compose_board_digest
from ctdata_pipeline.delivery.model import BOARD_AUDIENCE, Digest, Period
from ctdata_pipeline.delivery.recipients import AgencyRecipients, RecipientsFile
from ctdata_pipeline.portals import PortalFile, load_portal_file
from ctdata_pipeline.report.agencies import agency_slugs
from ctdata_pipeline.report.data import HEADLINES, format_value
from ctdata_pipeline.warehouse import connect
from ctdata_pipeline_tests.support import (
    GOOD_ASSETS,
    History,
    Pipeline,
    good_feed,
    portal_entry,
    serve,
    socrata_catalog,
    socrata_record,
    write_portal_file,
)

TARGETS = {"MD-1": {"below": 20}, "MD-2": {"above": 80}, "FR-2": {"below": 10}}
REPORT_URL = "https://reports.example.gov/ctdata/"
LABELS = dict(HEADLINES)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def portal_file(history: History) -> PortalFile:
    """The history's two portals ("ct", "hub") as a portal file, with the plan's targets."""
    entries = [
        {"name": "ct", "kind": "socrata", "url": "http://127.0.0.1:9", "domain": "data.ct.gov"},
        {"name": "hub", "kind": "dcat", "url": "http://127.0.0.1:9/data.json"},
    ]
    folder = history.folder / "digest-portals"
    folder.mkdir()
    return load_portal_file(
        write_portal_file(
            folder, entries, targets=TARGETS, agency_aliases={"Public Health": ["Dept. of PH"]}
        )
    )


@pytest.fixture
def reader(history: History) -> Iterator[duckdb.DuckDBPyConnection]:
    conn = connect(history.db_path, read_only=True)
    yield conn
    conn.close()


def month_of(night: date) -> Period:
    return Period.containing("monthly", night)


def parts(message: EmailMessage) -> tuple[str, str]:
    """(text, html) of a message, read back from its bytes as a mail client reads them."""
    parsed = parsed_back(message)
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    # On the wire lines end in CRLF; compared here as written.
    return (
        text.get_content().replace("\r\n", "\n"),
        html.get_content().replace("\r\n", "\n"),
    )


def html_of(message: EmailMessage) -> str:
    return parts(message)[1]


def parsed_back(message: EmailMessage) -> EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(policy=SMTP), policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def attachments(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """file name -> (MIME type, bytes)."""
    return {
        part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
        for part in parsed_back(message).iter_attachments()
    }


def plan_values(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> dict[str, tuple]:
    rows = conn.execute(
        "SELECT metric, value, numerator, denominator, unit FROM board.plan_metrics "
        "WHERE portal = ? AND agency IS NULL AND snapshot_date = ?",
        [portal, night],
    ).fetchall()
    return {metric: tuple(rest) for metric, *rest in rows}


def to_fix_by_agency(conn: duckdb.DuckDBPyConnection, portal: str, night: date) -> dict:
    """agency -> its datasets on a work list, straight from the board tables."""
    rows = conn.execute(
        """
        SELECT agency, count(DISTINCT asset_id) FROM (
            SELECT agency, asset_id FROM board.missing_metadata
            WHERE portal = $portal AND snapshot_date = $night
            UNION ALL SELECT agency, asset_id FROM board.stale_datasets
            WHERE portal = $portal AND snapshot_date = $night
            UNION ALL SELECT agency, asset_id FROM board.silently_stale
            WHERE portal = $portal AND snapshot_date = $night
            UNION ALL SELECT agency, asset_id FROM board.broken_links
            WHERE portal = $portal AND snapshot_date = $night
        ) GROUP BY agency
        """,
        {"portal": portal, "night": night},
    ).fetchall()
    return dict(rows)


# --- the Board's ------------------------------------------------------------------------------


def test_board_digest_says_what_the_report_says(history, portal_file, reader):
    night = history.last_night
    recipients = RecipientsFile(board=("chair@example.gov",), report_url=REPORT_URL)
    digest = compose_board_digest(
        reader, month_of(night), portal_file, history.folder / "reports", recipients
    )
    assert isinstance(digest, Digest)
    assert (digest.kind, digest.audience, digest.to, digest.night) == (
        "board",
        BOARD_AUDIENCE,
        ("chair@example.gov",),
        night,
    )
    message = digest.message
    # The sender addresses it: the composed message carries none of these.
    for header in ("From", "To", "Date", "Message-ID"):
        assert message[header] is None
    text, html = parts(message)

    # Every headline of each portal, as board.plan_metrics holds it, with its target.
    for portal in ("ct", "hub"):
        values = plan_values(reader, portal, night)
        for metric in ("pct_missing_metadata", "pct_stale", "pct_freshness_unknown"):
            value, numerator, denominator, unit = values[metric]
            shown = format_value(value, unit)
            counted = "" if value is None else f" ({numerator:,.0f} of {denominator:,.0f})"
            assert f"- {LABELS[metric]}: {shown}{counted}\n" in text, (portal, metric)
            assert f"<strong>{shown}</strong>" in html
    md1 = plan_values(reader, "ct", night)["pct_missing_metadata"][0]
    assert md1 < 20
    assert f"Meets the plan's target (under 20%): {20 - md1:.1f} points below it." in text
    # The probes never ran on this history: FR-5 and AC-1 are there, not measured.
    assert f"- {LABELS['pct_silently_stale']}: n/a\n" in text
    assert f"- {LABELS['pct_datasets_with_broken_link']}: n/a\n" in text
    # One reported night: nothing to compare it with, and the digest says so.
    assert "There is no earlier reported night to measure movement against." in text

    # The subject names the headline: ct's MD-1 (the first portal of two) and its target.
    subject = message["Subject"]
    assert subject == (
        f"Connecticut's open data portals, {night:%B %Y}: missing metadata "
        f"{format_value(md1, 'percent')} on ct (target under 20%)"
    )
    assert len(subject) < 150

    # The agencies with the most to fix on ct, most first, as the board tables count them.
    counts = to_fix_by_agency(reader, "ct", night)
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: compose.MOST_TO_FIX]
    section = text.split("Agencies with the most to fix")[1].split("== hub ==")[0]
    listed = [line[2:].split(": ")[0] for line in section.splitlines() if line.startswith("- ")]
    assert listed == [agency for agency, _ in top]
    assert f"- {top[0][0]}: {top[0][1]} of " in section
    slug = agency_slugs(list(counts))[top[0][0]]
    assert f'href="{REPORT_URL}{night}/agencies/{slug}.html"' in html

    # Links to the published report.
    assert f"Full report: {REPORT_URL}{night}/report.html" in text
    assert f'href="{REPORT_URL}{night}/report.html"' in html

    # The report's PDF and workbook, byte for byte.
    folder = history.folder / "reports" / night.isoformat()
    files = attachments(message)
    assert files["board.xlsx"] == (XLSX, (folder / "board.xlsx").read_bytes())
    if shutil.which("chromium"):
        assert files["report.pdf"] == ("application/pdf", (folder / "report.pdf").read_bytes())
        assert set(files) == {"report.pdf", "board.xlsx"}
    else:
        assert set(files) == {"board.xlsx"}
        assert "The report's PDF is not attached" in text


def test_board_digest_without_a_pdf_or_a_report_url(history, portal_file, reader):
    night = history.last_night
    folder = history.folder / "reports" / night.isoformat()
    (folder / "report.pdf").unlink(missing_ok=True)
    digest = compose_board_digest(
        reader,
        month_of(night),
        portal_file,
        history.folder / "reports",
        RecipientsFile(board=("chair@example.gov",)),
    )
    assert digest is not None
    text, html = parts(digest.message)
    missing = (
        f"The report's PDF is not attached: report.pdf is not in the night's folder ({folder})"
    )
    assert missing in text and missing in unescape(html)
    assert set(attachments(digest.message)) == {"board.xlsx"}
    where = f"The full report is in the folder {folder} on the machine that ran the night"
    assert where in text and where in unescape(html)
    assert "http" not in text.split("==")[0]


def test_no_reported_night_in_the_period_means_no_digest(history, portal_file, reader):
    recipients = RecipientsFile(
        board=("chair@example.gov",),
        agencies={"Public Health": AgencyRecipients(addresses=("ph@example.gov",))},
    )
    reports = history.folder / "reports"
    for period in (
        month_of(history.last_night - timedelta(days=62)),
        Period.containing("weekly", history.last_night + timedelta(days=14)),
    ):
        assert compose_board_digest(reader, period, portal_file, reports, recipients) is None
        assert compose_agency_digests(reader, period, portal_file, reports, recipients) == ([], [])
    # Nor without a report folder at all.
    missing = history.folder / "no-reports"
    period = month_of(history.last_night)
    assert compose_board_digest(reader, period, portal_file, missing, recipients) is None


def fewer_tags(count: int) -> list[dict]:
    """The history's Socrata catalog with the first `count` datasets' tags removed (MD-1 up)."""
    records = copy.deepcopy(socrata_catalog(GOOD_ASSETS))
    for record in records[:count]:
        record["classification"]["domain_tags"] = []
    return records


def test_the_subject_says_how_the_headline_moved(history, portal_file, instance, today):
    # Tonight (the day after the history's night), ct loses tags on ten datasets.
    with serve("socrata", fewer_tags(10)) as socrata, serve("dcat", good_feed()) as hub:
        pipeline = Pipeline(
            history.folder,
            [portal_entry("ct", socrata, as_of=True), portal_entry("hub", hub, as_of=True)],
        )
        pipeline.run_ok(instance, today, "ct", "hub")
    pipeline.report_ok(instance, today)

    conn = connect(history.db_path, read_only=True)
    try:
        before = plan_values(conn, "ct", history.last_night)["pct_missing_metadata"][0]
        now = plan_values(conn, "ct", today)["pct_missing_metadata"][0]
        for period in (month_of(today), Period.containing("weekly", today)):
            digest = compose_board_digest(
                conn, period, portal_file, history.folder / "reports", RecipientsFile()
            )
            assert digest is not None and digest.night == today
            text, _ = parts(digest.message)
            assert now > before
            assert digest.message["Subject"] == (
                f"Connecticut's open data portals, {period.words}: missing metadata "
                f"{now:.1f}% on ct (target under 20%), up {now - before:.1f} points"
            )
            # Whichever period it is, the movement is measured from the history's night: the
            # last reported before the period, or the period's first.
            assert (
                f"Up {now - before:.1f} points since {history.last_night} ({before:.1f}%): "
                "the wrong way, lower is better." in text
            )
    finally:
        conn.close()


# --- the agencies' ---------------------------------------------------------------------------


def every_agency(conn: duckdb.DuckDBPyConnection, night: date) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT agency FROM board.agency_scorecard WHERE snapshot_date = ? ORDER BY 1",
        [night],
    ).fetchall()
    return [agency for (agency,) in rows]


def test_agency_digests_carry_only_their_agencys_work(history, portal_file, reader):
    night = history.last_night
    agencies = every_agency(reader, night)
    counts = {**to_fix_by_agency(reader, "ct", night), **to_fix_by_agency(reader, "hub", night)}
    clean = [agency for agency in agencies if not counts.get(agency)]
    assert clean and len(clean) < len(agencies)
    recipients = RecipientsFile(
        agencies={
            agency: AgencyRecipients(addresses=(f"officer{n}@example.gov",))
            for n, agency in enumerate(agencies)
        },
        report_url=REPORT_URL,
    )
    digests, problems = compose_agency_digests(
        reader, month_of(night), portal_file, history.folder / "reports", recipients
    )
    assert problems == []
    # Only the agencies with something to fix hear from us.
    by_agency = {digest.audience: digest for digest in digests}
    assert sorted(by_agency) == sorted(agency for agency in agencies if counts.get(agency))
    slugs = agency_slugs(agencies)

    # The one with the most to fix, in detail.
    name = max(by_agency, key=lambda agency: (counts[agency], agency))
    digest = by_agency[name]
    assert digest.kind == "agency" and digest.night == night
    assert digest.to == (f"officer{agencies.index(name)}@example.gov",)
    assert digest.message["Subject"] == (f"{name}, {night:%B %Y}: {counts[name]} datasets to fix")
    text, html = parts(digest.message)
    # Its figures, as board.plan_metrics holds them for the agency.
    rows = reader.execute(
        "SELECT metric, value, numerator, denominator, unit FROM board.plan_metrics "
        "WHERE portal = 'ct' AND agency = ? AND snapshot_date = ?",
        [name, night],
    ).fetchall()
    figures = {metric: rest for metric, *rest in rows}
    value, numerator, denominator, unit = figures["pct_stale"]
    assert (
        f"- Stale (FR-2): {format_value(value, unit)} ({numerator:,.0f} of {denominator:,.0f})"
        in text
    )
    # Each of its datasets on a work list, with what to fix and its link; no other agency's.
    listed = reader.execute(
        "SELECT DISTINCT asset_id, url FROM board.stale_datasets "
        "WHERE portal = 'ct' AND agency = ? AND snapshot_date = ? "
        "UNION SELECT DISTINCT asset_id, url FROM board.missing_metadata "
        "WHERE portal = 'ct' AND agency = ? AND snapshot_date = ?",
        [name, night, name, night],
    ).fetchall()
    assert len({asset for asset, _ in listed}) == counts[name]
    for asset, url in listed:
        assert f"[{asset}] {url}" in text
        assert f'href="{url}"' in html
    others = reader.execute(
        "SELECT asset_id FROM board.stale_datasets WHERE portal = 'ct' AND agency <> ? "
        "AND snapshot_date = ?",
        [name, night],
    ).fetchall()
    assert others and not any(f"[{asset}]" in text for (asset,) in others)
    assert "Delinquent by" in text or "Overdue by" in text
    # Its page and its CSV, the report folder's bytes.
    assert f'href="{REPORT_URL}{night}/agencies/{slugs[name]}.html"' in html
    csv = history.folder / "reports" / night.isoformat() / "agencies" / f"{slugs[name]}.csv"
    assert attachments(digest.message) == {csv.name: ("text/csv", csv.read_bytes())}


def test_a_clean_agency_hears_only_when_it_asks(history, portal_file, reader):
    night = history.last_night
    agencies = every_agency(reader, night)
    counts = {**to_fix_by_agency(reader, "ct", night), **to_fix_by_agency(reader, "hub", night)}
    clean = next(agency for agency in agencies if not counts.get(agency))
    reports = history.folder / "reports"
    quiet = RecipientsFile(agencies={clean: AgencyRecipients(addresses=("q@example.gov",))})
    assert compose_agency_digests(reader, month_of(night), portal_file, reports, quiet) == (
        [],
        [],
    )
    asks = RecipientsFile(
        agencies={clean: AgencyRecipients(addresses=("q@example.gov",), send_when_clean=True)}
    )
    [digest], problems = compose_agency_digests(reader, month_of(night), portal_file, reports, asks)
    assert problems == []
    assert digest.message["Subject"] == f"{clean}, {night:%B %Y}: nothing to fix"
    text, html = parts(digest.message)
    assert "Nothing to fix: none of your agency's datasets is on a work list" in text
    assert "Nothing to fix" in html


def test_agencies_matched_through_aliases_and_unknown_ones_named(history, portal_file, reader):
    night = history.last_night
    week = Period.containing("weekly", night)
    recipients = RecipientsFile(
        agencies={
            "Dept. of PH": AgencyRecipients(addresses=("ph@example.gov",)),
            "Department of Nothing": AgencyRecipients(addresses=("no@example.gov",)),
        }
    )
    digests, problems = compose_agency_digests(
        reader, week, portal_file, history.folder / "reports", recipients
    )
    [digest] = digests
    assert digest.audience == "Public Health" and digest.to == ("ph@example.gov",)
    assert digest.message["Subject"].startswith(
        f"Public Health, week of {week.start.day} {week.start:%B %Y}: "
    )
    [problem] = problems
    assert problem.audience == "Department of Nothing"
    assert "'Department of Nothing' is neither an agency of the night's scorecards" in str(problem)


# --- hostile text -----------------------------------------------------------------------------

# The catalog strips markup from titles and names; markup written as entities is stored as
# the text it spells, which the report and the digests must then escape.
SCRIPT = "<script>alert(1)</script> Births"
SCRIPT_ENTITIES = "&lt;script&gt;alert(1)&lt;/script&gt; Births"
FORMULA = "=cmd|' /C calc'!A0"
# Line breaks that would end the Subject and start a header of their own.
INJECTED = "\r\nBcc: victim@example.org\r\n\r\n&lt;b&gt;body&lt;/b&gt;"


def test_hostile_titles_are_escaped_and_names_make_no_header(tmp_path: Path, instance, today):
    records = [
        socrata_record(f"evil-000{n}", title=title, agency=f"Evil Agency{INJECTED}", tags=[])
        for n, title in enumerate((SCRIPT_ENTITIES, FORMULA))
    ]
    records[0]["permalink"] = records[0]["link"] = "javascript:alert('link')"
    with serve("socrata", records) as socrata:
        pipeline = Pipeline(
            tmp_path,
            [portal_entry("evil", socrata)],
            targets=TARGETS,
            report={"title": f"Evil report{INJECTED}"},
        )
        pipeline.run_ok(instance, today, "evil")
    pipeline.report_ok(instance, today)
    portal_file = load_portal_file(pipeline.portals_file)
    assert "\n" in portal_file.report.title
    conn = connect(pipeline.db_path, read_only=True)
    try:
        [agency] = every_agency(conn, today)
        recipients = RecipientsFile(
            board=("chair@example.gov",),
            agencies={agency: AgencyRecipients(addresses=("x@example.gov",))},
        )
        reports = tmp_path / "reports"
        board = compose_board_digest(conn, month_of(today), portal_file, reports, recipients)
        [digest], _ = compose_agency_digests(
            conn, month_of(today), portal_file, reports, recipients
        )
    finally:
        conn.close()
    assert board is not None
    assert board.message["Subject"].startswith(
        "Evil report Bcc: victim@example.org &lt;b&gt;body&lt;/b&gt;, "
    )
    assert digest.message["Subject"].startswith(f"{' '.join(agency.split())}, ")
    for message in (digest.message, board.message):
        raw = message.as_bytes(policy=SMTP)
        head = raw.split(b"\r\n\r\n")[0]
        parsed = parsed_back(message)
        # One Subject, on one line; nothing the names carried became a header.
        assert [str(subject).strip() for subject in parsed.get_all("Subject")] == [
            message["Subject"]
        ]
        assert "\r" not in message["Subject"] and "\n" not in message["Subject"]
        assert parsed["Bcc"] is None and b"\nBcc:" not in head
    _, board_html = parts(board.message)
    assert "&amp;lt;b&amp;gt;body" in board_html  # the title's own text, escaped
    # The agency's name as stored (the entities decoded): escaped wherever it is shown.
    assert "<b>" in agency
    assert "<b>body</b>" not in html_of(board.message) + html_of(digest.message)
    assert "&lt;b&gt;body&lt;/b&gt;" in html_of(digest.message)

    text, html = parts(digest.message)
    assert "<script" not in html and "javascript:" not in html
    assert SCRIPT_ENTITIES in html
    assert f"* {SCRIPT} [evil-0000]" in text  # plain text is not markup: the title as written
    # The CSV attached is the report's, whose formula is neutralized.
    [(name, (mime, data))] = attachments(digest.message).items()
    slug = agency_slugs([agency])[agency]
    assert name == f"{slug}.csv" and mime == "text/csv"
    assert data == (reports / today.isoformat() / "agencies" / name).read_bytes()
    assert f"'{FORMULA}".encode() in data
    assert FORMULA.encode() not in data.replace(f"'{FORMULA}".encode(), b"")


def test_an_agency_name_with_line_breaks_makes_one_subject_line():
    # The catalog collapses white space in agency names; the Subject does not rely on it.
    week = Period.containing("weekly", date(2026, 11, 25))
    subject = compose._agency_subject(
        "Public\tHealth\r\nBcc: victim@example.org\r\n\r\n<b>body</b>\x00\u2028", week, 12
    )
    assert subject == (
        "Public Health Bcc: victim@example.org <b>body</b>, week of 23 November 2026: "
        "12 datasets to fix"
    )
    long = compose._agency_subject("Department " * 40, week, 1)
    assert len(long) < 150 and long.endswith("week of 23 November 2026: 1 dataset to fix")
