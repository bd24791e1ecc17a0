"""A timed figure and its ratio to an anchor: the arithmetic the report relies on."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

MB = 1_000_000  # decimal megabytes, as network and disk rates are usually quoted


@dataclass(frozen=True)
class Measurement:
    """`count` items (`unit`) and `bytes` payload handled in `seconds` of wall time."""

    name: str
    count: int
    bytes: int
    seconds: float
    unit: str = "events"

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else 0.0


def ratio(measured: Measurement, anchor: Measurement | None) -> float | None:
    """`measured`'s rate as a fraction of `anchor`'s; None when there is nothing to divide by.

    Rates, not times, are compared: the two runs may handle slightly different counts (the
    anchor reads the topic until it is empty, which the measured run may not), and a rate
    keeps that honest.
    """
    if anchor is None or anchor.rate <= 0:
        return None
    return measured.rate / anchor.rate


class Stopwatch:
    seconds: float = 0.0


@contextmanager
def timed():
    """`with timed() as watch: ...` then `watch.seconds` (perf_counter, wall time)."""
    watch = Stopwatch()
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    if not values:
        return None
    # numpy's "inverted_cdf" is the nearest-rank definition: the smallest observed value whose
    # cumulative share reaches q.
    return np.percentile(values, q, method="inverted_cdf").item()
