"""Peak RSS of one ingest batch, in a fresh process per batch size, over the same lag.

A fresh interpreter per size, because ru_maxrss only ever grows: measured in this process it
would report the benchmark's own peak (the records it holds for the COPY test), not the run's.
The child is forked by a small `sh`, not spawned from here: Linux carries the high-water mark
of the exec-ing process into ru_maxrss across execve, and Python spawns children with vfork,
so a direct child would report this (large) process's peak. VmHWM, the high-water mark of the
child's own address space, is printed too as a cross-check.
The lag sits in a one-partition topic, so a single batch really has all of it behind it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pulsemart.config import Settings
from pulsemart_bench.stack import recreate_topics

LAG_TOPIC = "bench.lag"

# Runs in the child: empty the store, then one ingest_batch of `max_events` from offset 0.
# ru_maxrss is in KiB on Linux. "baseline" is the resident size after imports and connections,
# before any record is read (current, not peak: importing can peak and release, which would
# hide a batch's growth under the import-time high-water mark).
_CHILD = """
import json, resource, sys, time
import psutil
from pulsemart_bench.stack import truncate_store
from pulsemart.config import load_settings
from pulsemart.store.db import connect_migrated
from pulsemart.stream.ingest import BatchPlan, ingest_batch
from pulsemart.stream.reader import make_consumer
topic, n = sys.argv[1], int(sys.argv[2])
settings = load_settings()
truncate_store(settings)
with connect_migrated(settings) as conn:
    consumer = make_consumer(settings)
    consumer.partitions_for_topic(topic)
    baseline = psutil.Process().memory_info().rss // 1024
    import_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = ingest_batch(conn, consumer, BatchPlan(topic, 0, 0, n))
    seconds = time.perf_counter() - t0
    consumer.close()
truncate_store(settings)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"vmhwm_kib": hwm, "baseline_kib": baseline, "import_peak_kib": import_peak, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "records": result.records, "seconds": seconds}))
"""


@dataclass(frozen=True)
class PeakRss:
    max_events: int
    records: int
    lag: int
    baseline_mib: float
    import_peak_mib: float
    peak_mib: float
    vmhwm_mib: float
    seconds: float

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.baseline_mib


def prepare_lag(settings: Settings, records: list[tuple]) -> int:
    """Put every backlog record in partition 0 of a one-partition topic; return the lag."""
    from pulsemart_bench.ingest import produce_backlog

    recreate_topics(settings, extra={LAG_TOPIC: 1})
    produce_backlog(settings, LAG_TOPIC, records, partition=0)
    return len(records)


def measure(max_events: int, lag: int, timeout_s: float = 900) -> PeakRss:
    # The child inherits PULSEMART_HOME and PULSEMART_KAFKA_PORT: the same temporary stack.
    # `; exit $?` makes sh fork Python rather than exec it (see the module docstring).
    args = [
        "/bin/sh",
        "-c",
        '"$@"; exit $?',
        "sh",
        sys.executable,
        "-c",
        _CHILD,
        LAG_TOPIC,
        str(max_events),
    ]
    # The harness is not installed: the child finds it where this module sits.
    harness = str(Path(__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [harness, os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child (max_events={max_events}) failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    kib = 1024
    return PeakRss(
        max_events,
        out["records"],
        lag,
        out["baseline_kib"] / kib,
        out["import_peak_kib"] / kib,
        out["peak_kib"] / kib,
        out["vmhwm_kib"] / kib,
        out["seconds"],
    )
