"""What logging exposures costs the recommendations route: the same wrk load with
PULSEMART_EXPOSURES off and on, alternated, each beside its own /health anchor.

Data: simulated events folded into the serving tables and a synthetic recommender deployed
(live_serving.deploy_synthetic_recommender), so the route reads the model path. Mix: every
known customer's recommendations and their sessions' (distinct requests, shuffled), as in the
serving section. Each server run is `pulsemart serve` (its default workers, response cache on);
the exposure log's thread, spool and producer live in those processes, so their cost lands on
the measured cores. After the last run the section counts what reached shop.exposures against
the recommendations wrk was answered with exposures on, so a run that logged nothing cannot
pass for free.
"""

from __future__ import annotations

import random
import secrets
import statistics
import subprocess
import time
from dataclasses import dataclass

import psutil

from pulsemart.config import EXPOSURES_TOPIC, Settings
from pulsemart.local import broker
from pulsemart_bench import machine
from pulsemart_bench.ingest import raw_consume
from pulsemart_bench.live_serving import deploy_synthetic_recommender
from pulsemart_bench.report import Section, Table, fmt_int, fmt_ratio
from pulsemart_bench.serving import (
    LoadResult,
    load_data,
    mixes_from_store,
    require_wrk,
    start_server,
    stop,
    wrk,
)
from pulsemart_bench.stack import free_port
from pulsemart_bench.stack_cpu import MachineCpu

TARGET = 0.9  # logging may cost at most 10% of the route's throughput


@dataclass
class Run:
    exposures: bool
    health: LoadResult
    route: LoadResult
    machine_cores: float  # the whole machine's busy cores during the route's run
    api_cores: float  # `pulsemart serve` and its workers
    broker_cores: float  # the embedded broker (exposures are produced to it)

    @property
    def rate(self) -> float:
        return self.route.answered / self.route.seconds

    @property
    def health_rate(self) -> float:
        return self.health.answered / self.health.seconds


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def _measured_cores(
    server: subprocess.Popen, broker_pid: int, run
) -> tuple[LoadResult, float, float, float]:
    """`run()` with the busy cores of the machine, of the API's processes and of the broker."""
    api = [server.pid, *(c.pid for c in psutil.Process(server.pid).children(recursive=True))]
    api_before, broker_before = _cpu_seconds(api), _cpu_seconds([broker_pid])
    machine_cpu, started = MachineCpu(), time.monotonic()
    result = run()
    elapsed = time.monotonic() - started
    return (
        result,
        machine_cpu.cores(),
        (_cpu_seconds(api) - api_before) / elapsed,
        (_cpu_seconds([broker_pid]) - broker_before) / elapsed,
    )


@dataclass
class Measured:
    runs: list[Run]
    distinct: int  # requests in the mix
    on_topic: int  # exposures on the topic after the last run
    answered_on: int  # recommendations wrk was answered while exposures were on


def measure(
    settings: Settings, events: int, connections: int, seconds: float, rounds: int, seed: int, echo
) -> Measured:
    """`rounds` pairs of server runs, exposures off then on."""
    require_wrk()
    load_data(settings, events, seed)
    deploy_synthetic_recommender(settings)
    _, recs, sessions = mixes_from_store(settings, seed, n=2000)
    mix = recs + sessions
    random.Random(seed).shuffle(mix)
    key = secrets.token_urlsafe(24)
    runs, answered_on = [], 0
    for round_ in range(rounds):
        for exposures in (False, True):
            echo(f"  round {round_ + 1}/{rounds}, exposures {'on' if exposures else 'off'}")
            port = free_port()
            server = start_server(
                settings, key, port, env={"PULSEMART_EXPOSURES": "true" if exposures else "false"}
            )
            base = f"http://127.0.0.1:{port}"
            try:
                health = wrk(base, key, "GET /health", [("/health", {})], connections, seconds)
                route, machine_cores, api_cores, broker_cores = _measured_cores(
                    server,
                    broker.status(settings)["pid"],
                    lambda base=base: wrk(
                        base, key, "recommendations", mix, connections, seconds, warmup_s=0
                    ),
                )
            finally:
                stop(server)
            runs.append(Run(exposures, health, route, machine_cores, api_cores, broker_cores))
            if exposures:
                answered_on += route.answered
    return Measured(runs, len(mix), raw_consume(settings, EXPOSURES_TOPIC)[0].count, answered_on)


def section(
    settings: Settings,
    command: str,
    events: int,
    connections: int,
    seconds: float,
    rounds: int,
    seed: int,
    echo,
) -> Section:
    measured = measure(settings, events, connections, seconds, rounds, seed, echo)
    runs = measured.runs
    table = Table(
        [
            "Round",
            "Exposures",
            "recommendations req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "/health req/s (anchor)",
            "÷ /health",
            "machine cores",
            "API cores",
            "broker cores",
        ]
    )
    for i, run in enumerate(runs):
        table.rows.append(
            [
                str(i // 2 + 1),
                "on" if run.exposures else "off",
                fmt_int(run.rate),
                f"{run.route.p50_s * 1000:.1f}",
                f"{run.route.p99_s * 1000:.1f}",
                str(run.route.errors + run.route.failures),
                fmt_int(run.health_rate),
                fmt_ratio(run.rate / run.health_rate),
                f"{run.machine_cores:.2f}",
                f"{run.api_cores:.2f}",
                f"{run.broker_cores:.2f}",
            ]
        )
    pairs = list(zip(runs[0::2], runs[1::2], strict=True))  # (off, on) of each round
    raw = [on.rate / off.rate for off, on in pairs]
    anchored = [(on.rate / on.health_rate) / (off.rate / off.health_rate) for off, on in pairs]
    cost = statistics.median(anchored)
    verdict = "met" if cost >= TARGET else "NOT met"
    return Section(
        key="exposures",
        title="Exposures: the recommendations route with the exposure log off and on",
        command=command,
        date=machine.now(),
        machine=machine.describe(),
        intro=__doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
        tables=[table],
        notes=[
            (
                f"Load: wrk, {connections} keep-alive connections, {seconds:g} s per run (the /health "
                f"anchor with a 3 s warm-up first, then the mix of {fmt_int(measured.distinct)} "
                "requests with none), against 127.0.0.1; rounds alternate off and on so drift of the "
                f"shared machine falls on both. Data: {fmt_int(events)} simulated events folded first. "
                "Cores are CPU seconds per second over the route's run: the whole machine (wrk and "
                "PostgreSQL included), `pulsemart serve` with its workers, and the embedded broker, "
                "which shares this machine's two cores here and would not in production."
            ),
            (
                "Throughput with exposures on ÷ off, per round, each run first divided by its "
                f"own /health: {', '.join(f'{r:.2f}' for r in anchored)} (median "
                f"{fmt_ratio(cost)}); the same without the anchor: "
                f"{', '.join(f'{r:.2f}' for r in raw)} (median {statistics.median(raw):.2f}). "
                f"Target ≥ {TARGET:g} (logging costs at most 10%), judged on the anchored median: "
                f"{verdict}. The spread between rounds is the shared machine's: read the target "
                "as met only where both medians agree."
            ),
            (
                f"Accounted for: {fmt_int(measured.on_topic)} exposures on {EXPOSURES_TOPIC} for "
                f"{fmt_int(measured.answered_on)} recommendations wrk counted in the 'on' runs (the "
                "server may also answer requests wrk abandons at the end of a run, and a re-send "
                "after a timed-out acknowledgement shows as one more; fewer would be a loss)."
            ),
        ],
    )
