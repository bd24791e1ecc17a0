"""`bench locations`: what loading each Dagster code location costs, beside a bare
`import dagster` measured in the same rounds, and optionally the sensor lane's latency under
`pulsemart up --rate 0` (benchmarks/pulsemart_bench/latency.py).

Every run of a location starts a fresh process that imports the location's module before it
does any work, so this import is paid once per sensor-lane batch. Each figure is the wall time
of a fresh interpreter running one import statement, started from this process (the measured
imports never share its interpreter). Rounds interleave the targets, so a busy machine slows
them alike; medians are compared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

TARGETS = (
    ("interpreter start (`pass`)", "pass"),
    ("bare `import dagster` (anchor)", "import dagster"),
    ("streaming location", "import orchestration.streaming"),
    ("analytics location", "import orchestration.analytics"),
    (
        "both locations in one process, as the single location was",
        "import orchestration.definitions",
    ),
)
ANCHOR = "import dagster"


@dataclass(frozen=True)
class ImportTime:
    name: str
    statement: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _once(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def import_times(rounds: int) -> list[ImportTime]:
    for _, statement in TARGETS:  # warm the file system cache before timing anything
        _once(statement)
    samples: dict[str, list[float]] = {statement: [] for _, statement in TARGETS}
    for _ in range(rounds):
        for _, statement in TARGETS:
            samples[statement].append(_once(statement))
    return [ImportTime(name, statement, samples[statement]) for name, statement in TARGETS]


def section(settings, command: str, rounds: int, latency_seconds: float, latency_rate: float, echo):
    from pulsemart_bench import latency, machine
    from pulsemart_bench.report import Section, Table
    from pulsemart_bench.sections import latency_table

    echo(f"bench locations: {rounds} interleaved rounds of {len(TARGETS)} fresh interpreters")
    times = import_times(rounds)
    anchor = next(t for t in times if t.statement == ANCHOR)
    start = next(t for t in times if t.statement == "pass")
    table = Table(
        [
            "Import",
            "Rounds",
            "median s",
            "min s",
            "max s",
            "Ratio to anchor (median)",
            "Ratio, interpreter start taken off",
        ]
    )
    for t in times:
        net = (t.median - start.median) / (anchor.median - start.median) if t is not start else None
        table.rows.append(
            [
                t.name,
                str(len(t.seconds)),
                f"{t.median:.2f}",
                f"{min(t.seconds):.2f}",
                f"{max(t.seconds):.2f}",
                f"{t.median / anchor.median:.2f}×",
                f"{net:.2f}×" if net is not None else "—",
            ]
        )
    tables, notes = (
        [table],
        [
            (
                "Each figure: wall time of `python -c '<import>'` in a fresh interpreter started by the "
                "benchmark, after one unmeasured warm-up of each; rounds interleave the targets."
            ),
            "Target: the streaming location at most 1.3× the bare `import dagster`.",
        ],
    )
    if latency_seconds > 0:
        echo(f"  latency under pulsemart up: {latency_rate:g} events/s for {latency_seconds:g} s")
        result = latency.measure(settings, latency_seconds, latency_rate)
        tables.append(latency_table(result))
        notes.append(
            f"Latency: {result.produced} events at {result.rate:g}/s through `pulsemart up "
            f"--rate 0 --stream-workers 0` (the sensor lane: each ingest run is a process that "
            f"loads the streaming location); {result.seen} seen in {len(result.batch_s)} "
            f"ingest batches. The target is the sensor lane's own (the real-time lane is "
            f"measured in its section); the machine's load average is above."
        )
    return Section(
        key="locations",
        title="Code locations: import time of each, beside a bare import dagster",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=(
            "A run of a code location begins by importing it. workspace.yaml loads two: "
            "`streaming` (ingest, quality, serving) and `analytics` (datamart, ML)."
        ),
        tables=tables,
        notes=notes,
    )
