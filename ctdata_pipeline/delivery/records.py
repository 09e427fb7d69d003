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
# The key makes "sent once" a fact of the table: a second row for an address is ignored.
_CREATE = [
    "CREATE SCHEMA IF NOT EXISTS delivery",
    f"""CREATE TABLE IF NOT EXISTS {SENDS_TABLE} (
        kind VARCHAR NOT NULL,
        period DATE NOT NULL,
        audience VARCHAR NOT NULL,
        address VARCHAR NOT NULL,
        message_id VARCHAR NOT NULL,
        sent_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (kind, period, audience, address)
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
        conn.executemany(
            f"INSERT OR IGNORE INTO {SENDS_TABLE} "
            "(kind, period, audience, address, message_id, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                [row.kind, row.period, row.audience, row.address, row.message_id, row.sent_at]
                for row in rows
            ],
        )
    return int(scalar(conn, f"SELECT count(*) FROM {SENDS_TABLE}")) - int(before)
