"""`bench ingest`: `ingest --until-caught-up` beside the raw consume and COPY rates, same run.

One backlog of simulated events is produced to shop.events, then read three ways: by a bare
kafka-python consumer (the anchor: nothing can ingest faster than the stream can be read),
by COPY of those same records into a scratch table (the write floor), and by `catch_up`, the
in-process Dagster job behind `pulsemart ingest --until-caught-up`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kafka import TopicPartition

from pulsemart.config import EVENTS_TOPIC, Settings
from pulsemart.store import raw
from pulsemart.store.db import connect_migrated
from pulsemart.stream.producer import make_producer
from pulsemart.stream.reader import make_consumer
from pulsemart.stream.simulator import generate
from pulsemart_bench.measure import Measurement, timed
from pulsemart_bench.stack import recreate_topics, truncate_store

CHUNK = 5000  # the reader's chunk size, so the anchor polls the way ingest does


def backlog_records(n_events: int, seed: int) -> list[tuple[bytes | None, bytes]]:
    """Simulated (key, value) pairs; all go to shop.events so one topic holds the backlog."""
    return [
        (e.key.encode() if e.key is not None else None, e.value) for e in generate(n_events, seed)
    ]


def produce_backlog(
    settings: Settings,
    topic: str,
    records: list[tuple],
    partition: int | None = None,
    compression: str | None = None,
) -> None:
    producer = make_producer(settings, **({"compression_type": compression} if compression else {}))
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=10)


def raw_consume(settings: Settings, topic: str, idle_polls: int = 3) -> tuple[Measurement, list]:
    """Anchor: assign every partition, seek to the beginning, poll until polls come back empty.

    The clock stops at the last non-empty poll: the trailing idle polls only prove the topic
    is drained (end offsets cannot, on the development broker) and are not throughput.
    """
    consumer = make_consumer(settings)
    records: list = []
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        started = time.perf_counter()
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        empty, last = 0, 0.0
        while empty < idle_polls:
            polled = consumer.poll(timeout_ms=300, max_records=CHUNK)
            if not polled:
                empty += 1
                continue
            empty = 0
            for chunk in polled.values():
                records.extend(chunk)
            last = time.perf_counter() - started
    finally:
        consumer.close()
    size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
    return Measurement(
        "anchor: bare kafka-python consume (assign + seek, all partitions)",
        len(records),
        size,
        last,
        "records",
    ), records


_SCRATCH = (
    "create schema if not exists bench; drop table if exists bench.events; "
    "create table bench.events (like raw.events including all)"
)


def _prebuilt_rows(records: list) -> list[tuple]:
    """raw.events rows built ahead of the clock (the floor times COPY alone)."""

    def stamp(millis):
        return (
            None if millis is None or millis < 0 else datetime.fromtimestamp(millis / 1000, tz=UTC)
        )

    return [
        (
            r.topic,
            r.partition,
            r.offset,
            r.key,
            r.value,
            raw.headers_jsonb(r.headers),
            stamp(r.timestamp),
            r.timestamp_type,
            0,
        )
        for r in records
    ]


def copy_rates(settings: Settings, records: list) -> tuple[Measurement, Measurement]:
    """COPY of the consumed records into a logged scratch table shaped like raw.events (same
    primary key and defaults), with ingest's COPY statement: once through `raw.copy_records`,
    the row writer ingest uses, and once with rows pre-built, which isolates what building
    rows in Python costs."""
    size = sum(len(r.value or b"") + len(r.key or b"") for r in records)
    sql = raw.COPY_SQL.replace("raw.events", "bench.events")
    results = []
    with connect_migrated(settings) as conn:
        for name, prebuilt in (
            ("COPY via raw.copy_records (ingest's row writer)", False),
            ("COPY floor: rows pre-built, write_row only", True),
        ):
            conn.execute(_SCRATCH)
            conn.commit()
            rows = _prebuilt_rows(records) if prebuilt else None
            with timed() as watch, conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                if prebuilt:
                    copy.set_types(raw.COPY_TYPES)
                    for row in rows:
                        copy.write_row(row)
                else:
                    for i in range(0, len(records), CHUNK):
                        raw.copy_records(copy, records[i : i + CHUNK], 0)
            results.append(Measurement(name, len(records), size, watch.seconds, "records"))
            del rows
        conn.execute("drop schema bench cascade")
        conn.commit()
    return results[0], results[1]


@dataclass
class CatchUpResult:
    measurement: Measurement
    batches: list[dict] = field(default_factory=list)

    @property
    def read_seconds(self) -> float:
        return sum(b.get("read_seconds", 0.0) for b in self.batches)

    @property
    def write_seconds(self) -> float:
        return sum(b.get("write_seconds", 0.0) for b in self.batches)


def catch_up_rate(settings: Settings, topic: str) -> CatchUpResult:
    """`pulsemart ingest --until-caught-up --no-decide` as the CLI runs it, start to end:
    landing only (the rule engine has its own benchmark). Dagster import and definition
    loading are excluded: they are paid once per process, not per record."""
    from orchestration.catch_up import catch_up
    from orchestration.streaming import defs

    truncate_store(settings)
    batches: list[dict] = []
    with timed() as watch:
        report = catch_up(settings, defs, [topic], on_batch=batches.append, decide=False)
    m = Measurement(
        "pulsemart ingest --until-caught-up --no-decide (catch_up, in-process Dagster job)",
        report.records,
        report.bytes,
        watch.seconds,
        "records",
    )
    return CatchUpResult(m, batches)


def prepare_backlog(
    settings: Settings,
    n_events: int,
    seed: int,
    records: list[tuple] | None = None,
    compression: str | None = None,
) -> list[tuple]:
    """The backlog on empty topics and an empty store; `compression` is the producer's codec
    (each record batch on the broker is compressed with it, and every reader decodes it)."""
    records = records if records is not None else backlog_records(n_events, seed)
    recreate_topics(settings)
    truncate_store(settings)
    produce_backlog(settings, EVENTS_TOPIC, records, compression=compression)
    return records
