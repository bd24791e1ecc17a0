"""Test helpers over the real broker and store: free ports, `pulsemart serve` as a user starts
it, producing raw records byte for byte through kafka-python, and reading a topic back whole."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
from kafka import KafkaConsumer, TopicPartition

from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC
from pulsemart.local.processes import wait_until
from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(key: str, workers: int = 1, **env: str) -> tuple[subprocess.Popen, str]:
    """`pulsemart serve` on a free port with PULSEMART_API_KEY=key (and `env`), and its base URL
    once /health answers; stderr is kept for a failure message."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "pulsemart"), "serve", "--port", str(port)]
        + ["--workers", str(workers)],
        env={**os.environ, "PULSEMART_API_KEY": key, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: healthy(base), 30, "pulsemart serve's /health", interval_s=0.2)
    except BaseException:
        server.kill()
        server.wait(10)
        raise
    return server, base


def healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def produce_raw(
    settings, topic: str, values: list[bytes], keys: list[str | None] | None = None
) -> None:
    keys = keys or [f"k{i % 101}" for i in range(len(values))]
    producer = make_producer(settings)
    try:
        produce_events(
            producer, (ProducedEvent(topic, k, v) for k, v in zip(keys, values, strict=True))
        )
    finally:
        producer.close(timeout=5)


def produce_simulated(settings, events) -> None:
    """Produce the simulator's events byte for byte, catalog first, each with its own key."""
    for topic in (CATALOG_TOPIC, EVENTS_TOPIC):
        chosen = [e for e in events if e.topic == topic]
        if chosen:
            produce_raw(settings, topic, [e.value for e in chosen], keys=[e.key for e in chosen])


def read_topic(settings, topic: str, idle_polls: int = 3) -> list:
    """Every record of `topic`, read until polls come back empty (never trusting end offsets)."""
    consumer = KafkaConsumer(
        **settings.kafka_client_config(), group_id=None, enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records, empty = [], 0
        while empty < idle_polls:
            batch = consumer.poll(timeout_ms=300, max_records=10_000)
            if not batch:
                empty += 1
                continue
            empty = 0
            for chunk in batch.values():
                records.extend(chunk)
        return records
    finally:
        consumer.close()


def stored_triples(conn, topic: str) -> list[tuple]:
    return conn.execute(
        'select topic, "partition", "offset" from raw.events where topic = %s order by 2, 3',
        (topic,),
    ).fetchall()


def topic_triples(records) -> list[tuple]:
    return sorted((r.topic, r.partition, r.offset) for r in records)
