"""Planning micro-batches from lag: the pure core of the Kafka sensor.

The sensor gathers facts (committed and end offsets, runs in flight, its cursor) and this
module decides which offset ranges to request. Keeping it free of Dagster and Kafka makes
every rule below testable on plain values.

Rules:
- a partition lags when its end offset is above its committed offset; the end offset is
  only a lower bound on the development broker, so the run itself finds the true end;
- a partition whose tail past the committed offset is only transaction markers does not
  lag: a batch there could read nothing, so none is planned and the skip reason says why;
- one partition never has two runs in flight, and at most `max_concurrent` runs are in
  flight for the topic's pool;
- a partition a real-time worker committed moments ago (`live`) is left to the worker: a run
  there would only wait on the worker's row lock and find its range landed;
- a batch starts at the committed offset and is sized by lag, between `min_events` and
  `max_events`;
- a range whose previous attempt ended without moving the offset (failed or killed) is
  requested again with the attempt counter raised, up to `max_attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulsemart.stream.lag import PartitionLag, batch_size_for


@dataclass(frozen=True)
class PlannerSettings:
    min_events: int = 1_000
    max_events: int = 50_000
    max_concurrent: int = 4
    max_attempts: int = 5


@dataclass(frozen=True)
class PlannedBatch:
    topic: str
    partition: int
    start_offset: int
    max_events: int
    attempt: int

    @property
    def run_key(self) -> str:
        return f"{self.topic}:{self.partition}:{self.start_offset}:{self.attempt}"


@dataclass
class Plan:
    batches: list[PlannedBatch] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one reason per partition not planned
    cursor: dict = field(default_factory=dict)

    def skip_reason(self) -> str:
        return "; ".join(self.skipped) if self.skipped else "no partition lags"


def plan_batches(
    lags: list[PartitionLag],
    in_flight: set[int],
    cursor: dict,
    settings: PlannerSettings,
    pool_busy: int | None = None,
    live: frozenset[int] | set[int] = frozenset(),
) -> Plan:
    """Decide the batches to request now. `in_flight` holds this topic's partitions with a run
    in flight; `pool_busy` counts the pool's runs in flight across topics (default: those).
    `cursor` maps partition (as str) to the last planned {"start", "attempt"}; the returned
    plan carries the cursor to store."""
    plan = Plan(cursor=dict(cursor))
    free_slots = settings.max_concurrent - (len(in_flight) if pool_busy is None else pool_busy)
    # Most lag first, so a full pool serves the partitions furthest behind.
    for lag in sorted(lags, key=lambda item: item.lag, reverse=True):
        name = f"{lag.topic}[{lag.partition}]"
        if lag.missing:
            plan.skipped.append(
                f"{name}: the broker no longer holds offset {lag.committed - 1}, the last one stored "
                "(was the in-memory broker restarted?); see docs/ingestion.md before ingesting on"
            )
            continue
        if lag.marker_tail:
            # A batch from here would read nothing, and so would the next: say why instead.
            plan.skipped.append(
                f"{name}: caught up at offset {lag.committed}; the tail up to end offset {lag.end} "
                "is a transaction marker (or aborted records), which no read returns"
            )
            continue
        if lag.lag == 0:
            continue
        if lag.partition in live:
            plan.skipped.append(f"{name}: a real-time worker is landing it")
            continue
        if lag.partition in in_flight:
            plan.skipped.append(f"{name}: a batch is already in flight")
            continue
        if free_slots <= 0:
            plan.skipped.append(f"{name}: pool full ({settings.max_concurrent} batches in flight)")
            continue
        previous = cursor.get(str(lag.partition))
        attempt = 0
        if previous and previous["start"] == lag.committed:
            attempt = previous["attempt"] + 1  # the last attempt ended without storing the range
        if attempt >= settings.max_attempts:
            plan.skipped.append(
                f"{name}: stuck at offset {lag.committed} after {attempt} attempts; see the failed "
                "ingest runs, fix the cause, then reset this sensor's cursor"
            )
            continue
        batch = PlannedBatch(
            lag.topic,
            lag.partition,
            lag.committed,
            batch_size_for(lag.lag, settings.min_events, settings.max_events),
            attempt,
        )
        plan.batches.append(batch)
        plan.cursor[str(lag.partition)] = {"start": batch.start_offset, "attempt": attempt}
        free_slots -= 1
    return plan
