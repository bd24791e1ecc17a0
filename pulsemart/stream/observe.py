"""Observing lag on the broker: end offsets, plus a peek where they may be stale.

Shared by the Kafka sensor and `pulsemart ingest --until-caught-up`, so both see the same
lag. End offsets alone can hide up to one producer batch on the development broker (see
DESIGN.md); a one-record peek at the committed offset of each quiet partition reveals it.
"""

from __future__ import annotations

from kafka import KafkaConsumer

from pulsemart.stream.lag import PartitionLag, partition_lags, with_hidden_lag
from pulsemart.stream.reader import beginning_offsets, end_offsets, peek_unread


def observe_lags(consumer: KafkaConsumer, topic: str, committed: dict[int, int]) -> list[PartitionLag]:
    lags = partition_lags(topic, committed, end_offsets(consumer, topic), beginning_offsets(consumer, topic))
    quiet = {lag.partition: lag.committed for lag in lags if lag.lag == 0}
    return with_hidden_lag(lags, peek_unread(consumer, topic, quiet))
