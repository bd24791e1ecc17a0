"""How long a micro-batch gathers records: the configured window at a trickle, longer while
the stream keeps the worker busy.

Most of a batch's cost is fixed: the rule engine's frames, rules and Pandera checks cost about
as much for 10 records as for 200 (docs/lanes.md has the figures), and so do the fold's
statements. A busy stream cut into 20 ms batches therefore fills the machine with fixed
costs. So when a batch's first record was already waiting as the worker came back for it (the
stream outpaced the worker), the window becomes the previous batch's own duration, within
[`min_s`, `max_s`]: the worker then spends about half its time gathering, records per batch
grow with the rate, and a record's wait stays near two batch durations. When the worker
waited for its first record (a trickle), the window is `min_s`, so a lone event is not held.

It is off by default: on a 2-core machine already full with the rest of the stack, it took a
third off the worker's CPU at 200 events/s but made produce-to-commit slower (docs/lanes.md),
because the cores it freed went to the other processes, not to the worker's batches.
"""

from __future__ import annotations

from dataclasses import dataclass

# A first record that took longer than this to arrive was not waiting: the worker was idle.
IDLE_WAIT_S = 0.005


@dataclass(frozen=True)
class BatchWindow:
    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        if not 0 < self.min_s <= self.max_s:
            raise ValueError(f"batch window bounds must satisfy 0 < min <= max: {self}")

    def next(self, first_wait_s: float, last_batch_s: float | None) -> float:
        """The gathering window of the batch whose first record took `first_wait_s` to
        arrive, after a batch that took `last_batch_s` to apply (None: none applied yet)."""
        if last_batch_s is None or first_wait_s > IDLE_WAIT_S:
            return self.min_s
        return min(self.max_s, max(self.min_s, last_batch_s))
