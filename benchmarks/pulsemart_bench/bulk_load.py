"""A datamart build right after a bulk load, beside the same build on freshly analyzed tables.

The user's situation: a Kappa reset empties the clean layer by DELETE, autovacuum analyzes the
empty tables (the planner now believes they hold no rows, at any size), and a replay of the
whole Online Retail extract refills them; the datamart build starts as soon as the replay is
decided. Its plans are made on whatever statistics the load left. The anchor is the same build
after an explicit ANALYZE of every source table, so the ratio shows what stale statistics cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC, Settings
from pulsemart.datamart.pii import apply_pii_key
from pulsemart.datamart.run import run_dbt
from pulsemart.store.db import connect_migrated
from pulsemart.stream.producer import make_producer, produce_events
from pulsemart.stream.replay import replay_events
from pulsemart_bench.measure import Measurement
from pulsemart_bench.stack import recreate_topics, truncate_store

TOPICS = [CATALOG_TOPIC, EVENTS_TOPIC]
SOURCES = [
    ("raw", "events"),
    ("quality", "events_clean"),
    ("quality", "order_lines_clean"),
    ("quality", "quarantine"),
]
MART_SCHEMAS = ("marts", "snapshots", "staging", "intermediate")


@dataclass(frozen=True)
class BulkLoadBench:
    replay: Measurement  # the replay after the reset: land and decide
    build_after_load: Measurement
    build_analyzed: Measurement
    lines: int


def _drop_marts(settings: Settings) -> None:
    with connect_migrated(settings) as conn:
        for schema in MART_SCHEMAS:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
        conn.commit()


def _empty_and_analyze(settings: Settings) -> None:
    """What a Kappa reset leaves: rows deleted (the pages stay), then analyzed while empty."""
    from pulsemart.stream.rewind import reset_to_earliest

    with connect_migrated(settings) as conn:
        for topic in TOPICS:
            reset_to_earliest(conn, settings, topic)
        conn.autocommit = True
        for table in SOURCES:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(*table)))


def _build(settings: Settings, name: str, lines: int) -> Measurement:
    started = time.perf_counter()
    run_dbt(settings, ["build"], capture=True)
    return Measurement(name, lines, 0, time.perf_counter() - started, "lines")


def run(settings: Settings, path: Path, echo) -> BulkLoadBench:
    from orchestration.catch_up import catch_up
    from orchestration.streaming import defs

    recreate_topics(settings)
    truncate_store(settings)
    _drop_marts(settings)
    with connect_migrated(settings) as conn:
        apply_pii_key(conn, settings.pii_key)
        conn.commit()
    echo(f"  replaying {path.name} to Kafka and landing it once")
    producer = make_producer(settings)
    try:
        produce_events(producer, replay_events(path), flush_timeout_s=300)
    finally:
        producer.close(timeout=10)
    catch_up(settings, defs, TOPICS)
    echo("  Kappa reset (DELETE), ANALYZE while empty, replay from earliest")
    _empty_and_analyze(settings)
    started = time.perf_counter()
    report = catch_up(settings, defs, TOPICS)
    replay = Measurement(
        "replay from earliest: land and decide (catch_up)",
        report.records,
        report.bytes,
        time.perf_counter() - started,
        "records",
    )
    with connect_migrated(settings) as conn:
        (lines,) = conn.execute("select count(*) from quality.order_lines_clean").fetchone()
    echo("  dbt build at once, on the statistics the load left")
    after_load = _build(settings, "dbt build right after the replay", lines)
    _drop_marts(settings)
    with connect_migrated(settings) as conn:
        conn.autocommit = True
        for table in SOURCES:
            conn.execute(sql.SQL("analyze {}").format(sql.Identifier(*table)))
    echo("  dbt build on analyzed tables (anchor)")
    analyzed = _build(settings, "dbt build after ANALYZE of every source (anchor)", lines)
    return BulkLoadBench(replay, after_load, analyzed, lines)
