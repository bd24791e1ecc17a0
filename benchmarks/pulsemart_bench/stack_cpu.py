"""CPU used by a whole local stack: `pulsemart up`'s process tree plus the servers started for
its home (PostgreSQL detaches from the tree), in cores (CPU seconds per wall second).

Each process counts its own time and that of the children it has reaped, so short-lived
Dagster run processes count too once their parent has waited for them.
"""

from __future__ import annotations

import time

import psutil


def _processes(root_pid: int, home: str) -> list[psutil.Process]:
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(root_pid)
        for process in [root, *root.children(recursive=True)]:
            found[process.pid] = process
    except psutil.NoSuchProcess:
        pass
    for process in psutil.process_iter(["cmdline"]):
        if home in " ".join(process.info["cmdline"] or []):
            found.setdefault(process.pid, process)
    return list(found.values())


def _seconds(processes: list[psutil.Process]) -> dict[int, float]:
    total = {}
    for process in processes:
        try:
            t = process.cpu_times()
            total[process.pid] = t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            continue
    return total


class StackCpu:
    """Started at construction; `cores()` gives the average since then."""

    def __init__(self, root_pid: int, home: str):
        self.root_pid, self.home = root_pid, home
        self.started = time.monotonic()
        self.before = _seconds(_processes(root_pid, home))

    def cores(self) -> float:
        after = _seconds(_processes(self.root_pid, self.home))
        # A process born during the window counts from zero; one that died is in its parent.
        used = sum(seconds - self.before.get(pid, 0.0) for pid, seconds in after.items())
        return used / (time.monotonic() - self.started)
