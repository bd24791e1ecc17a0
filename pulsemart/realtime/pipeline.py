"""One micro-batch, one PostgreSQL transaction: land raw, decide, fold into serving.

The transaction opens by locking each partition's offset row and comparing it with the
worker's position (the compare-and-set of the sensor lane, `pulsemart.store.raw`), so a range
is landed once whoever lands it: a sensor-lane run, another worker, or this worker before a
crash. Deciding (`decide_new_records`) and folding (`refresh_serving`) run inside it as
savepoints; their advisory locks are held until the outer commit, so

- two workers decide one after the other, each seeing the catalog, held records and event
  ids the other committed (catalog state and duplicate detection need no worker affinity);
- quality batch ids commit in the order they were allocated: a batch id below one already
  visible can never appear later, which is the datamart's incremental contract.

Offset rows are locked in (topic, partition) order, so two workers whose partitions overlap
for a moment during a rebalance cannot deadlock.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from pulsemart.serving.fold import RefreshReport, refresh_serving
from pulsemart.store import raw
from pulsemart.store.quality import DecidedBatch, decide_new_records

TopicPartitionKey = tuple[str, int]


@dataclass(frozen=True)
class Landed:
    topic: str
    partition: int
    start_offset: int
    next_offset: int
    records: int
    bytes: int
    batch_id: int


@dataclass
class BatchOutcome:
    landed: list[Landed] = field(default_factory=list)
    decided: DecidedBatch | None = None
    served: RefreshReport | None = None
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return sum(part.records for part in self.landed)


def group_by_partition(
    records, positions: Mapping[TopicPartitionKey, int | None]
) -> dict[TopicPartitionKey, list]:
    """Records per partition in offset order, less any below the partition's position (a
    fetch that began before a seek may still deliver them: they are stored already)."""
    parts: dict[TopicPartitionKey, list] = defaultdict(list)
    for record in records:
        key = (record.topic, record.partition)
        start = positions.get(key)
        if start is not None and record.offset < start:
            continue
        parts[key].append(record)
    for chunk in parts.values():
        chunk.sort(key=lambda r: r.offset)
    return dict(sorted(parts.items()))


def apply_batch(
    conn: psycopg.Connection,
    parts: dict[TopicPartitionKey, list],
    positions: Mapping[TopicPartitionKey, int | None],
    run_id: str,
    decide_limit: int = 50_000,
    include_held: bool = True,
    session_state: bool = True,
    trending_every_s: float = 0.0,
) -> BatchOutcome:
    """Land, decide and fold `parts` in one transaction; raise raw.OffsetConflict (nothing
    stored) when a partition's stored offset is not the worker's position. With
    `include_held`, the records held for the catalog are decided again too."""
    started = time.perf_counter()
    outcome = BatchOutcome()
    started_at = datetime.now(UTC)
    with conn.transaction():
        for (topic, partition), records in parts.items():
            start = positions.get((topic, partition))
            if start is None:  # never stored: the partition starts at its first record
                start = records[0].offset
            outcome.landed.append(_land(conn, topic, partition, start, records, run_id, started_at))
        outcome.decided = decide_new_records(conn, decide_limit, run_id, include_held=include_held)
        outcome.served = refresh_serving(
            conn, session_state=session_state, trending_every_s=trending_every_s
        )
    outcome.seconds = time.perf_counter() - started
    return outcome


def _land(
    conn, topic: str, partition: int, start: int, records: list, run_id: str, started_at: datetime
) -> Landed:
    raw.lock_offset(conn, topic, partition, start)
    batch_id = raw.new_batch_id(conn)
    with conn.cursor() as cur, cur.copy(raw.COPY_SQL) as copy:
        size = raw.copy_records(copy, records, batch_id)
    next_offset = records[-1].offset + 1
    raw.advance_offset(conn, topic, partition, start, next_offset)
    # Owed to the archive like every landed batch; the worker copies owed batches off the
    # hot path (pulsemart.stream.archive.retry_owed).
    raw.record_batch(
        conn,
        batch_id,
        topic,
        partition,
        start,
        next_offset,
        len(records),
        len(records),
        size,
        run_id,
        0.0,
        0.0,
        started_at,
    )
    return Landed(topic, partition, start, next_offset, len(records), size, batch_id)
