"""Reading one partition's offset range with `assign` and `seek`, never a consumer group.

Offsets live in PostgreSQL next to the data, so the consumer has no group and commits
nothing. The development broker under-reports end offsets (see docs/ingestion.md, "The
sensor"), so a read does not trust them: it stops at its bound or when polls come back empty
(caught up).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition
from kafka import codec as kafka_codec
from kafka.errors import KafkaError

from pulsemart.config import Settings

# Every compression codec Kafka defines, with the check kafka-python makes before decoding a
# batch and the package that makes it pass. gzip is in the standard library.
CODECS = {
    "gzip": (kafka_codec.has_gzip, "the Python standard library"),
    "snappy": (kafka_codec.has_snappy, "python-snappy"),
    "lz4": (kafka_codec.has_lz4, "lz4"),
    "zstd": (kafka_codec.has_zstd, "zstandard"),
}


class ReadError(RuntimeError):
    """Kafka could not be read; nothing was stored and no offset moved."""


class MissingCodecError(ReadError):
    """A compression codec Kafka defines cannot be decoded here."""


def require_codecs() -> None:
    """Fail at start-up, not at the first compressed batch: kafka-python raises
    UnsupportedCodecError mid-read, and a partition holding such a batch can never move on."""
    missing = [(name, package) for name, (available, package) in CODECS.items() if not available()]
    if missing:
        wanted = ", ".join(f"{name} (install the {package!r} package)" for name, package in missing)
        raise MissingCodecError(
            f"Kafka compression codecs cannot be decoded: {wanted}; "
            "reinstall pulsemart with its dependencies"
        )


def consumer_config(settings: Settings, request_timeout_s: float = 15.0, **overrides) -> dict:
    """Keywords for every KafkaConsumer pulsemart makes (sensor-lane reads, workers, tools)."""
    config = dict(
        settings.kafka_client_config(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="none",
        # Records of aborted transactions never land; open transactions hold the read back
        # at the last stable offset until they end.
        isolation_level="read_committed",
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        request_timeout_ms=int(request_timeout_s * 1000),
        bootstrap_timeout_ms=int(request_timeout_s * 1000),
    )
    config.update(overrides)
    return config


def make_consumer(
    settings: Settings, request_timeout_s: float = 15.0, **overrides
) -> KafkaConsumer:
    require_codecs()
    config = consumer_config(settings, request_timeout_s, **overrides)
    try:
        return KafkaConsumer(**config)
    except KafkaError as exc:
        raise ReadError(f"cannot reach Kafka at {settings.kafka_bootstrap}: {exc}") from exc


def end_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    """Each partition's end offset: exact on Kafka, a lower bound on the development broker."""
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ReadError(
                f"topic {topic!r} does not exist on {consumer.config['bootstrap_servers']}"
            )
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    except KafkaError as exc:
        raise ReadError(f"cannot read end offsets of {topic}: {exc}") from exc


def beginning_offsets(consumer: KafkaConsumer, topic: str) -> dict[int, int]:
    partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    try:
        return {tp.partition: offset for tp, offset in consumer.beginning_offsets(tps).items()}
    except KafkaError as exc:
        raise ReadError(f"cannot read beginning offsets of {topic}: {exc}") from exc


@dataclass
class ReadProgress:
    """Where a read ended: the offset the next read starts from.

    That is past the last record read and past any control batches (transaction markers) or
    aborted records the consumer skipped after it, which no record's offset reveals. Written
    by the reading thread before its generator ends, so read it once the chunks are done.
    """

    next_offset: int


def read_range(
    consumer: KafkaConsumer,
    topic: str,
    partition: int,
    start: int,
    max_records: int,
    poll_timeout_ms: int = 250,
    empty_polls_to_stop: int = 3,
    chunk_records: int = 5000,
    max_seconds: float | None = None,
    progress: ReadProgress | None = None,
) -> Iterator[list]:
    """Yield chunks of ConsumerRecords from `start`, at most `max_records` in all.

    Stops when caught up: at the first empty poll once records came (every record held back
    is latency for every reader), or after `empty_polls_to_stop` empty polls before the first
    (the first fetch after a seek may be slow; ending then would plan the range again). Stops
    too after `max_seconds`, since a steady trickle may never leave a poll empty. Memory stays
    bounded by `chunk_records`, whatever the lag behind the range. `progress`, when given,
    ends past the last record, or at the consumer's position when the read caught up, so a
    tail of transaction markers counts as read.
    """
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        remaining = max_records
        empty = 0
        allowed_empty = empty_polls_to_stop
        deadline = time.monotonic() + max_seconds if max_seconds else float("inf")
        while remaining > 0 and empty < allowed_empty and time.monotonic() < deadline:
            polled = consumer.poll(
                timeout_ms=poll_timeout_ms, max_records=min(chunk_records, remaining)
            )
            records = polled.get(tp, [])
            if not records:
                empty += 1
                continue
            empty, allowed_empty = 0, 1
            records = records[:remaining]
            remaining -= len(records)
            if progress is not None:
                progress.next_offset = records[-1].offset + 1
            yield records
        if progress is not None and empty >= allowed_empty:
            # Caught up: every poll's records were yielded whole, and poll() moves the position
            # past each record it returns and each control or aborted batch it skips.
            progress.next_offset = max(
                progress.next_offset, consumer.position(tp, timeout_ms=5000) or 0
            )
    except KafkaError as exc:
        raise ReadError(f"reading {topic}[{partition}] from offset {start} failed: {exc}") from exc


def holds_offset(
    consumer: KafkaConsumer, topic: str, partition: int, offset: int, timeout_ms: int = 3000
) -> bool:
    """Whether the broker still holds `offset`: a record there, or a transaction marker the
    consumer steps over (end offsets cannot tell on the development broker, which
    under-reports them)."""
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        consumer.seek(tp, offset)
        polled = consumer.poll(timeout_ms=timeout_ms, max_records=1)
        if any(record.offset == offset for record in polled.get(tp, [])):
            return True
        return (consumer.position(tp, timeout_ms=timeout_ms) or 0) > offset
    except KafkaError as exc:
        raise ReadError(f"reading {topic}[{partition}] at offset {offset} failed: {exc}") from exc
