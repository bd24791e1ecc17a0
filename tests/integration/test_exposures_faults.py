"""Exposures exactly once through faults: `pulsemart serve` answers a steady load of
recommendations requests while the real-time worker that lands shop.exposures is SIGKILLed
three times and the broker is paused once. Every response's recommendation_id is decided once
in quality.events_clean and is one row of the datamart's fct_exposures."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter

import httpx
import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.stream.simulator import generate
from tests.integration.datamart_support import build_datamart
from tests.integration.helpers import produce_simulated, start_serve
from tests.integration.realtime_support import spawn_worker, wait_for
from tests.integration.test_exposures import _paths
from tests.integration.test_realtime import STATEMENT_TIMEOUT_S, backends_of, log_tail
from tests.reliability.faults import broker_paused

pytestmark = [pytest.mark.integration, pytest.mark.slow]
KEY = "exposure-faults-key"
KILLS = 3


def _decided(db) -> Counter:
    rows = db.execute(
        "select payload->>'recommendation_id' from quality.events_clean "
        "where event_type = 'recommendation_exposed'"
    ).fetchall()
    db.commit()
    return Counter(r[0] for r in rows)


class Load(threading.Thread):
    """Asks every path in turn until stopped; keeps each answer's recommendation_id."""

    def __init__(self, base: str, paths: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.paths = base, paths
        self.ids: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=10) as client:
            while not self.stop.is_set():
                for path in self.paths:
                    response = client.get(path)
                    if response.status_code != 200:
                        self.failures.append(f"{path}: {response.status_code} {response.text}")
                        continue
                    self.ids.append(response.json()["recommendation_id"])
                time.sleep(0.02)


def test_every_answer_lands_once_through_worker_kills_and_a_broker_pause(
    fresh_stream, db, tmp_path
):
    settings = fresh_stream
    produce_simulated(settings, list(generate(800, seed=31)))
    catch_up(settings, defs, ["shop.catalog", "shop.events"], serve=True)
    paths = _paths(db)
    rng = random.Random(17)
    server, base = start_serve(KEY, workers=2)
    load = Load(base, paths)
    spawned = []
    try:
        load.start()
        for kill in range(KILLS):
            worker = spawn_worker(tmp_path / "worker.log")
            spawned.append(worker)
            before = sum(_decided(db).values())
            # Kill once it decides exposures: somewhere inside or between its transactions.
            wait_for(
                lambda before=before: sum(_decided(db).values()) > before,
                60,
                lambda: (
                    "the worker to decide exposures; its log ends:\n"
                    + log_tail(tmp_path / "worker.log")
                ),
            )
            time.sleep(rng.uniform(0.05, 1.0))
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            wait_for(
                lambda pid=worker.pid: not backends_of(db, pid),
                STATEMENT_TIMEOUT_S + 10,
                "the killed worker's backend to end",
            )
            if kill == 1:
                # Answers of the next seconds cannot be sent: they wait in the API's spools.
                with broker_paused(settings, 0.5):
                    time.sleep(3)
        load.stop.set()
        load.join(30)
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0  # each API worker sends or spools what it holds
        ids = load.ids
        assert len(ids) > 100 and not load.failures, load.failures[:5]
        worker = spawn_worker(tmp_path / "worker.log")
        spawned.append(worker)
        wait_for(
            lambda: set(_decided(db)) >= set(ids),
            120,
            lambda: f"every exposure decided ({len(set(ids) - set(_decided(db)))} missing)",
        )
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
    finally:  # a failure leaves nothing running
        load.stop.set()
        for process in [server, *spawned]:
            if process.poll() is None:
                process.kill()
                process.wait(10)

    assert len(set(ids)) == len(ids)
    decided = _decided(db)
    assert decided == Counter(ids), {i: n for i, n in decided.items() if n != 1}
    build_datamart(db)
    rows = db.execute("select recommendation_id from marts.fct_exposures").fetchall()
    db.commit()
    assert Counter(r[0] for r in rows) == Counter(ids)
