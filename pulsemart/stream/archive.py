"""The raw archive: each landed batch copied as Parquet to the profile's object store.

    <store root>/topic=<topic>/date=<YYYY-MM-DD>/batch-<batch_id>.parquet

The lake copy of `raw.events`, partitioned the Hive way so Athena, Spark, Synapse or
`pyarrow.dataset(..., partitioning="hive")` prune by topic and date. The date is the batch's
load date (UTC `ingested_at`, one value per batch: the batch's transaction time), so a batch is
one file; each record's Kafka timestamp is a column for event-time filters.

How it stays correct:

- **The database first.** A batch is copied after its transaction committed, from
  `raw.events` (never from memory), so the archive can only hold what PostgreSQL holds.
- **A ledger, written with the batch.** `ingest_batch` inserts the batch into
  `ingest.archive_log` as `pending` in the batch's own transaction: no batch is stored without
  the archive owing it a copy, even if the process dies before the copy is made.
- **Idempotent by batch id.** The object key is fixed by the batch, and a row lock (`for
  update skip locked`) keeps two runs from copying one batch at once; copying again overwrites
  the same object with the same bytes.
- **Never the reason a batch fails.** An archive that fails (store unreachable, credentials
  expired) leaves the batch stored and its offset moved; the ledger says `failed`, with the
  error (secrets masked), the run logs a warning, and the materialization's metadata shows
  `archive_status=failed` and how many batches the archive owes (`archive_owed`).
- **Retried.** Every ingest run, after its own batch, copies up to RETRIES_PER_RUN owed
  batches (failed ones, and pending ones older than RETRY_AFTER: their run died); and
  `pulsemart archive retry` drains the whole backlog. A batch whose raw rows
  were deleted first (`pulsemart ingest --reset-to earliest`) is marked `gone`.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from pulsemart.cloud.objectstore import ObjectStore, object_store
from pulsemart.cloud.redact import redact_text
from pulsemart.config import Settings
from pulsemart.store.rows import one_row

RETRIES_PER_RUN = 2
RETRY_AFTER_S = 60  # a younger pending row belongs to a run that is still copying it
OWED = "status in ('pending', 'failed')"

# Columns of raw.events, less the partition keys the path already holds (topic, date).
ARCHIVE_SCHEMA = pa.schema(
    [
        ("partition", pa.int32()),
        ("offset", pa.int64()),
        ("key", pa.binary()),
        ("value", pa.binary()),
        ("headers", pa.string()),  # JSON, header values base64 (as in raw.events)
        ("kafka_timestamp", pa.timestamp("ms", tz="UTC")),
        ("timestamp_type", pa.int8()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("batch_id", pa.int64()),
    ]
)
# Timestamps travel as epoch integers (ms, µs): Arrow builds those arrays without a Python
# datetime per record, which made copying a batch as slow as landing it.
_COLUMNS = (
    '"partition", "offset", key, value, headers::text, '
    "(extract(epoch from kafka_timestamp) * 1000)::int8, timestamp_type::int2, "
    "(extract(epoch from ingested_at) * 1000000)::int8, batch_id"
)
_WIRE_TYPES = [
    pa.int32(),
    pa.int64(),
    pa.binary(),
    pa.binary(),
    pa.string(),
    pa.int64(),
    pa.int8(),
    pa.int64(),
    pa.int64(),
]


@dataclass(frozen=True)
class ArchiveOutcome:
    batch_id: int
    status: str  # archived, failed, gone, done (copied before), busy (another run on it)
    uri: str | None = None
    records: int = 0
    error: str | None = None


def archive_key(topic: str, day: date, batch_id: int) -> str:
    return f"topic={topic}/date={day.isoformat()}/batch-{batch_id}.parquet"


def batch_table(conn: psycopg.Connection, batch_id: int) -> tuple[str, pa.Table] | None:
    """The batch's object key and its records as an Arrow table; None when its raw rows are
    gone. Reads by the batch's offset range (the primary key's order) and its id."""
    found = conn.execute(
        'select topic, "partition", start_offset, next_offset from ingest.batches '
        "where batch_id = %s",
        (batch_id,),
    ).fetchone()
    if found is None:
        return None
    topic, partition, start, end = found
    with conn.cursor(binary=True) as cur:
        rows = cur.execute(
            f'select {_COLUMNS} from raw.events where topic = %s and "partition" = %s '  # noqa: S608 - constant
            'and "offset" >= %s and "offset" < %s and batch_id = %s order by "offset"',
            (topic, partition, start, end, batch_id),
        ).fetchall()
    if not rows:
        return None
    columns = list(zip(*rows, strict=True))
    arrays = [
        pa.array(values, type=wire).cast(field.type)
        for values, wire, field in zip(columns, _WIRE_TYPES, ARCHIVE_SCHEMA, strict=True)
    ]
    table = pa.Table.from_arrays(arrays, schema=ARCHIVE_SCHEMA)
    day = datetime.fromtimestamp(rows[0][7] / 1_000_000, tz=UTC).date()
    return archive_key(topic, day, batch_id), table


def to_parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def archive_batch(conn: psycopg.Connection, store: ObjectStore, batch_id: int) -> ArchiveOutcome:
    """Copy one landed batch to `store` and record the outcome; never raises for the store's
    failures (a database failure is returned as `failed` too, with nothing recorded)."""
    try:
        with conn.transaction():
            conn.execute(
                "insert into ingest.archive_log (batch_id) values (%s) on conflict do nothing",
                (batch_id,),
            )
            row = conn.execute(
                "select status from ingest.archive_log where batch_id = %s for update skip locked",
                (batch_id,),
            ).fetchone()
            if row is None:
                return ArchiveOutcome(batch_id, "busy")
            if row[0] in ("archived", "gone"):
                return ArchiveOutcome(batch_id, "done")
            try:
                found = batch_table(conn, batch_id)
                if found is not None:
                    key, table = found
                    uri = store.put(key, to_parquet(table))
            except psycopg.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - any store failure: record it, retry later
                error = _describe(exc)
                conn.execute(
                    "update ingest.archive_log set status = 'failed', attempts = attempts + 1, "
                    "last_error = %s, updated_at = now() where batch_id = %s",
                    (error, batch_id),
                )
                return ArchiveOutcome(batch_id, "failed", error=error)
            if found is None:
                conn.execute(
                    "update ingest.archive_log set status = 'gone', attempts = attempts + 1, "
                    "last_error = 'raw rows deleted before the copy', updated_at = now() "
                    "where batch_id = %s",
                    (batch_id,),
                )
                return ArchiveOutcome(batch_id, "gone")
            conn.execute(
                "update ingest.archive_log set status = 'archived', attempts = attempts + 1, "
                "object_uri = %s, records = %s, last_error = null, updated_at = now() "
                "where batch_id = %s",
                (uri, table.num_rows, batch_id),
            )
            return ArchiveOutcome(batch_id, "archived", uri, table.num_rows)
    except psycopg.Error as exc:
        return ArchiveOutcome(batch_id, "failed", error=_describe(exc))


def owed_batches(conn: psycopg.Connection, limit: int | None = None) -> list[int]:
    """Batches the archive owes, fewest attempts first: failed ones, and pending ones old
    enough that the run which stored them is no longer copying them."""
    with conn.transaction():
        rows = conn.execute(
            f"select batch_id from ingest.archive_log where {OWED} and (status = 'failed' or "  # noqa: S608 - constant
            "created_at < now() - %s * interval '1 second') order by attempts, batch_id limit %s",
            (RETRY_AFTER_S, limit),
        ).fetchall()
    return [row[0] for row in rows]


def owed_count(conn: psycopg.Connection) -> int:
    with conn.transaction():
        owed = f"select count(*) from ingest.archive_log where {OWED}"  # noqa: S608 - constant
        return one_row(conn.execute(owed))[0]


def retry_owed(
    conn: psycopg.Connection,
    store: ObjectStore,
    limit: int | None = None,
) -> list[ArchiveOutcome]:
    """Copy owed batches until `limit` or the first failure (the store is likely down)."""
    outcomes = []
    for batch_id in owed_batches(conn, limit):
        outcome = archive_batch(conn, store, batch_id)
        outcomes.append(outcome)
        if outcome.status == "failed":
            break
    return outcomes


@functools.lru_cache(maxsize=8)
def _store(settings: Settings, pid: int) -> ObjectStore:
    # One client per process and settings (a forked worker makes its own: `pid`).
    return object_store(settings)


def archive_after_ingest(
    settings: Settings,
    conn: psycopg.Connection,
    batch_id: int | None,
    retries: int = RETRIES_PER_RUN,
) -> dict:
    """The ingest run's archive step: its own batch, then a few owed ones. Returns metadata
    (`archive_status`, `archive_uri`, `archive_owed`, and `archive_error` on failure); never
    raises, since the batch it follows has already committed."""
    if not settings.archive_enabled:
        return {"archive_status": "off"}
    try:
        store = _store(settings, os.getpid())
        own = archive_batch(conn, store, batch_id) if batch_id is not None else None
        if own is None or own.status != "failed":
            retry_owed(conn, store, retries)
        meta = {
            "archive_status": own.status if own else "nothing to copy",
            "archive_uri": (own.uri or "") if own else "",
            "archive_owed": owed_count(conn),
        }
        if own is not None and own.error:
            meta["archive_error"] = own.error
        return meta
    except Exception as exc:  # noqa: BLE001 - never fail the committed batch (SDK, credentials)
        return {"archive_status": "failed", "archive_uri": "", "archive_error": _describe(exc)}


def _describe(exc: BaseException) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}")[:2000]
