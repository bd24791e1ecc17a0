"""The Kappa replay: rebuild a topic's raw layer from the stream, safely.

Safely means: refuse when the stream no longer holds what the store holds (an in-memory
broker that restarted, or retention that deleted old records), refuse while a batch holds a
partition, and record the reset in the audit log (pulsemart.store.reset). This module reads
what the stream still holds; the store deletes and rewinds in one transaction, so a failure
leaves it as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from pulsemart.config import Settings
from pulsemart.serving.fold import reset_fold
from pulsemart.store.reset import check_replayable, reset_topic
from pulsemart.stream.reader import beginning_offsets, holds_offset, make_consumer


def reset_to_earliest(
    conn: psycopg.Connection,
    settings: Settings,
    topic: str,
    derived: Sequence[tuple[str, str]] = (),
) -> int:
    """Delete `topic`'s raw rows and decisions, drop the `derived` tables built from them (the
    datamart's incremental models: pulsemart.datamart.project.incremental_relations), rewind
    its offsets and the serving fold (refolded from the clean events that remain, then from
    the replay); return the raw rows deleted."""
    consumer = make_consumer(settings)
    try:
        check_replayable(
            conn,
            topic,
            beginning_offsets(consumer, topic),
            lambda partition, offset: holds_offset(consumer, topic, partition, offset),
        )
        return reset_topic(conn, topic, derived, reset_derived=reset_fold)
    finally:
        consumer.close()
