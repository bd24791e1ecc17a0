"""The embedded stack for integration tests: a real PostgreSQL and a real Kafka-protocol
broker, started once per session in a temporary PULSEMART_HOME on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from pulsemart.config import TOPIC_PARTITIONS, load_settings
from pulsemart.local import stack
from pulsemart.store.db import connect_migrated

pytestmark = pytest.mark.integration

_CLEARED = ("PULSEMART_DATABASE_URL", "PULSEMART_KAFKA_BOOTSTRAP", "DAGSTER_HOME")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def settings():
    saved = {name: os.environ.get(name) for name in (*_CLEARED, "PULSEMART_HOME", "PULSEMART_KAFKA_PORT")}
    for name in _CLEARED:
        os.environ.pop(name, None)
    # A folder of our own rather than pytest's tmp_path: pytest prunes old base folders, which
    # would pull the data folder from under a server still running for another session.
    home = tempfile.mkdtemp(prefix="pulsemart-test-")
    os.environ["PULSEMART_HOME"] = home
    os.environ["PULSEMART_KAFKA_PORT"] = str(free_port())
    settings = load_settings()
    stack.up(settings)
    yield settings
    stack.down(settings)
    shutil.rmtree(home, ignore_errors=True)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def fresh_stream(settings):
    """Empty shop topics and an empty raw/ingest store, so a test counts only its own records."""
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in TOPIC_PARTITIONS if t in existing]
        if doomed:
            admin.delete_topics(doomed)
        admin.create_topics([NewTopic(t, n, 1) for t, n in TOPIC_PARTITIONS.items()])
    finally:
        admin.close()
    with connect_migrated(settings) as conn:
        conn.execute("truncate raw.events, ingest.offsets, ingest.batches, quality.progress, "
                     "quality.events_clean, quality.order_lines_clean, quality.quarantine, "
                     "quality.quarantine_lines, quality.held, quality.catalog_state, "
                     "quality.batches cascade")
        # The datamart's incremental models and snapshot would keep rows of earlier tests.
        conn.execute("drop schema if exists marts, snapshots, staging, intermediate cascade")
        conn.commit()
    return settings


@pytest.fixture
def db(settings):
    with connect_migrated(settings) as conn:
        yield conn


def read_topic(settings, topic: str, idle_polls: int = 3) -> list:
    """Every record of `topic`, read until polls come back empty (never trusting end offsets)."""
    consumer = KafkaConsumer(**settings.kafka_client_config(), group_id=None, enable_auto_commit=False)
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
