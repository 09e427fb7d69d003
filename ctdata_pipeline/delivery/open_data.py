"""The metrics as open data: a night's board.plan_metrics and board.agency_scorecard rows, every
portal's, upserted into Socrata datasets (the portal file's `publish:`) with sodapy's `upsert`.

Each row carries a `row_id` (night | portal | agency | metric), the datasets' row identifier, so
an upsert of the same night replaces its rows instead of adding them; before upserting, the
night's row_ids already in the dataset are read back, and those the night no longer has (a
recomputed night with fewer agencies) go in the same upsert with `":deleted": true`. Other
nights' rows are never touched. Nothing here writes the warehouse: the rows are read first
(nights_rows, on a connection the caller closes), then published with the file closed."""

import base64
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import dagster as dg
import duckdb
import requests
from requests.adapters import HTTPAdapter
from sodapy import Socrata

from ctdata_pipeline.board.after_night import (
    AFTER_PROBES,
    REPORT_AUTOMATION,
    board_tables_exist,
    nothing_stored_failure,
)
from ctdata_pipeline.delivery.model import OPEN_DATA_PUBLICATION
from ctdata_pipeline.harvest.http import (
    USER_AGENT,
    describe_http_failure,
    redact,
    transport_retry,
)
from ctdata_pipeline.harvest.socrata import _without_sodapy_token_warning
from ctdata_pipeline.partitions import nightly_date
from ctdata_pipeline.portals import PublishSettings
from ctdata_pipeline.probes.soql import socrata_message
from ctdata_pipeline.report.assets import BOARD_INPUTS
from ctdata_pipeline.resources import PortalList
from ctdata_pipeline.settings import socrata_app_token
from ctdata_pipeline.warehouse import DuckDBWarehouse

KEY_ID_VARIABLE = "SOCRATA_API_KEY_ID"
KEY_SECRET_VARIABLE = "SOCRATA_API_KEY_SECRET"
ROW_ID = "row_id"
DELETED = ":deleted"

# Each published table's dataset columns, in order, with the Socrata type to create them with
# (README, "Open data"): the board table's columns, after the row identifier.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "plan_metrics": (
        (ROW_ID, "text"),
        ("snapshot_date", "calendar_date"),
        ("portal", "text"),
        ("agency", "text"),
        ("metric_id", "text"),
        ("metric", "text"),
        ("numerator", "number"),
        ("denominator", "number"),
        ("value", "number"),
        ("metric_version", "number"),
        ("unit", "text"),
        ("note", "text"),
    ),
    "agency_scorecard": (
        (ROW_ID, "text"),
        ("snapshot_date", "calendar_date"),
        ("portal", "text"),
        ("agency", "text"),
        ("datasets", "number"),
        ("md1_pct_missing_metadata", "number"),
        ("md1_n", "number"),
        ("md2_pct_meets_ct_standard", "number"),
        ("md2_n", "number"),
        ("md4_mean_metadata_score", "number"),
        ("md4_n", "number"),
        ("md5_column_doc_coverage", "number"),
        ("md5_n", "number"),
        ("fr2_pct_stale", "number"),
        ("fr2_n", "number"),
        ("fr3_pct_freshness_unknown", "number"),
        ("fr3_n", "number"),
        ("us2_pct_unused", "number"),
        ("us2_n", "number"),
        ("ranked", "checkbox"),
        ("rank", "number"),
    ),
}
# What makes a row one row of its table on a night (plan_metrics: one row per agency and
# metric, the portal's own with agency NULL; see metrics/compute.py's duplicate check).
KEYS: dict[str, tuple[str, ...]] = {
    "plan_metrics": ("snapshot_date", "portal", "agency", "metric"),
    "agency_scorecard": ("snapshot_date", "portal", "agency"),
}


class PublishError(Exception):
    """Publishing failed; the message is one line naming the portal domain and the dataset,
    and never holds the API key secret or the app token."""


