"""Where the API's CPU goes under load: py-spy samples `pulsemart serve` and its uvicorn
workers, and each sample is charged to the innermost frame that names a layer (`LAYERS`).

py-spy leaves out samples of a thread that is idle (blocked in `select` and the like), so the
shares are of the time a worker computes, not of the wall clock.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

# (layer, substrings of a frame "function (file:line)"); the first layer named by the innermost
# frame that names any wins, so a psycopg call made from the blend is psycopg's.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("psycopg: sending queries, waiting, decoding rows", ("psycopg",)),
    ("orjson: encoding the answer", ("orjson", "json_body")),
    ("the response cache", ("pulsemart/serving/cache.py",)),
    ("the blend and its answer (Python)", ("pulsemart/ml_store/", "pulsemart/serving/personal.py")),
    ("other pulsemart code", ("pulsemart/",)),
    ("pydantic: validating parameters", ("pydantic",)),
    ("FastAPI and Starlette: routing, dependencies", ("fastapi", "starlette")),
    ("uvicorn and httptools: HTTP and the socket", ("uvicorn", "httptools", "h11")),
    ("asyncio: the event loop", ("asyncio",)),
)
OTHER = "other (interpreter, logging, libraries)"


@dataclass
class Profile:
    samples: int
    shares: list[tuple[str, float]]  # layer, share of the samples, largest first
    path: Path


def py_spy() -> str | None:
    """The py-spy beside this interpreter (the dev extras install it), or one on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def serve_process(up_pid: int) -> int | None:
    """The `pulsemart serve` process among `pulsemart up`'s descendants."""
    for child in psutil.Process(up_pid).children(recursive=True):
        try:
            line = child.cmdline()
        except psutil.Error:
            continue
        if "serve" in line and any("pulsemart" in part for part in line):
            return child.pid
    return None


def start(pid: int, seconds: float, out: Path, rate_hz: int = 100) -> subprocess.Popen:
    """py-spy recording `pid` and its subprocesses for `seconds`, collapsed stacks to `out`;
    `--nonblocking`, so the sampled processes are never paused."""
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed: `make install` installs it (dev extras)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--format", "raw"]
        + ["--rate", str(rate_hz), "--duration", f"{max(1, round(seconds))}", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def layer_of(stack: list[str]) -> str:
    """The layer of one sample's frames (outermost first)."""
    for frame in reversed(stack):
        if frame.startswith("process "):  # py-spy's line for the process: its command line
            continue
        for layer, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return layer
    return OTHER


def summarize(path: Path) -> Profile:
    """The shares of each layer in py-spy's raw output (one `frame;frame;... count` a line)."""
    counts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[layer_of(stack.split(";"))] += int(count)
    total = sum(counts.values())
    shares = [(layer, n / total) for layer, n in counts.most_common()] if total else []
    return Profile(total, shares, path)


__all__ = [
    "LAYERS",
    "OTHER",
    "Profile",
    "layer_of",
    "py_spy",
    "serve_process",
    "start",
    "summarize",
]
