"""The worker's Kafka side: a librdkafka consumer in the group `pulsemart-realtime`.

librdkafka (confluent-kafka) rather than kafka-python: it has the cooperative-sticky assignor,
so a worker joining or leaving moves only the partitions that change owner, and it joins the
development broker's group in ~5 s where kafka-python took ~23 s (docs/lanes.md). Offsets
stay in PostgreSQL: on assignment the worker seeks to them, and after each PostgreSQL commit
it copies them to the group (information for lag tools and autoscalers, never read back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)

from pulsemart.cloud import kafka
from pulsemart.config import Settings

GROUP_ID = "pulsemart-realtime"


class Record(NamedTuple):
    """A consumed record with the attributes `pulsemart.store.raw.copy_records` reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]] | None
    timestamp: int | None
    timestamp_type: int | None  # 0 create time, 1 log-append time (Kafka's numbering)


def as_record(message: Message) -> Record:
    """A consumed message as a Record (never an error message: the worker checks first)."""
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"not a consumed record: {message.error()}")
    kind, stamp = message.timestamp()
    millis: int | None = stamp
    if kind == TIMESTAMP_NOT_AVAILABLE:
        stamp_type, millis = None, None
    else:
        stamp_type = 0 if kind == TIMESTAMP_CREATE_TIME else 1
    headers = message.headers()  # a list of pairs when consumed; the stubs also allow a dict
    pairs = list(headers.items()) if isinstance(headers, dict) else headers
    return Record(
        topic, partition, offset, message.key(), message.value(), pairs, millis, stamp_type
    )


def librdkafka_config(settings: Settings) -> dict[str, Any]:
    """The connection settings in librdkafka's names (pulsemart.cloud.kafka renders the same
    resolved security as the kafka-python clients get)."""
    return kafka.librdkafka_config(settings.kafka_bootstrap, settings.kafka_security)


def make_group_consumer(
    settings: Settings,
    client_id: str,
    session_timeout_ms: int = 10_000,
    error_cb: Callable[[KafkaError], None] | None = None,
) -> Consumer:
    config = dict(
        librdkafka_config(settings),
        **{
            "group.id": GROUP_ID,
            "client.id": client_id,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": "read_committed",
            # Only used for a partition PostgreSQL has never stored: start at the beginning.
            "auto.offset.reset": "earliest",
            "session.timeout.ms": session_timeout_ms,
            "heartbeat.interval.ms": max(500, session_timeout_ms // 5),
            "fetch.wait.max.ms": 50,  # a lone record is not held back at the broker for long
            "log_level": 3,  # errors only: outages are logged by the worker, once each
        },
    )
    if error_cb is not None:
        config["error_cb"] = error_cb
    return Consumer(config)


def positioned(
    partitions: list[TopicPartition], stored: dict[tuple[str, int], int]
) -> list[TopicPartition]:
    """The assigned partitions with the offsets PostgreSQL stored (the beginning if none)."""
    return [
        TopicPartition(
            tp.topic, tp.partition, stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        )
        for tp in partitions
    ]
