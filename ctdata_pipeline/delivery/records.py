"""delivery.sends: every digest that went, one row per address, so that a re-run of a period
(a retried run, a schedule tick run again, a backfill) never sends the same digest twice to the
same person. A dry run records nothing: its .eml files are not deliveries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import duckdb

from ctdata_pipeline.delivery.model import DigestKind
from ctdata_pipeline.warehouse import scalar, transaction

SENDS_TABLE = "delivery.sends"
SENDS_COLUMNS = {
    "kind": ("VARCHAR", "board or agency: which digest."),
    "period": ("DATE", "The period's first day (the digest asset's partition key)."),
    "audience": ("VARCHAR", "'DATA Board', or the agency's canonical name."),
    "address": ("VARCHAR", "The recipient, as the recipients file writes it."),
    "message_id": ("VARCHAR", "The Message-ID of the message it went in."),
    "sent_at": ("TIMESTAMPTZ", "When the SMTP server accepted it."),
}
# One row per (kind, period, audience, address): record_sent adds only addresses not recorded
# yet (no PRIMARY KEY: a DuckLake refuses constraints; files made before keep theirs).
_CREATE = [
    "CREATE SCHEMA IF NOT EXISTS delivery",
    f"""CREATE TABLE IF NOT EXISTS {SENDS_TABLE} (
        kind VARCHAR NOT NULL,
        period DATE NOT NULL,
        audience VARCHAR NOT NULL,
        address VARCHAR NOT NULL,
        message_id VARCHAR NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL
    )""",
]


@dataclass(frozen=True)
class SendRecord:
    """One address a digest went to."""

    kind: DigestKind
    period: date
    audience: str
    address: str
    message_id: str
    sent_at: datetime


def sends_table_exists(conn: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        scalar(
            conn,
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = 'delivery' AND table_name = 'sends'",
        )
    )


def already_sent(
    conn: duckdb.DuckDBPyConnection, kind: DigestKind, period_key: str, audience: str
) -> set[str]:
    """The addresses the (kind, period, audience) digest already went to. Works on a read-only
    connection to a warehouse that never sent anything (no table yet: nobody)."""
    if not sends_table_exists(conn):
        return set()
    rows = conn.execute(
        f"SELECT address FROM {SENDS_TABLE} WHERE kind = ? AND period = ? AND audience = ?",
        [kind, date.fromisoformat(period_key), audience],
    ).fetchall()
    return {address for (address,) in rows}


def record_sent(conn: duckdb.DuckDBPyConnection, rows: Iterable[SendRecord]) -> int:
    """Record the addresses a digest went to, in one transaction; returns the rows added (an
    address recorded before keeps its first row)."""
    rows = list(rows)
    if not rows:
        return 0
    for statement in _CREATE:
        conn.execute(statement)
    before = scalar(conn, f"SELECT count(*) FROM {SENDS_TABLE}")
    with transaction(conn):
        # An anti-join, not INSERT OR IGNORE: the same SQL on the file and on a DuckLake.
        # Repeats among `rows` count once (the first).
        conn.execute(
            f"""
            INSERT INTO {SENDS_TABLE} (kind, period, audience, address, message_id, sent_at)
            SELECT kind, period, audience, address, message_id, sent_at
            FROM (
                SELECT unnest(?::VARCHAR[]) AS kind, unnest(?::DATE[]) AS period,
                       unnest(?::VARCHAR[]) AS audience, unnest(?::VARCHAR[]) AS address,
                       unnest(?::VARCHAR[]) AS message_id, unnest(?::TIMESTAMPTZ[]) AS sent_at,
                       unnest(range(?)) AS position
            ) AS new
            WHERE NOT EXISTS (
                SELECT 1 FROM {SENDS_TABLE} AS old
                WHERE old.kind = new.kind AND old.period = new.period
                  AND old.audience = new.audience AND old.address = new.address
            )
            QUALIFY row_number() OVER (
                PARTITION BY kind, period, audience, address ORDER BY position
            ) = 1
            """,
            [
                [row.kind for row in rows],
                [row.period for row in rows],
                [row.audience for row in rows],
                [row.address for row in rows],
                [row.message_id for row in rows],
                [row.sent_at for row in rows],
                len(rows),
            ],
        )
    return int(scalar(conn, f"SELECT count(*) FROM {SENDS_TABLE}")) - int(before)
