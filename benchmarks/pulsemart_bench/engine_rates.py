"""Measurements for the closing note and `pulsemart bench`: engine vs bare Pandera rates on
the same frames, simulator metrics, and the real sample's quarantine figures.

    PYTHONPATH=benchmarks python -m pulsemart_bench.engine_rates sim 200000   # the simulator
    PYTHONPATH=benchmarks python -m pulsemart_bench.engine_rates real PATH    # a real file
    PYTHONPATH=benchmarks python -m pulsemart_bench.engine_rates sizes        # cost per batch size

Figures are measured, never asserted; they depend on the machine.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import pandas as pd
import pandera.errors as pa_errors

from pulsemart.contracts import (
    CONTRACTS,
    events_frame,
    order_lines_frame,
    order_lines_schema,
    pandera_schema,
)
from pulsemart.quality.lines import quarantined_lines
from pulsemart_bench.simcheck import EngineState, combined, raw_frame


def contract_frames(values) -> list:
    """The frames bare Pandera validates for one batch: decoded events per type and their
    order lines (contract columns only, as the engine validates them)."""
    by_type: dict[str, list] = {}
    for value in values:
        try:
            event = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(event, dict) and event.get("event_type") in CONTRACTS:
            by_type.setdefault(event["event_type"], []).append(event)
    frames = [(pandera_schema(t), events_frame(es)) for t, es in by_type.items()]
    for t in ("order_placed", "order_cancelled"):
        if t in by_type:
            lines = order_lines_frame(by_type[t])
            names = ["event_id", *(spec.name for spec in CONTRACTS[t].line_fields)]
            frames.append((order_lines_schema(t), lines[[c for c in names if c in lines]]))
    return frames


def rates(records: list, batch_size: int = 10_000) -> tuple[dict, list]:
    """Per batch, bare Pandera then the engine, timed alternately so that a busy machine
    slows both alike; rates are events per second over all batches."""
    raw = raw_frame(records)
    now = pd.Timestamp("2026-11-26", tz="UTC")
    state, results = EngineState(), []
    bare = engine = 0.0
    for start in range(0, len(raw), batch_size):
        batch = raw.iloc[start : start + batch_size]
        frames = contract_frames(batch["value"])
        began = time.perf_counter()
        for schema, frame in frames:
            try:
                schema.validate(frame, lazy=True)
            except (pa_errors.SchemaErrors, pa_errors.SchemaError):
                pass
        bare += time.perf_counter() - began
        began = time.perf_counter()
        result = state.decide(batch, now)
        engine += time.perf_counter() - began
        results.append(result)
    n = len(raw)
    return {
        "events": n,
        "batch_size": batch_size,
        "bare_pandera_events_per_s": round(n / bare),
        "engine_events_per_s": round(n / engine),
        "ratio": round(bare / engine, 3),
    }, results


def batch_costs(records: list, sizes=(5, 10, 20, 50, 200, 1000, 5000), warm: int = 2000):
    """The engine's time per batch and per event at each batch size, over the same records
    after `warm` of them taught it the catalog: what a micro-batch pays whatever its size."""
    raw = raw_frame(records)
    now = pd.Timestamp("2026-11-26", tz="UTC")
    warmed = EngineState()
    warmed.decide(raw.iloc[:warm], now)
    rows = []
    for size in sizes:
        state = warmed.copy()
        body = raw.iloc[warm : warm + max(20 * size, 5_000)]
        batches, began = 0, time.perf_counter()
        for start in range(0, len(body), size):
            state.decide(body.iloc[start : start + size], now)
            batches += 1
        seconds = time.perf_counter() - began
        rows.append(
            {
                "batch_size": size,
                "ms_per_batch": round(seconds / batches * 1000, 1),
                "ms_per_event": round(seconds / len(body) * 1000, 3),
            }
        )
    return rows


def real_summary(results: list) -> dict:
    clean, quarantine = combined(results, "clean"), combined(results, "quarantine")
    released, held_back = combined(results, "order_lines"), quarantined_lines(quarantine)
    line_ids = pd.concat([released["line_id"], held_back["line_id"]])
    reasons = Counter(r for text in quarantine["reasons"] for r in json.loads(text))
    total = len(clean) + len(quarantine) + len(results[-1].held)
    return {
        "lines": len(line_ids),
        "lines_unique": bool(line_ids.is_unique),
        "quarantine_rate": round(len(quarantine) / total, 4),
        "quarantined_by_type": quarantine["event_type"].value_counts().to_dict(),
        "top_reasons": reasons.most_common(8),
    }


def main(argv: list[str]) -> None:
    if argv[:1] == ["sizes"]:
        from pulsemart.stream.simulator import generate

        print(json.dumps(batch_costs(list(generate(102_000, seed=1, dirty_rate=0.02))), indent=1))
        return
    if argv[:1] == ["real"]:
        from pulsemart.stream.replay import replay_events

        figures, results = rates(list(replay_events(argv[1])))
        figures.update(real_summary(results))
    else:
        from pulsemart.stream.simulator import generate
        from pulsemart_bench.simcheck import evaluate_stream

        simulated = list(
            generate(int(argv[1]) if len(argv) > 1 else 50_000, seed=1, dirty_rate=0.1)
        )
        figures, _ = rates(simulated)
        figures.update(evaluate_stream(simulated, now="2026-11-26T00:00:00Z"))
    print(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main(sys.argv[1:])
