"""The store's half of a Kappa replay: refuse what would lose data, then delete a topic's raw
rows and decisions and rewind its offsets in one transaction, with an audit record.

What the stream still holds is read from Kafka by the caller (pulsemart.stream.rewind) and
handed in, and so are the derived tables to drop: the store knows its own schemas, not the
datamart's models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import psycopg

_DECIDED_TABLES = [
    psycopg.sql.Identifier("quality", name)
    for name in (
        "events_clean",
        "order_lines_clean",
        "quarantine",
        "quarantine_lines",
        "held",
        "progress",
    )
]


class ResetRefused(RuntimeError):
    """The reset would lose data or race a running batch; the message says which."""


def check_replayable(
    conn: psycopg.Connection,
    topic: str,
    beginnings: dict[int, int],
    holds_offset: Callable[[int, int], bool],
) -> None:
    """Refuse when the stream no longer starts at offset 0 (retention deleted records), or no
    longer holds the last stored record of a partition (an in-memory broker that restarted)."""
    committed = conn.execute(
        'select "partition", next_offset from ingest.offsets where topic = %s', (topic,)
    ).fetchall()
    conn.rollback()
    for partition, next_offset in committed:
        if beginnings.get(partition, 0) > 0:
            raise ResetRefused(
                f"{topic}[{partition}]: the stream starts at offset "
                f"{beginnings[partition]}; records before it can no longer be replayed"
            )
        if next_offset > 0 and not holds_offset(partition, next_offset - 1):
            raise ResetRefused(
                f"{topic}[{partition}]: the broker holds fewer records than were stored "
                f"({next_offset}); was it restarted? Replaying would lose data"
            )


def reset_topic(
    conn: psycopg.Connection,
    topic: str,
    derived: Sequence[tuple[str, str]] = (),
    reset_derived: Callable[[psycopg.Connection], None] | None = None,
) -> int:
    """In one transaction: lock the topic's offset rows, delete, rewind, drop the `derived`
    (schema, table) relations built from the decisions, call `reset_derived` (the serving
    fold's reset), audit. Returns the raw rows deleted."""
    with conn.transaction():
        try:
            rows = conn.execute(
                'select "partition", next_offset from ingest.offsets where topic = %s for update nowait',
                (topic,),
            ).fetchall()
        except psycopg.errors.LockNotAvailable as exc:
            raise ResetRefused(
                f"{topic}: a batch is running; pause the Kafka sensor and try again"
            ) from exc
        deleted = conn.execute("delete from raw.events where topic = %s", (topic,)).rowcount
        conn.execute("delete from ingest.offsets where topic = %s", (topic,))
        # Decisions hang off raw coordinates: they are re-decided from the replayed stream. The
        # catalog state is kept; it only ever learns what the stream said.
        for table in _DECIDED_TABLES:
            conn.execute(psycopg.sql.SQL("delete from {} where topic = %s").format(table), (topic,))
        if derived:
            relations = psycopg.sql.SQL(", ").join(
                psycopg.sql.Identifier(*name) for name in derived
            )
            conn.execute(psycopg.sql.SQL("drop table if exists {}").format(relations))
        if reset_derived is not None:
            reset_derived(conn)
        conn.execute(
            "insert into governance.audit_log (actor, action, subject, details) values (%s, %s, %s, %s)",
            (
                "pulsemart ingest",
                "reset_to_earliest",
                topic,
                json.dumps(
                    {
                        "raw_rows_deleted": deleted,
                        "offsets": dict(rows),
                        "dropped": [".".join(name) for name in derived],
                    }
                ),
            ),
        )
    return deleted
