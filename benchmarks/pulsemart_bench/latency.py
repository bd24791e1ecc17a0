"""End-to-end latency under `pulsemart up`: produce → sensor → run → row visible in raw.events.

Each record's Kafka timestamp is its produce time (kafka-python stamps CreateTime at `send`).
The row's latency is the moment a poll of raw.events first sees it (the commit made it
visible) minus that timestamp; `ingested_at` is also reported, but it is PostgreSQL's
transaction start, before the read, so it understates what a reader waits.
`pulsemart up` stops the embedded services when it exits, so this runs last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pulsemart.config import EVENTS_TOPIC, Settings
from pulsemart.local.processes import port_in_use, wait_until
from pulsemart.store.db import connect_migrated
from pulsemart.stream.producer import ProducedEvent, ProduceError, make_producer, produce_events
from pulsemart_bench.stack import free_port, recreate_topics, truncate_store

POLL_S = 0.2


@dataclass
class LatencyResult:
    produced: int
    seen: int
    visible_s: list[float]
    ingested_s: list[float]
    batch_s: list[float]  # how long each ingest batch held its transaction open
    rate: float
    seconds: float


def _pulsemart_up(settings: Settings, ui_port: int) -> subprocess.Popen:
    exe = str(Path(sys.executable).parent / "pulsemart")
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copy of the descriptor, so ours can close at once.
    with open(settings.run_dir / "bench-up.log", "ab") as log:
        # No real-time worker: this measures the sensor lane (`bench realtime` measures the other).
        return subprocess.Popen(
            [
                exe,
                "up",
                "--rate",
                "0",
                "--stream-workers",
                "0",
                "--ui-port",
                str(ui_port),
                "--api-port",
                str(free_port()),
            ],
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _new_rows(conn, seen_batches: set[int]) -> list[tuple]:
    """Rows of batches not seen before: (batch_id, kafka_timestamp epoch s, ingested_at epoch s)."""
    rows = conn.execute(
        "select batch_id, extract(epoch from kafka_timestamp)::float8, extract(epoch from ingested_at)::float8 "
        "from raw.events where topic = %s and not (batch_id = any(%s))",
        (EVENTS_TOPIC, list(seen_batches)),
    ).fetchall()
    conn.rollback()  # end the snapshot so the next poll sees newly committed batches
    return rows


def _trickle(n: int, payload: bytes):
    for i in range(n):
        yield ProducedEvent(EVENTS_TOPIC, f"latency-{i % 97}", payload)


def _produce_into(producer, n: int, payload: bytes, rate: float, failures: list) -> None:
    try:
        produce_events(producer, _trickle(n, payload), rate=rate)
    except ProduceError as exc:  # handed to the main thread, which raises it
        failures.append(exc)


def _collect(conn, seen: set[int], until: float, want: int, visible: list, ingested: list) -> None:
    while len(visible) < want and time.time() < until:
        now = time.time()
        for batch_id, kafka_ts, ingested_at in _new_rows(conn, seen):
            seen.add(batch_id)
            visible.append(now - kafka_ts)
            ingested.append(ingested_at - kafka_ts)
        time.sleep(POLL_S)


def measure(
    settings: Settings, seconds: float, rate: float, startup_timeout_s: float = 240
) -> LatencyResult:
    recreate_topics(settings)
    truncate_store(settings)
    ui_port = free_port()
    up = _pulsemart_up(settings, ui_port)
    payload = b'{"event_id":"latency-probe","event_type":"product_viewed","schema_version":"1"}'
    try:
        wait_until(
            lambda: port_in_use("127.0.0.1", ui_port) or up.poll() is not None,
            startup_timeout_s,
            "pulsemart up's Dagster UI",
        )
        if up.poll() is not None:
            raise RuntimeError(f"pulsemart up exited; see {settings.run_dir / 'bench-up.log'}")
        producer = make_producer(settings)
        with connect_migrated(settings) as conn:
            # Warm-up: the first sensor tick and first run pay code loading once; not latency.
            seen: set[int] = set()
            produce_events(producer, _trickle(8, payload))
            warm_v: list = []
            _collect(conn, seen, time.time() + startup_timeout_s, 8, warm_v, [])
            warm_batches = set(seen)
            n = int(seconds * rate)
            visible: list[float] = []
            ingested: list[float] = []
            started = time.time()
            # Produce from a thread and poll from this one: a row's visibility is only observed
            # while polling, so polling after the trickle would measure the trickle's length.
            failures: list[ProduceError] = []
            producing = threading.Thread(
                target=_produce_into, args=(producer, n, payload, rate, failures)
            )
            producing.start()
            _collect(conn, seen, started + seconds + 120, n, visible, ingested)
            producing.join()
            if failures:
                raise failures[0]
            batch_s = [
                row[0]
                for row in conn.execute(
                    # read + write seconds, not finished_at - started_at: finished_at defaults to now(),
                    # which is the transaction's start, so that difference is always about zero.
                    "select read_seconds + write_seconds from ingest.batches "
                    "where topic = %s and not (batch_id = any(%s))",
                    (EVENTS_TOPIC, list(warm_batches)),
                ).fetchall()
            ]
        producer.close(timeout=5)
        return LatencyResult(
            n, len(visible), visible, ingested, batch_s, rate, time.time() - started
        )
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGINT)  # `pulsemart up` stops Dagster and the services itself
            try:
                up.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, signal.SIGKILL)
