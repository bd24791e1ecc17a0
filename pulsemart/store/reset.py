"""The Kappa replay: rebuild a topic's raw layer from the stream, safely.

Safely means: refuse when the stream no longer holds what the store holds (an in-memory
broker that restarted, or retention that deleted old records), refuse while a batch holds a
partition, and record the reset in the audit log. Deleting and rewinding happen in one
transaction, so a failure leaves the store as it was.
"""

from __future__ import annotations

import json

import psycopg

from pulsemart.config import Settings
from pulsemart.stream.reader import beginning_offsets, holds_offset, make_consumer

_DECIDED_TABLES = [
    psycopg.sql.Identifier("quality", name)
    for name in ("events_clean", "order_lines_clean", "quarantine", "quarantine_lines", "held", "progress")
]


# The datamart's incremental models add rows by quality batch; after a reset their old rows would
# linger. Dropped here, dbt's next build recreates them from the replayed clean layer.
_INCREMENTAL_MARTS = [
    psycopg.sql.Identifier("marts", name)
    for name in ("fct_order_lines", "fct_product_interactions", "fct_sessions", "fct_searches")
]


class ResetRefused(RuntimeError):
    """The reset would lose data or race a running batch; the message says which."""


def reset_to_earliest(conn: psycopg.Connection, settings: Settings, topic: str) -> int:
    """Delete `topic`'s raw rows and rewind its offsets; return the rows deleted."""
    consumer = make_consumer(settings)
    try:
        _check_replayable(conn, consumer, topic)
        with conn.transaction():
            return _reset(conn, topic)
    finally:
        consumer.close()


def _check_replayable(conn: psycopg.Connection, consumer, topic: str) -> None:
    beginnings = beginning_offsets(consumer, topic)
    committed = conn.execute(
        'select "partition", next_offset from ingest.offsets where topic = %s', (topic,)
    ).fetchall()
    conn.rollback()
    for partition, next_offset in committed:
        if beginnings.get(partition, 0) > 0:
            raise ResetRefused(f"{topic}[{partition}]: the stream starts at offset "
                               f"{beginnings[partition]}; records before it can no longer be replayed")
        if next_offset > 0 and not holds_offset(consumer, topic, partition, next_offset - 1):
            raise ResetRefused(f"{topic}[{partition}]: the broker holds fewer records than were stored "
                               f"({next_offset}); was it restarted? Replaying would lose data")


def _reset(conn: psycopg.Connection, topic: str) -> int:
    """Inside a transaction: lock the topic's offset rows, delete, rewind, audit."""
    try:
        rows = conn.execute(
            'select "partition", next_offset from ingest.offsets where topic = %s for update nowait',
            (topic,),
        ).fetchall()
    except psycopg.errors.LockNotAvailable as exc:
        raise ResetRefused(f"{topic}: a batch is running; pause the Kafka sensor and try again") from exc
    deleted = conn.execute("delete from raw.events where topic = %s", (topic,)).rowcount
    conn.execute("delete from ingest.offsets where topic = %s", (topic,))
    # Decisions hang off raw coordinates: they are re-decided from the replayed stream. The
    # catalog state is kept; it only ever learns what the stream said.
    for table in _DECIDED_TABLES:
        conn.execute(psycopg.sql.SQL("delete from {} where topic = %s").format(table), (topic,))
    conn.execute(psycopg.sql.SQL("drop table if exists {}").format(psycopg.sql.SQL(", ").join(_INCREMENTAL_MARTS)))
    conn.execute(
        "insert into governance.audit_log (actor, action, subject, details) values (%s, %s, %s, %s)",
        ("pulsemart ingest", "reset_to_earliest", topic,
         json.dumps({"raw_rows_deleted": deleted, "offsets": dict(rows)})),
    )
    return deleted
