"""CPU a local stack keeps busy, measured as the whole machine's busy CPU, in cores (CPU seconds
per wall second).

The stack is more than `pulsemart up`'s process tree: the broker runs outside it, and the
PostgreSQL server and its backends detach and rename themselves, so no list of processes found
by parentage or command line covers it. The machine's own counters (/proc/stat through psutil)
see every process, including short-lived Dagster run processes; the price is that they see
everything else as well, so the bench runs on an otherwise quiet machine and records the load
average beside each figure. The benchmark's own producer and poller are counted too.
"""

from __future__ import annotations

import time

import psutil


def busy_cpu_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot: total less idle and waiting for I/O, as
    psutil.cpu_percent counts busy."""
    times = psutil.cpu_times()
    total = sum(times)
    # Linux counts guest time inside user time as well: counted once.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0)


class MachineCpu:
    """Started at construction; `cores()` gives the machine's average busy cores since then."""

    def __init__(self):
        self.started = time.monotonic()
        self.before = busy_cpu_seconds()

    def cores(self) -> float:
        return (busy_cpu_seconds() - self.before) / (time.monotonic() - self.started)
