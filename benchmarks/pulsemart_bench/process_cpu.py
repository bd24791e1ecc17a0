"""Which processes a machine's busy cores went to over a window: the serving API, PostgreSQL,
the real-time worker, the broker, Dagster and the load generator.

A sample of every process's CPU times at the start and at the end; each process is given a role
by its name and command line. The load generator (wrk) runs as this process's child and has
exited by the end, so its share is this process's children's CPU over the window. What the
roles do not account for (processes that began and ended inside the window, such as a Dagster
run, and the kernel's own work) is the machine's busy time less their sum (`stack_cpu.py`).
"""

from __future__ import annotations

import os
import time

import psutil

from pulsemart_bench.stack_cpu import busy_cpu_seconds

UNACCOUNTED = "other (processes that ended within the window, the kernel)"
LOAD = "load generator (wrk)"


def role(name: str, command: str) -> str:
    """The stack's part a process plays, from its name and command line."""
    if name.startswith("postgres"):
        return "PostgreSQL (server and backends)"
    if "tansu" in command:
        return "broker (Tansu)"
    # uvicorn starts its workers with multiprocessing's spawn: their command line is Python's.
    if "pulsemart serve" in command or "spawn_main" in command:
        return "serving API (uvicorn workers)"
    if "pulsemart stream" in command:
        return "real-time worker"
    if "pulsemart simulate" in command:
        return "simulator (trickle)"
    if "dagster" in command:
        return "Dagster (webserver, daemon, code servers, runs)"
    if "dbt" in command:
        return "dbt (a datamart run)"
    return "other processes"


def _sample() -> dict[int, tuple[str, float]]:
    out = {}
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            times = process.cpu_times()
            command = " ".join(process.info["cmdline"] or ())
            out[process.pid] = (
                role(process.info["name"] or "", command),
                times.user + times.system,
            )
        except psutil.Error:
            continue
    return out


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


class ProcessCpu:
    """Started at construction; `cores()` gives each role's busy cores since then."""

    def __init__(self):
        self.started = time.monotonic()
        self.machine = busy_cpu_seconds()
        self.children = _children_cpu()
        self.before = _sample()

    def cores(self) -> dict[str, float]:
        after = _sample()
        seconds = time.monotonic() - self.started
        spent: dict[str, float] = {}
        for pid, (name, cpu) in after.items():
            if pid == os.getpid():
                continue
            earlier = self.before.get(pid)
            # A pid seen twice is the same process only if it did not go backwards in CPU.
            used = cpu - earlier[1] if earlier and earlier[1] <= cpu else cpu
            spent[name] = spent.get(name, 0.0) + used
        spent[LOAD] = _children_cpu() - self.children
        machine = busy_cpu_seconds() - self.machine
        spent[UNACCOUNTED] = max(0.0, machine - sum(spent.values()))
        return {
            name: used / seconds
            for name, used in sorted(spent.items(), key=lambda item: -item[1])
            if used / seconds >= 0.005
        }
