"""Observing lag on the broker: end offsets, plus a peek where they may be stale.

Shared by the Kafka sensor and `pulsemart ingest --until-caught-up`, so both see the same
lag. End offsets alone can hide up to one producer batch on the development broker (see
docs/ingestion.md, "The sensor"); a peek at the last stored record of each partition reveals
it, and also whether the broker still holds that record at all. End offsets can also run
ahead of the last readable record: a transaction's commit or abort marker takes an offset no
consumer is handed, so a tail of markers is lag that no read can take away; the peek tells it
apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError

from pulsemart.stream.lag import PartitionLag, partition_lags, with_hidden_lag
from pulsemart.stream.reader import ReadError, beginning_offsets, end_offsets


@dataclass
class Peek:
    unread: set[int] = field(default_factory=set)  # records past the committed offset
    missing: set[int] = field(default_factory=set)  # the last stored record is gone
    # Where the consumer stood after the peek, for partitions that showed no unread record:
    # past the committed offset means it stepped over markers only.
    positions: dict[int, int] = field(default_factory=dict)


def observe_lags(
    consumer: KafkaConsumer, topic: str, committed: dict[int, int]
) -> list[PartitionLag]:
    """Lag per partition; `missing` is set on partitions whose stored records the broker lost,
    and `marker_tail` on those whose only entries past the committed offset are markers."""
    lags = partition_lags(
        topic, committed, end_offsets(consumer, topic), beginning_offsets(consumer, topic)
    )
    # Every partition is peeked, lagging ones too: a restarted broker whose new stream already
    # passed the old committed offset shows lag, yet reading on would skip its first records.
    seen = peek(consumer, topic, {lag.partition: lag.committed for lag in lags})
    return with_hidden_lag(lags, seen.unread, seen.missing, seen.positions)


def peek(
    consumer: KafkaConsumer,
    topic: str,
    committed: dict[int, int],
    poll_timeout_ms: int = 300,
    empty_polls_to_stop: int = 2,
) -> Peek:
    """Look at the last stored record of each partition and what follows it, in one fetch.

    Nothing is stored or committed; on Kafka, whose end offsets are exact, `unread` adds
    nothing to what end offsets say.
    """
    result = Peek()
    if not committed:
        return result
    tps = {TopicPartition(topic, p): offset for p, offset in committed.items()}
    starts = {tp: max(0, offset - 1) for tp, offset in tps.items()}
    seen: set[int] = set()
    try:
        consumer.assign(list(tps))
        for tp, start in starts.items():
            consumer.seek(tp, start)
        empty = 0
        while empty < empty_polls_to_stop and len(seen) < len(tps):
            try:
                polled = consumer.poll(timeout_ms=poll_timeout_ms, max_records=len(tps) * 500)
            except OffsetOutOfRangeError:
                break  # Kafka's answer for a stored offset it no longer has: reported as missing
            if not polled:
                empty += 1
                continue
            for tp, records in polled.items():
                seen.add(tp.partition)
                if any(r.offset >= tps[tp] for r in records):
                    result.unread.add(tp.partition)
                consumer.pause(tp)  # the first records are proof enough; fetch no more
        for tp, start in starts.items():
            if tp.partition in result.unread:
                continue
            position = _position(consumer, tp)
            if position is not None and position > start:
                # The consumer stepped over the offset: a record it handed over, or a marker
                # (the broker holds it either way).
                seen.add(tp.partition)
                result.positions[tp.partition] = position
    except KafkaError as exc:
        raise ReadError(f"peeking at {topic} failed: {exc}") from exc
    finally:
        consumer.resume(*consumer.paused())
    result.missing = {
        tp.partition for tp, offset in tps.items() if offset > 0 and tp.partition not in seen
    }
    return result


def _position(consumer: KafkaConsumer, tp: TopicPartition) -> int | None:
    try:
        return consumer.position(tp, timeout_ms=1000)
    except (KafkaError, OffsetOutOfRangeError):
        return None  # no valid position (the offset is out of range): not held
