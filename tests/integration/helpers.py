"""Producing test records straight through kafka-python, byte for byte."""

from __future__ import annotations

from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events


def produce_raw(settings, topic: str, values: list[bytes], keys: list[str | None] | None = None) -> None:
    keys = keys or [f"k{i % 101}" for i in range(len(values))]
    producer = make_producer(settings)
    try:
        produce_events(producer, (ProducedEvent(topic, k, v) for k, v in zip(keys, values)))
    finally:
        producer.close(timeout=5)


def stored_triples(conn, topic: str) -> list[tuple]:
    return conn.execute(
        'select topic, "partition", "offset" from raw.events where topic = %s order by 2, 3', (topic,)
    ).fetchall()


def topic_triples(records) -> list[tuple]:
    return sorted((r.topic, r.partition, r.offset) for r in records)
