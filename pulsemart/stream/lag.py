"""Lag per partition, and how the planner sizes batches from it.

Lag is end offset minus committed offset. On the development broker the end offset is a
lower bound, so lag may read 0 while a last batch of records waits; readers therefore go on
until polls come back empty, and `pulsemart ingest --until-caught-up` ends with a read of
every partition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    end: int
    # The broker no longer holds the last stored record: an in-memory broker restarted, or
    # retention ran. Such a partition must not be read on, or its new records would be skipped.
    missing: bool = False
    # Every offset from the committed one to the end offset is a transaction marker (or an
    # aborted record a read_committed consumer skips): nothing there to read, so no lag.
    marker_tail: bool = False

    @property
    def lag(self) -> int:
        return 0 if self.marker_tail else max(0, self.end - self.committed)


def partition_lags(
    topic: str,
    committed: dict[int, int],
    ends: dict[int, int],
    beginnings: dict[int, int] | None = None,
) -> list[PartitionLag]:
    """Lag of each partition the broker knows; an uncommitted one starts at its beginning."""
    beginnings = beginnings or {}
    return [
        PartitionLag(topic, p, committed.get(p, beginnings.get(p, 0)), end)
        for p, end in sorted(ends.items())
    ]


def batch_size_for(lag: int, min_events: int, max_events: int) -> int:
    """Batches grow with lag, between a floor (small batches when nearly caught up keep
    freshness high) and `max_events` (which bounds a run's memory)."""
    return max(min_events, min(max_events, lag))


def with_hidden_lag(
    lags: list[PartitionLag],
    unread: set[int],
    missing: set[int],
    positions: dict[int, int] | None = None,
) -> list[PartitionLag]:
    """Apply a peek: raise the end offset of partitions whose stale end offset hid records,
    mark those whose stored records the broker lost, and those whose tail is only markers
    (`positions`: where the peek's consumer stood, having found no unread record)."""
    positions = positions or {}
    observed = []
    for lag in lags:
        if lag.partition in missing:
            lag = PartitionLag(lag.topic, lag.partition, lag.committed, lag.end, missing=True)
        elif lag.partition in unread:
            if lag.lag == 0:
                lag = PartitionLag(lag.topic, lag.partition, lag.committed, lag.committed + 1)
        elif lag.lag > 0 and positions.get(lag.partition, -1) >= lag.end:
            lag = PartitionLag(lag.topic, lag.partition, lag.committed, lag.end, marker_tail=True)
        observed.append(lag)
    return observed
