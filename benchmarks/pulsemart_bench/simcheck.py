"""Running produced records through the engine in process, batch after batch, as ingestion
would: the catalog state, the decided ids and the held records are carried across batches.

Used by the tests and to measure the engine against the simulator's truth (`evaluate`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from pulsemart.config import TOPIC_PARTITIONS
from pulsemart.quality.catalog import CatalogState
from pulsemart.quality.engine import RAW_COLUMNS, run_batch
from pulsemart.quality.evaluate import evaluate
from pulsemart.quality.result import EngineResult


def raw_frame(records: Iterable, start_offset: int = 0) -> pd.DataFrame:
    """Raw rows for records with `topic`, `key` (text or None) and `value` (bytes).

    Partitions follow the key (crc32, as a stand-in for the producer's hash); offsets count
    per partition from `start_offset`.
    """
    rows, next_offset = [], {}
    for n, record in enumerate(records):
        key = record.key.encode("utf-8") if isinstance(record.key, str) else record.key
        partitions = TOPIC_PARTITIONS.get(record.topic, 1)
        partition = (zlib.crc32(key) if key else n) % partitions
        offset = next_offset.get((record.topic, partition), start_offset)
        next_offset[(record.topic, partition)] = offset + 1
        rows.append((record.topic, partition, offset, key, record.value))
    return pd.DataFrame(rows, columns=RAW_COLUMNS)


@dataclass
class EngineState:
    """What ingestion carries from one batch to the next: the catalog, the decided event ids
    and the held records."""

    catalog: CatalogState = field(default_factory=CatalogState)
    seen: set = field(default_factory=set)
    pending: pd.DataFrame | None = None

    def decide(self, batch: pd.DataFrame, at, rules=None) -> EngineResult:
        result = run_batch(batch, self.catalog, self.seen, at, self.pending, rules)
        self.catalog, self.pending = result.catalog, result.held
        self.seen.update(result.clean["event_id"])
        self.seen.update(result.quarantine["event_id"].dropna())
        return result

    def copy(self) -> EngineState:
        return EngineState(self.catalog, set(self.seen), self.pending)


def run_stream(
    records: list,
    batch_size: int = 10_000,
    now=None,
    seconds_per_batch: float = 60.0,
    flush_after_s: float = 86_400.0,
    rules=None,
) -> tuple[list[EngineResult], CatalogState]:
    """All records in batches; a last empty batch `flush_after_s` later times out holds."""
    raw = raw_frame(records)
    now = pd.Timestamp(now or pd.Timestamp.now(tz="UTC"))
    state, results = EngineState(), []
    starts = list(range(0, len(raw), batch_size)) + [len(raw)]
    for number, start in enumerate(starts):
        batch = raw.iloc[start : start + batch_size] if start < len(raw) else raw.iloc[0:0]
        at = now + pd.Timedelta(seconds=seconds_per_batch * number)
        if start >= len(raw):
            at += pd.Timedelta(seconds=flush_after_s)
        results.append(state.decide(batch, at, rules))
    return results, state.catalog


def combined(results: list[EngineResult], name: str) -> pd.DataFrame:
    frames = [getattr(r, name) for r in results if len(getattr(r, name))]
    return pd.concat(frames, ignore_index=True) if frames else getattr(results[-1], name)


def evaluate_stream(simulated: list, batch_size: int = 10_000, **kwargs) -> dict:
    """Metrics of `evaluate` for simulated records (SimulatedEvent: topic, key, value, truth)."""
    results, _ = run_stream(simulated, batch_size, **kwargs)
    truth = [s.truth for s in simulated if s.truth]
    metrics = evaluate(
        combined(results, "clean"), combined(results, "quarantine"), results[-1].held, truth
    )
    metrics["conservation_balanced"] = all(r.conservation["balanced"] for r in results)
    return metrics
