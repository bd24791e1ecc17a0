"""Observing lag on the broker: end offsets, plus a peek where they may be stale.

Shared by the Kafka sensor and `pulsemart ingest --until-caught-up`, so both see the same
lag. End offsets alone can hide up to one producer batch on the development broker (see
DESIGN.md); a peek at the last stored record of each quiet partition reveals it, and also
whether the broker still holds that record at all.
"""

from __future__ import annotations

from kafka import KafkaConsumer

from pulsemart.stream.lag import PartitionLag, partition_lags, with_hidden_lag
from pulsemart.stream.reader import beginning_offsets, end_offsets, peek


def observe_lags(consumer: KafkaConsumer, topic: str, committed: dict[int, int]) -> list[PartitionLag]:
    """Lag per partition; `missing` is set on partitions whose stored records the broker lost."""
    lags = partition_lags(topic, committed, end_offsets(consumer, topic), beginning_offsets(consumer, topic))
    # Every partition is peeked, lagging ones too: a restarted broker whose new stream already
    # passed the old committed offset shows lag, yet reading on would skip its first records.
    unread, missing = peek(consumer, topic, {lag.partition: lag.committed for lag in lags})
    return with_hidden_lag(lags, unread, missing)
