"""Landing Kafka records in `raw.events` and moving `ingest.offsets` in one transaction.

The offset row is locked and compared first (compare-and-set on the offset the batch started
from), so two runs of the same range can never both store it: the second finds the offset
moved and stores nothing. The records go in through COPY, exactly as received.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from pulsemart.store.rows import one_row

# Binary COPY: bytea values travel as they are, without the hex escaping of text COPY.
COPY_SQL = (
    'copy raw.events (topic, "partition", "offset", key, value, headers, kafka_timestamp, '
    "timestamp_type, batch_id) from stdin (format binary)"
)
COPY_TYPES = ["text", "int4", "int8", "bytea", "bytea", "jsonb", "timestamptz", "int2", "int8"]


class OffsetConflict(RuntimeError):
    """The partition's committed offset is not where the batch expected it to be."""

    def __init__(self, topic: str, partition: int, expected: int, found: int):
        super().__init__(
            f"{topic}[{partition}]: batch planned from offset {expected} but the committed "
            f"offset is {found}; another run stored this range already"
        )
        self.found = found


def committed_offsets(conn: psycopg.Connection, topic: str) -> dict[int, int]:
    rows = conn.execute(
        'select "partition", next_offset from ingest.offsets where topic = %s', (topic,)
    ).fetchall()
    return dict(rows)


def lock_offset(conn: psycopg.Connection, topic: str, partition: int, start: int) -> None:
    """Inside a transaction: lock the partition's offset row and check it equals `start`.

    A partition seen for the first time starts at `start` (the planner passes the topic's
    beginning offset).
    """
    conn.execute(
        'insert into ingest.offsets (topic, "partition", next_offset) values (%s, %s, %s) '
        "on conflict do nothing",
        (topic, partition, start),
    )
    (found,) = one_row(
        conn.execute(
            'select next_offset from ingest.offsets where topic = %s and "partition" = %s for update',
            (topic, partition),
        )
    )
    if found != start:
        raise OffsetConflict(topic, partition, start, found)


def new_batch_id(conn: psycopg.Connection) -> int:
    (batch_id,) = one_row(conn.execute("select nextval('ingest.batches_batch_id_seq')"))
    return batch_id


# The common case, one wrapper for every record without headers.
_NO_HEADERS = Jsonb([])


def headers_jsonb(headers) -> Jsonb:
    """Kafka headers as a jsonb array of [key, value] pairs, queryable with jsonb operators.

    Header values are arbitrary bytes; base64 keeps them exact inside JSON. (A `str` would
    not do: a COPY typed jsonb stores a Python str as a JSON string, not as the array.)
    """
    if not headers:
        return _NO_HEADERS
    return Jsonb([[k, base64.b64encode(v).decode() if v is not None else None] for k, v in headers])


def _timestamp(millis: int | None) -> datetime | None:
    if millis is None or millis < 0:
        return None
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def copy_records(copy, records, batch_id: int) -> int:
    """Write ConsumerRecords into an open binary COPY; return the bytes of values and keys.

    This loop is the ingest hot path: records of one producer batch share a timestamp, so
    the last conversion is reused rather than building a datetime per record.
    """
    copy.set_types(COPY_TYPES)
    written = 0
    last_millis, last_time = None, None
    write_row = copy.write_row
    for r in records:
        if r.timestamp != last_millis:
            last_millis, last_time = r.timestamp, _timestamp(r.timestamp)
        write_row(
            (
                r.topic,
                r.partition,
                r.offset,
                r.key,
                r.value,
                headers_jsonb(r.headers),
                last_time,
                r.timestamp_type,
                batch_id,
            )
        )
        written += len(r.value or b"") + len(r.key or b"")
    return written


def advance_offset(
    conn: psycopg.Connection, topic: str, partition: int, start: int, next_offset: int
) -> None:
    cur = conn.execute(
        "update ingest.offsets set next_offset = %s, updated_at = now() "
        'where topic = %s and "partition" = %s and next_offset = %s',
        (next_offset, topic, partition, start),
    )
    if cur.rowcount != 1:  # cannot happen while the row lock is held; kept as a guard
        raise OffsetConflict(topic, partition, start, -1)


def record_batch(
    conn: psycopg.Connection,
    batch_id: int,
    topic: str,
    partition: int,
    start: int,
    next_offset: int,
    max_events: int,
    records: int,
    size: int,
    run_id: str | None,
    read_seconds: float,
    write_seconds: float,
    started_at: datetime,
) -> None:
    """Inside the landing transaction: the batch's row in `ingest.batches`, and its entry in the
    archive's ledger (the batch is owed to the lake, see pulsemart.stream.archive)."""
    conn.execute(
        'insert into ingest.batches (batch_id, topic, "partition", start_offset, next_offset, '
        "max_events, records, bytes, run_id, read_seconds, write_seconds, started_at) "
        "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            batch_id,
            topic,
            partition,
            start,
            next_offset,
            max_events,
            records,
            size,
            run_id,
            read_seconds,
            write_seconds,
            started_at,
        ),
    )
    conn.execute("insert into ingest.archive_log (batch_id) values (%s)", (batch_id,))
