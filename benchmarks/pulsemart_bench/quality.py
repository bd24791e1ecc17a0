"""The rule engine beside bare Pandera on the same frames, and the simulator's scores.

The anchor is the contracts' derived Pandera schemas validating, lazily, exactly the frames
the engine validates; the engine then does that and everything else (parse, detect, repair,
score, decide, explain). Both are timed batch by batch, alternately, so a busy machine slows
both alike.
"""

from __future__ import annotations

from pathlib import Path

from pulsemart_bench.measure import Measurement


def engine_vs_pandera(
    label: str, records: list, batch_size: int = 10_000
) -> tuple[Measurement, Measurement, list]:
    from pulsemart_bench.engine_rates import rates

    figures, results = rates(records, batch_size)
    n = figures["events"]
    bare = Measurement(
        f"anchor: bare Pandera, lazy validation of the contract frames ({label})",
        n,
        0,
        n / figures["bare_pandera_events_per_s"],
    )
    engine = Measurement(
        f"rule engine: parse, detect, repair, score, decide, validate ({label})",
        n,
        0,
        n / figures["engine_events_per_s"],
    )
    return bare, engine, results


def simulated(n_events: int, seed: int) -> list:
    from pulsemart.stream.simulator import generate

    return list(generate(n_events, seed=seed, dirty_rate=0.1))


def replayed(path: Path) -> list:
    from pulsemart.stream.replay import replay_events

    return list(replay_events(path))


def simulator_scores(records: list) -> dict:
    from pulsemart_bench.simcheck import evaluate_stream

    return evaluate_stream(records, now="2026-11-26T00:00:00Z")
