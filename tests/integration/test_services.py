"""`pulsemart services`: idempotent, leaves nothing behind, clear errors."""

import socket
import subprocess
import time

import pytest

from pulsemart.config import load_settings
from pulsemart.local import broker, stack
from pulsemart.local.processes import ServiceError
from pulsemart.stream.producer import ProducedEvent, ProduceError, make_producer, produce_events
from tests.integration.helpers import free_port

pytestmark = pytest.mark.integration


def test_up_is_idempotent(settings):
    before = stack.status(settings)
    assert stack.up(settings)["PULSEMART_DATABASE_URL"] == stack.database_url(settings)
    after = stack.status(settings)
    assert [row.get("pid") for row in after] == [row.get("pid") for row in before]
    assert all(row["running"] for row in after)


def test_busy_port_names_the_port_and_the_setting(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = load_settings({"PULSEMART_HOME": str(tmp_path), "PULSEMART_KAFKA_PORT": str(port)})
        with pytest.raises(ServiceError, match=f"port {port}.*PULSEMART_KAFKA_PORT"):
            broker.start(other)


def test_stale_pid_file_does_not_block_start_and_down_leaves_no_process(tmp_path):
    other = load_settings(
        {"PULSEMART_HOME": str(tmp_path), "PULSEMART_KAFKA_PORT": str(free_port())}
    )
    other.run_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (other.run_dir / "broker.pid").write_text(f"{dead.pid}\n")
    broker.start(other)
    pid = broker.status(other)["pid"]
    assert pid and pid != dead.pid
    assert broker.stop(other)
    time.sleep(0.2)
    assert not broker.status(other)["running"]
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", other.kafka_port)) != 0


def test_producing_to_a_down_broker_fails_fast_with_a_clear_error(tmp_path):
    nowhere = load_settings(
        {"PULSEMART_HOME": str(tmp_path), "PULSEMART_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    )
    started = time.monotonic()
    with pytest.raises(ProduceError, match="cannot reach Kafka|not acknowledged|failed"):
        producer = make_producer(nowhere, connect_timeout_s=5)
        produce_events(producer, [ProducedEvent("shop.events", "k", b"v")], flush_timeout_s=5)
    assert time.monotonic() - started < 15
