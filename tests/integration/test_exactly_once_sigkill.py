"""Exactly-once under SIGKILL: sensor-planned batches run in their own processes and are
killed at random points; at the end raw.events holds every record of the topic once."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.ingest.assets import INGEST_JOBS
from orchestration.resources import build_resources
from sensors.kafka import build_kafka_sensor
from tests.integration.helpers import produce_raw, read_topic, stored_triples, topic_triples

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TOPIC = "shop.events"
EVENTS = 100_000
KILLS_WANTED = 5
ROOT = Path(__file__).resolve().parents[2]


def spawn(request) -> subprocess.Popen:
    payload = json.dumps(
        {"job_name": request.job_name, "run_config": request.run_config, "tags": request.tags}
    )
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests/integration/run_batch_process.py"), payload],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkilled_runs_lose_nothing_and_store_nothing_twice(fresh_stream, db, monkeypatch):
    monkeypatch.setenv("PULSEMART_MAX_BATCH_EVENTS", "4000")
    rng = random.Random(11)
    values = [
        json.dumps({"event_id": f"e{i}", "pad": "x" * rng.randint(10, 300)}).encode()
        for i in range(EVENTS)
    ]
    produce_raw(
        fresh_stream, TOPIC, values, keys=[f"c{rng.randint(0, 5000)}" for _ in range(EVENTS)]
    )
    sensor = build_kafka_sensor(TOPIC, INGEST_JOBS[TOPIC])

    kills, cursor, waves = 0, None, 0
    with dg.instance_for_test() as instance:
        while waves < 60:
            waves += 1
            with dg.build_sensor_context(
                instance=instance, cursor=cursor, resources=build_resources()
            ) as ctx:
                result = sensor(ctx)
            cursor = result.cursor
            if not result.run_requests:
                break
            running = [spawn(request) for request in result.run_requests]
            if kills < KILLS_WANTED:
                # Python start-up and Dagster's imports take ~2-3 s, then the batch reads and
                # COPYs for a few seconds: kill somewhere across that span.
                time.sleep(rng.uniform(1.5, 4.5))
                victim = rng.choice(running)
                if victim.poll() is None:
                    victim.send_signal(signal.SIGKILL)
                    kills += 1
            for process in running:
                process.wait(timeout=300)

    print(f"\nSIGKILLs: {kills}, sensor ticks: {waves}")  # shown with pytest -s
    assert kills >= KILLS_WANTED
    produced = topic_triples(read_topic(fresh_stream, TOPIC))
    assert len(produced) == EVENTS
    stored = stored_triples(db, TOPIC)
    assert len(stored) == len(set(stored)) == EVENTS
    assert stored == produced
    last = {}
    for _, partition, offset in produced:
        last[partition] = max(last.get(partition, -1), offset)
    offsets = dict(
        db.execute(
            'select "partition", next_offset from ingest.offsets where topic = %s', (TOPIC,)
        ).fetchall()
    )
    assert offsets == {p: o + 1 for p, o in last.items()}
