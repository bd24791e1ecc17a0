"""A foreign producer and consumer for the ingestion tests: librdkafka through confluent-kafka,
as a shop's own services would produce, never pulsemart's kafka-python code."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = Path(__file__).resolve().parents[2]


def producer(settings, **config) -> Producer:
    return Producer({"bootstrap.servers": settings.kafka_bootstrap, **config})


def read_committed(settings, topic: str, partitions: int, idle_polls: int = 4) -> list:
    """Every message a read_committed librdkafka consumer is handed, from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": "pulsemart-tests",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "fetch.message.max.bytes": 8 * 1024 * 1024,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        messages, empty = [], 0
        while empty < idle_polls:
            batch = consumer.consume(num_messages=10_000, timeout=0.5)
            if not batch:
                empty += 1
                continue
            empty = 0
            for message in batch:
                assert message.error() is None, message.error()
                messages.append(message)
        return messages
    finally:
        consumer.close()


def run_cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """`pulsemart ...` as a user runs it: its own process, this checkout first on the path."""
    return subprocess.run(
        cli_command(*args),
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def cli_command(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from pulsemart.cli.main import cli; cli(prog_name='pulsemart')",
        *args,
    ]


def cli_env(**extra: str) -> dict:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, PYTHONPATH=path, **extra)


def living(pids: list[int]) -> list[int]:
    """The processes of `pids` still alive (a zombie waiting to be reaped is not)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def started_in(home: Path, but: int | None = None) -> list[int]:
    """The processes, other than `but`, started for `home`: they name it on their command line
    (PostgreSQL, Dagster) or in their environment (the broker)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            named = str(home) in " ".join(p.info["cmdline"] or [])
            if p.pid != but and (named or p.environ().get("PULSEMART_HOME") == str(home)):
                found.append(p.pid)
    return found
