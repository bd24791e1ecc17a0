"""The stack's CPU figure counts the whole machine: a process outside any process tree the bench
knows of (the broker, PostgreSQL's backends) still shows in it."""

from __future__ import annotations

import resource
import subprocess
import sys
import time

from pulsemart_bench.stack_cpu import MachineCpu, busy_cpu_seconds

# Burns one CPU second of its own, however long a busy machine makes that take.
BUSY_LOOP = (
    "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end:\n    pass\n"
)


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_the_machine_measure_sees_cpu_burned_by_an_unrelated_process():
    before = _children_cpu_seconds()
    cpu = MachineCpu()
    subprocess.run(
        [sys.executable, "-c", BUSY_LOOP], check=True, timeout=60, start_new_session=True
    )
    cores = cpu.cores()
    busy = cores * (time.monotonic() - cpu.started)
    burned = _children_cpu_seconds() - before
    assert burned >= 0.9  # the loop did burn its second
    assert busy >= 0.9 * burned, (busy, burned)


def test_busy_seconds_never_go_backwards():
    first = busy_cpu_seconds()
    time.sleep(0.05)
    assert busy_cpu_seconds() >= first > 0