@dataclass(frozen=True)
class Credentials:
    """The API key pair (HTTP basic auth: sodapy's username/password) and the optional app
    token, read from the environment where they are used, never from run config."""

    key_id: str
    key_secret: str = field(repr=False)
    app_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> "Credentials":
        key_id = os.environ.get(KEY_ID_VARIABLE, "").strip()
        key_secret = os.environ.get(KEY_SECRET_VARIABLE, "")
        missing = [
            name
            for name, value in ((KEY_ID_VARIABLE, key_id), (KEY_SECRET_VARIABLE, key_secret))
            if not value
        ]
        if missing:
            raise PublishError(
                f"publishing to Socrata needs {KEY_ID_VARIABLE} and {KEY_SECRET_VARIABLE} (an "
                "API key of an account allowed to edit the datasets): "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set"
            )
        return cls(key_id, key_secret, socrata_app_token())

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never appear in a message: the secret, the token, and the basic-auth
        header value made from the pair."""
        pair = base64.b64encode(f"{self.key_id}:{self.key_secret}".encode()).decode()
        return tuple(secret for secret in (self.key_secret, self.app_token, pair) if secret)


@dataclass(frozen=True)
class Published:
    """What one dataset's upserts did, in Socrata's own counts."""

    table: str
    dataset_id: str
    url: str
    rows: int  # the night's rows sent
    deletions: int  # row_ids of the night in the dataset and no longer in the table
    created: int
    updated: int
    deleted: int
    errors: int


def row_id(values: Sequence[object]) -> str:
    """The row identifier: the key's values joined with '|' (an agency NULL, the portal's own
    row, as ''); a '|' or '\\' inside a value is escaped, so two keys never make one id."""
    parts = ["" if value is None else str(value) for value in values]
    return "|".join(part.replace("\\", "\\\\").replace("|", "\\|") for part in parts)


def floating_timestamp(night: date) -> str:
    """A night as Socrata writes a calendar date (a floating timestamp, no zone)."""
    return f"{night.isoformat()}T00:00:00.000"


def soql_string(text: str) -> str:
    """A SoQL string literal: single quotes, a quote inside doubled."""
    return "'" + text.replace("'", "''") + "'"


def night_rows(
    conn: duckdb.DuckDBPyConnection, night: date, tables: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each table's rows of `night` (every portal), as the dataset's JSON rows with their
    row_id: dates as floating timestamps, NaN and infinities as null, ordered by row_id.
    Raise PublishError when a key repeats (an upsert would merge the rows silently)."""
    rows_by_table = {}
    for table in tables:
        columns = [name for name, _ in COLUMNS[table] if name != ROW_ID]
        cursor = conn.execute(
            f"SELECT {', '.join(columns)} FROM board.{table} WHERE snapshot_date = ?", [night]
        )
        rows: dict[str, dict[str, Any]] = {}
        for values in cursor.fetchall():
            record = dict(zip(columns, (_json_value(value) for value in values), strict=True))
            key = row_id([values[columns.index(name)] for name in KEYS[table]])
            if key in rows:
                raise PublishError(f"board.{table} has more than one row keyed {key!r}")
            rows[key] = {ROW_ID: key, **record}
        rows_by_table[table] = [rows[key] for key in sorted(rows)]
    return rows_by_table


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return floating_timestamp(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def publish_night(
    settings: PublishSettings,
    night: date,
    rows_by_table: dict[str, list[dict[str, Any]]],
    credentials: Credentials,
) -> list[Published]:
    """Upsert each table's rows of `night` into its dataset, deleting the night's rows the
    table no longer has; one Published per dataset, in the order of `settings.datasets`."""
    published = []
    with _client(settings, credentials) as client:
        for table, dataset_id in settings.datasets.items():
            with _failing_clearly(settings, dataset_id, credentials):
                published.append(
                    _publish_dataset(
                        client, settings, table, dataset_id, night, rows_by_table[table]
                    )
                )
    return published


def _publish_dataset(
    client: Socrata,
    settings: PublishSettings,
    table: str,
    dataset_id: str,
    night: date,
    rows: list[dict[str, Any]],
) -> Published:
    present = _night_row_ids(client, dataset_id, night, settings.batch_size)
    gone = sorted(present - {row[ROW_ID] for row in rows})
    payload = [*rows, *({ROW_ID: key, DELETED: True} for key in gone)]
    counts = {"Rows Created": 0, "Rows Updated": 0, "Rows Deleted": 0, "Errors": 0}
    for start in range(0, len(payload), settings.batch_size):
        answer = client.upsert(dataset_id, payload[start : start + settings.batch_size])
        for name, count in _upsert_counts(answer).items():
            counts[name] += count
    return Published(
        table=table,
        dataset_id=dataset_id,
        url=settings.dataset_url(dataset_id),
        rows=len(rows),
        deletions=len(gone),
        created=counts["Rows Created"],
        updated=counts["Rows Updated"],
        deleted=counts["Rows Deleted"],
        errors=counts["Errors"],
    )


def _night_row_ids(client: Socrata, dataset_id: str, night: date, page: int) -> set[str]:
    """The row_ids the dataset holds for `night`, page by page in row_id order."""
    where = f"snapshot_date = {soql_string(floating_timestamp(night))}"
    found: set[str] = set()
    offset = 0
    while True:
        answer = client.get(
            dataset_id, select=ROW_ID, where=where, order=ROW_ID, limit=page, offset=offset
        )
        if not isinstance(answer, list) or not all(isinstance(row, dict) for row in answer):
            raise PublishError("the answer to a query of the night's row_ids is not a list")
        found.update(str(row[ROW_ID]) for row in answer if row.get(ROW_ID) is not None)
        if len(answer) < page:
            return found
        offset += page


def _upsert_counts(answer: object) -> dict[str, int]:
    """Socrata's upsert answer: {"Rows Created", "Rows Updated", "Rows Deleted", "Errors",
    "By RowIdentifier", "By SID"}; the first three must be there."""
    if not isinstance(answer, dict):
        raise PublishError(f"the upsert answer is not an object: {str(answer)[:200]!r}")
    counts = {}
    for name in ("Rows Created", "Rows Updated", "Rows Deleted", "Errors"):
        count = answer.get(name, 0 if name == "Errors" else None)
        if not isinstance(count, int) or isinstance(count, bool):
            raise PublishError(f"the upsert answer has no count {name!r}: {str(answer)[:200]}")
        counts[name] = count
    return counts


@contextmanager
def _client(settings: PublishSettings, credentials: Credentials) -> Iterator[Socrata]:
    """sodapy's client as the harvester builds it (our retrying adapter, loopback http for the
    tests), with basic auth from the key pair. POST is retried like GET: an upsert keyed by
    row_id is idempotent, so a request that may have landed can be sent again."""
    retry = transport_retry(settings.max_retries, frozenset({"GET", "POST"}))
    with _without_sodapy_token_warning():
        client = Socrata(
            settings.netloc,
            credentials.app_token,
            username=credentials.key_id,
            password=credentials.key_secret,
            session_adapter={
                "prefix": f"{settings.scheme}://",
                "adapter": HTTPAdapter(max_retries=retry),
            },
            timeout=settings.timeout_seconds,
        )
    # sodapy posts json.dumps(payload) with no content type; Socrata's docs ask for one.
    client.session.headers.update({"Content-Type": "application/json", "User-Agent": USER_AGENT})
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _failing_clearly(
    settings: PublishSettings, dataset_id: str, credentials: Credentials
) -> Iterator[None]:
    """Any failure of one dataset's publication as one PublishError line, secrets removed."""
    where = f"publishing to {settings.domain} dataset {dataset_id}"
    try:
        yield
    except requests.exceptions.HTTPError as error:
        response = error.response
        status = response.status_code if response is not None else None
        said = socrata_message(response) if response is not None else str(error)
        if status in (401, 403):
            problem = f"HTTP {status}: {KEY_ID_VARIABLE}/_SECRET refused ({said})"
        else:
            problem = f"HTTP {status}: {said}"
        raise PublishError(_redacted(f"{where}: {problem}", credentials)) from None
    except requests.exceptions.RequestException as error:
        problem, _ = describe_http_failure(error)
        raise PublishError(_redacted(f"{where}: {problem}", credentials)) from None
    except PublishError as error:
        raise PublishError(_redacted(f"{where}: {error}", credentials)) from None
    except Exception as error:  # sodapy raises bare Exception for a body it cannot read
        raise PublishError(
            _redacted(f"{where}: unusable answer ({str(error)[:200]})", credentials)
        ) from None


def _redacted(text: str, credentials: Credentials) -> str:
    for secret in credentials.secrets:
        text = redact(text, secret)
    return " ".join(text.split())


def build_open_data_assets(nights: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The `open_data_publication` asset, for a portal file with `publish:` (code_location)."""

    @dg.asset(
        name=OPEN_DATA_PUBLICATION,
        group_name="delivery",
        partitions_def=nights,
        deps=[*BOARD_INPUTS, *AFTER_PROBES],
        kinds={"socrata"},
        automation_condition=REPORT_AUTOMATION,
    )
    def open_data_publication(
        context: dg.AssetExecutionContext, warehouse: DuckDBWarehouse, portals: PortalList
    ) -> dg.MaterializeResult:
        """The night's plan metrics and agency scorecard, every portal's, published as open
        data on Socrata (the portal file's `publish:`), so the public and the Board can chart
        them on the portal itself: one row per figure with its row_id, the night's rows
        replaced on a re-run, never duplicated. A failure to publish changes nothing here."""
        night = nightly_date(context.partition_key)
        settings = portals.portal_file().publish
        if settings is None:
            raise dg.Failure(
                description=f"the portal file {portals.source()} no longer has a publish: "
                "section: nothing to publish to",
                allow_retries=False,
            )
        try:
            credentials = Credentials.from_env()
        except PublishError as error:
            raise dg.Failure(description=str(error), allow_retries=False) from None
        nothing_stored = nothing_stored_failure(warehouse.location)
        if not warehouse.exists():
            raise nothing_stored
        # Read, then close the file before any request: a slow portal never holds its lock.
        with warehouse.get_connection(read_only=True) as conn:
            if not board_tables_exist(conn):
                raise nothing_stored
            try:
                rows_by_table = night_rows(conn, night, list(settings.datasets))
            except PublishError as error:
                raise dg.Failure(description=f"{night}: {error}", allow_retries=False) from None
        empty = [table for table, rows in rows_by_table.items() if not rows]
        if empty:
            # Publishing no rows would delete the night's rows on the portal.
            raise dg.Failure(
                description=f"board.{empty[0]} has no rows for {night}: nothing published "
                f"(the night's rows already on {settings.domain} are left as they are)",
                allow_retries=False,
            )
        try:
            published = publish_night(settings, night, rows_by_table, credentials)
        except PublishError as error:
            raise dg.Failure(description=str(error)) from None
        metadata: dict[str, dg.RawMetadataValue] = {"night": night.isoformat()}
        for done in published:
            context.log.info(
                f"board.{done.table} of {night}: {done.rows} rows to {done.url} "
                f"({done.created} created, {done.updated} updated, {done.deleted} deleted)"
            )
            if done.errors:
                context.log.warning(
                    f"board.{done.table} of {night}: Socrata counted {done.errors} errors "
                    f"in its upsert answers to {done.url}"
                )
            metadata.update(
                {
                    f"{done.table}: dataset": dg.MetadataValue.url(done.url),
                    f"{done.table}: rows": done.rows,
                    f"{done.table}: rows created": done.created,
                    f"{done.table}: rows updated": done.updated,
                    f"{done.table}: rows deleted": done.deleted,
                    f"{done.table}: errors": done.errors,
                }
            )
        return dg.MaterializeResult(metadata=metadata)

    return [open_data_publication]
