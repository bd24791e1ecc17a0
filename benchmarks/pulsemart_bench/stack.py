"""A throw-away embedded stack for benchmarks: temporary PULSEMART_HOME, free Kafka port.

Benchmarks delete topics and truncate tables, so they must never run against a user's
services: the environment that would point them elsewhere is cleared for the duration.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from pulsemart.config import TOPIC_PARTITIONS, Settings, load_settings
from pulsemart.local import stack
from pulsemart.store.db import connect_migrated

# Settings that would send the benchmark to someone's real cluster or Dagster instance.
_CLEARED = (
    "PULSEMART_DATABASE_URL",
    "PULSEMART_KAFKA_BOOTSTRAP",
    "DAGSTER_HOME",
    "PULSEMART_MAX_BATCH_EVENTS",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def temporary_stack() -> Iterator[Settings]:
    """Start PostgreSQL and the broker in a fresh temporary home; stop and delete them after."""
    saved = {
        name: os.environ.get(name) for name in (*_CLEARED, "PULSEMART_HOME", "PULSEMART_KAFKA_PORT")
    }
    home = tempfile.mkdtemp(prefix="pulsemart-bench-")
    for name in _CLEARED:
        os.environ.pop(name, None)
    os.environ["PULSEMART_HOME"] = home
    os.environ["PULSEMART_KAFKA_PORT"] = str(free_port())
    settings = load_settings()
    try:
        stack.up(settings)
        yield settings
    finally:
        stack.down(settings)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(home, ignore_errors=True)


def recreate_topics(settings: Settings, extra: dict[str, int] | None = None) -> None:
    """Empty topics, so each measurement starts from the same broker state (Tansu keeps
    records in memory, and a fuller broker could be a slower one)."""
    wanted = {**TOPIC_PARTITIONS, **(extra or {})}
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        doomed = [t for t in wanted if t in set(admin.list_topics())]
        if doomed:
            admin.delete_topics(doomed)
        admin.create_topics([NewTopic(t, n, 1) for t, n in wanted.items()])
    finally:
        admin.close()
    time.sleep(0.5)  # let metadata settle before the first produce asks for partitions


# Schemas whose tables the ingest job (and the layers it triggers) writes; emptied between
# measurements. Listed from the catalog rather than named, so a new table cannot leave stale
# rows behind to trip a conservation check in the next round.
_DATA_SCHEMAS = ("raw", "ingest", "quality", "serving")


def truncate_store(settings: Settings) -> None:
    with connect_migrated(settings) as conn:
        tables = conn.execute(
            "select format('%%I.%%I', table_schema, table_name) from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_schema = any(%s)",
            (list(_DATA_SCHEMAS),),
        ).fetchall()
        if tables:
            # Names come from the catalog and are quoted by format('%I'), never from input.
            conn.execute("truncate " + ", ".join(name for (name,) in tables))
        conn.commit()
