"""One ingest batch: read a partition's range from Kafka, land it raw, move the offset.

Reading and writing share one PostgreSQL transaction that begins by locking the partition's
offset row, so a batch either stores its whole range and advances the offset, or stores
nothing and leaves the offset where it was. That is what makes ingestion exactly-once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import psycopg

from pulsemart.store import raw
from pulsemart.stream.prefetch import prefetch
from pulsemart.stream.reader import ReadProgress, read_range


@dataclass(frozen=True)
class BatchPlan:
    topic: str
    partition: int
    start_offset: int
    max_events: int
    max_seconds: float | None = None  # bound on reading time, for freshness under a trickle


@dataclass(frozen=True)
class BatchResult:
    topic: str
    partition: int
    start_offset: int
    next_offset: int
    records: int
    bytes: int
    batch_id: int | None
    read_seconds: float
    write_seconds: float
    # "stored"; "markers" (no record, but the offset moved over transaction markers); "empty"
    # (caught up, nothing moved); or "already_stored" (a rerun of a done range)
    status: str

    def as_dict(self) -> dict:
        return asdict(self)


def ingest_batch(
    conn: psycopg.Connection, consumer, plan: BatchPlan, run_id: str | None = None
) -> BatchResult:
    """Store the records of `plan`'s range; safe to run again for the same plan."""
    started_at = datetime.now(UTC)
    read_s = write_s = 0.0
    records = size = 0
    progress = ReadProgress(plan.start_offset)
    try:
        with conn.transaction():
            raw.lock_offset(conn, plan.topic, plan.partition, plan.start_offset)
            batch_id = raw.new_batch_id(conn)
            with conn.cursor() as cur, cur.copy(raw.COPY_SQL) as copy:
                chunks = prefetch(
                    read_range(
                        consumer,
                        plan.topic,
                        plan.partition,
                        plan.start_offset,
                        plan.max_events,
                        max_seconds=plan.max_seconds,
                        progress=progress,
                    )
                )
                while True:
                    t0 = time.perf_counter()
                    chunk = next(chunks, None)
                    t1 = time.perf_counter()
                    read_s += t1 - t0
                    if chunk is None:
                        break
                    size += raw.copy_records(copy, chunk, batch_id)
                    records += len(chunk)
                    write_s += time.perf_counter() - t1
            # Past the last record and any markers after it (see ReadProgress): a partition
            # ending on a commit marker is then caught up, not lagging by one forever.
            next_offset = progress.next_offset
            t0 = time.perf_counter()
            if next_offset > plan.start_offset:
                raw.advance_offset(conn, plan.topic, plan.partition, plan.start_offset, next_offset)
            if records:
                raw.record_batch(
                    conn,
                    batch_id,
                    plan.topic,
                    plan.partition,
                    plan.start_offset,
                    next_offset,
                    plan.max_events,
                    records,
                    size,
                    run_id,
                    read_s,
                    write_s,
                    started_at,
                )
                write_s += time.perf_counter() - t0
    except raw.OffsetConflict as conflict:
        if conflict.found > plan.start_offset:
            return BatchResult(
                plan.topic,
                plan.partition,
                plan.start_offset,
                conflict.found,
                0,
                0,
                None,
                read_s,
                write_s,
                "already_stored",
            )
        raise
    status = "stored" if records else "markers" if next_offset > plan.start_offset else "empty"
    return BatchResult(
        plan.topic,
        plan.partition,
        plan.start_offset,
        next_offset,
        records,
        size,
        batch_id if records else None,
        read_s,
        write_s,
        status,
    )
