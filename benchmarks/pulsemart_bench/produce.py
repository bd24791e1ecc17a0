"""`bench produce`: simulate and replay produce rates beside bare kafka-python on the same bytes.

The anchor is the floor under `produce_events`: the same producer settings (`make_producer`),
the same records already in memory as (topic, key bytes, value bytes), a bare `send` loop
and one `flush`. Producers are built before the clock starts in every case, so connection
set-up is never part of a rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pulsemart.config import Settings
from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events
from pulsemart.stream.replay import replay_events
from pulsemart.stream.simulator import generate
from pulsemart_bench.measure import Measurement, timed
from pulsemart_bench.stack import recreate_topics

# The real Online Retail extract the tests replay, committed with the repository (tests/data),
# found from this file so that `pulsemart bench` reads it from any working directory.
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_REPLAY_PATH = REPOSITORY / "tests" / "data" / "online_retail_sample.parquet"


def payload_bytes(events: Iterable[ProducedEvent]) -> int:
    """Bytes a producer is asked to carry: value plus key (encoded as produce_events does)."""
    return sum(len(e.value) + (len(e.key.encode()) if e.key is not None else 0) for e in events)


def simulated(n_events: int, seed: int) -> list[ProducedEvent]:
    return [ProducedEvent(e.topic, e.key, e.value) for e in generate(n_events, seed)]


def bare_produce(settings: Settings, name: str, events: list[ProducedEvent]) -> Measurement:
    """The anchor: kafka-python alone, keys pre-encoded, no callbacks, no pacing."""
    records = [(e.topic, e.key.encode() if e.key is not None else None, e.value) for e in events]
    recreate_topics(settings)
    producer = make_producer(settings)
    try:
        with timed() as watch:
            for topic, key, value in records:
                producer.send(topic, key=key, value=value)
            producer.flush(timeout=120)
    finally:
        producer.close(timeout=10)
    return Measurement(name, len(records), payload_bytes(events), watch.seconds)


def pipeline_produce(
    settings: Settings, name: str, events: Iterable[ProducedEvent], count: int, size: int
) -> Measurement:
    """`produce_events` as the CLI uses it, over `events` (a generator: its work is timed)."""
    recreate_topics(settings)
    producer = make_producer(settings)
    try:
        with timed() as watch:
            produced = produce_events(producer, events, flush_timeout_s=120)
    finally:
        producer.close(timeout=10)
    if produced != count:
        raise RuntimeError(f"{name}: produced {produced} events, expected {count}")
    return Measurement(name, produced, size, watch.seconds)


def run(
    settings: Settings, n_events: int, seed: int, replay_path: Path
) -> list[tuple[Measurement, Measurement | None]]:
    """(measurement, anchor) pairs, anchors included as their own rows first."""
    with timed() as gen_watch:
        sim = simulated(n_events, seed)
    sim_bytes = payload_bytes(sim)
    generation = Measurement(
        "simulator generation only (no Kafka)", len(sim), sim_bytes, gen_watch.seconds
    )
    sim_anchor = bare_produce(settings, "anchor: bare kafka-python producer, simulated bytes", sim)
    sim_listed = pipeline_produce(
        settings, "produce_events, pre-generated simulated list", iter(sim), len(sim), sim_bytes
    )
    sim_live = pipeline_produce(
        settings,
        "simulate: generate + produce_events",
        (ProducedEvent(e.topic, e.key, e.value) for e in generate(n_events, seed)),
        len(sim),
        sim_bytes,
    )
    del sim

    replay = list(replay_events(replay_path))
    replay_bytes = payload_bytes(replay)
    replay_anchor = bare_produce(
        settings, "anchor: bare kafka-python producer, replay bytes", replay
    )
    replay_live = pipeline_produce(
        settings,
        f"replay {replay_path.name}: read + build + produce_events",
        replay_events(replay_path),
        len(replay),
        replay_bytes,
    )
    return [
        (generation, None),
        (sim_anchor, None),
        (sim_listed, sim_anchor),
        (sim_live, sim_anchor),
        (replay_anchor, None),
        (replay_live, replay_anchor),
    ]
