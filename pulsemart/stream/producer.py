"""Producing shop events to Kafka, with a rate limit, progress and a bounded wait.

Simulator, replay and benchmarks all produce through `produce_events`, so they share one
error contract: a broker that cannot be reached raises `ProduceError` within
`connect_timeout_s` instead of hanging.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from kafka import KafkaProducer
from kafka.errors import KafkaError

from pulsemart.config import Settings


class ProducedEvent(NamedTuple):
    """One record to produce: the topic, the partitioning key and the serialised value."""

    topic: str
    key: str | None
    value: bytes


class ProduceError(RuntimeError):
    """Producing failed; the message says where and why."""


def make_producer(
    settings: Settings, connect_timeout_s: float = 10.0, **overrides
) -> KafkaProducer:
    """A producer for the configured cluster that fails fast when the broker is unreachable."""
    config = dict(
        settings.kafka_client_config(),
        acks="all",
        linger_ms=5,
        batch_size=256 * 1024,
        max_request_size=4 * 1024 * 1024,
        max_block_ms=int(connect_timeout_s * 1000),
        bootstrap_timeout_ms=int(connect_timeout_s * 1000),
        request_timeout_ms=int(connect_timeout_s * 1000),
    )
    config.update(overrides)
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise ProduceError(
            f"cannot reach Kafka at {settings.kafka_bootstrap} ({type(exc).__name__}); "
            "start it with `pulsemart services up` or set PULSEMART_KAFKA_BOOTSTRAP"
        ) from exc


def produce_events(
    producer: KafkaProducer,
    events: Iterable[ProducedEvent],
    rate: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 30.0,
) -> int:
    """Send every event, at most `rate` per second when given, and wait until all are acked.

    Returns the number of events produced. Raises `ProduceError` if any send failed, so a
    caller never believes records landed that did not.
    """
    failures: list[BaseException] = []
    started = time.monotonic()
    count = 0
    for event in events:
        if rate:
            # Pace against the start time rather than sleeping per event, so rounding
            # errors do not accumulate over long trickles.
            ahead = count / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        key = event.key.encode() if event.key is not None else None
        try:
            future = producer.send(event.topic, key=key, value=event.value)
        except KafkaError as exc:
            raise ProduceError(f"producing to {event.topic} failed: {exc}") from exc
        future.add_errback(failures.append)
        count += 1
        if on_progress and count % 1000 == 0:
            on_progress(1000)
        if failures:
            break
    try:
        producer.flush(timeout=flush_timeout_s)
    except KafkaError as exc:
        raise ProduceError(f"waiting for acknowledgements failed: {exc}") from exc
    if failures:
        raise ProduceError(f"{len(failures)} record(s) were not acknowledged: {failures[0]!r}")
    if on_progress:
        on_progress(count % 1000)
    return count
