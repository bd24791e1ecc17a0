"""Exposures end to end on the real broker and database: `pulsemart serve` (two workers, each
with its own exposure log) answers recommendations requests, cached or not, each with a
recommendation_id of its own; every answer reaches shop.exposures once, including those served
while the broker was paused; the sensor lane lands and decides each exactly once, and the
datamart's fct_exposures holds each once; and the server still stops within seconds."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter

import httpx
import orjson
import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.config import EXPOSURES_TOPIC
from pulsemart.local.processes import wait_until
from pulsemart.stream.simulator import generate
from tests.integration.datamart_support import build_datamart
from tests.integration.helpers import produce_simulated, read_topic, start_serve
from tests.reliability.faults import broker_paused

pytestmark = pytest.mark.integration
KEY = "exposures-key"


def _spooled(settings) -> int:
    """Exposures waiting in the API workers' spools (pulsemart/serving/exposure_spool.py)."""
    total = 0
    for path in (settings.home / "spool").glob("exposures-*.sqlite"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as spool:
            total += spool.execute("select count(*) from spool").fetchone()[0]
    return total


def _paths(db) -> list[str]:
    """Customer routes (with and without a live session) and anonymous session routes."""
    customers = [
        r[0]
        for r in db.execute(
            "select customer_id from serving.customer_profile order by customer_id limit 4"
        )
    ]
    sessions = [
        r[0]
        for r in db.execute(
            "select owner_id from serving.recent_touches where scope = 'session' "
            "order by owner_id limit 3"
        )
    ]
    db.commit()
    assert customers and sessions
    paths = [f"/customers/{c}/recommendations?k=5" for c in customers]
    paths += [f"/customers/{customers[0]}/recommendations?k=5&session_id={s}" for s in sessions]
    paths += [f"/sessions/{s}/recommendations?k=5" for s in sessions]
    return paths


def _ask(base: str, paths: list[str], rounds: int) -> list[dict]:
    """Every path `rounds` times (the repeats answer from the cache); the bodies."""
    bodies = []
    with httpx.Client(base_url=base, headers={"X-API-Key": KEY}, timeout=10) as client:
        for _ in range(rounds):
            for path in paths:
                response = client.get(path)
                assert response.status_code == 200, response.text
                bodies.append(response.json())
    return bodies


def test_every_answer_is_exposed_once_even_with_the_broker_paused(fresh_stream, db):
    settings = fresh_stream
    produce_simulated(settings, list(generate(800, seed=23)))
    catch_up(settings, defs, ["shop.catalog", "shop.events"], serve=True)
    paths = _paths(db)
    server, base = start_serve(KEY, workers=2)
    try:
        bodies = _ask(base, paths, rounds=3)
        wait_until(
            lambda: len(read_topic(settings, EXPOSURES_TOPIC)) >= len(bodies),
            30,
            "the first exposures on the topic",
        )
        with broker_paused(settings, 0.5):
            bodies += _ask(base, paths, rounds=2)  # answered while exposures cannot be sent
            # They wait on disk, in the workers' spools, until the broker answers again.
            wait_until(lambda: _spooled(settings) > 0, 30, "exposures in a spool", interval_s=0.1)
        # ... and are sent once it does, without a restart.
        wait_until(lambda: _spooled(settings) == 0, 60, "the spools to drain")
    finally:
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=20)
        stopped_in = time.monotonic() - started
        stderr = server.stderr.read().decode() if server.stderr else ""
    assert code == 0 and stopped_in < 15, stderr[-2000:]

    ids = [body["recommendation_id"] for body in bodies]
    assert len(ids) == len(paths) * 5 == len(set(ids))  # cached answers get ids of their own
    # Shut down cleanly, each worker sent what it held: nothing is left in a spool.
    assert not list((settings.home / "spool").glob("exposures-*.sqlite")), stderr[-2000:]
    produced = [orjson.loads(r.value) for r in read_topic(settings, EXPOSURES_TOPIC)]
    # A send that timed out while the broker was paused may have reached it all the same and be
    # sent again with its event id: at least once on the topic, exactly once decided (below).
    assert {e["recommendation_id"] for e in produced} == set(ids)
    by_id = {e["recommendation_id"]: e for e in produced}
    for body in bodies:
        exposure = by_id[body["recommendation_id"]]
        assert [i["product_id"] for i in exposure["items"]] == [
            i["product_id"] for i in body["items"]
        ]
        assert [i["because"] for i in exposure["items"]] == [i["because"] for i in body["items"]]
        assert exposure["route"] == ("customer" if body["customer_id"] else "session")
        assert exposure["session_id"] == body["session_id"]
        assert exposure["model_version"] == body["model_version"]
        if body["customer_id"] is not None:
            (expected,) = db.execute(
                "select governance.keyed_hash(%s)", (body["customer_id"],)
            ).fetchone()
            assert exposure["customer_key"] == expected == exposure["shopper_key"]
            assert body["customer_id"] not in orjson.dumps(exposure).decode()
        else:
            assert exposure["customer_key"] is None
            assert exposure["shopper_key"] == body["session_id"]
    db.commit()

    # Landed and decided like any event: each exposure once, accepted; a re-send is quarantined
    # as the duplicate it is.
    catch_up(settings, defs, [EXPOSURES_TOPIC], serve=True)
    rows = db.execute(
        "select payload->>'recommendation_id', decision from quality.events_clean "
        "where event_type = 'recommendation_exposed'"
    ).fetchall()
    assert Counter(r[0] for r in rows) == Counter(ids)
    assert {r[1] for r in rows} == {"accepted"}
    reasons = [
        r[0]
        for r in db.execute(
            "select reasons::text from quality.quarantine where topic = %s", (EXPOSURES_TOPIC,)
        )
    ]
    assert len(rows) + len(reasons) == len(produced)
    assert all("duplicate" in reason for reason in reasons), reasons
    # The fold counts none of them as shop activity.
    (sessions,) = db.execute(
        "select count(*) from serving.session_funnel where session_id = any(%s)",
        ([b["session_id"] for b in bodies if b["session_id"]],),
    ).fetchone()
    db.commit()
    assert sessions == len({b["session_id"] for b in bodies if b["session_id"]})

    # The datamart: one row per exposure, keyed by its id, its products in the order shown.
    build_datamart(db)
    marts = db.execute(
        "select recommendation_id, items_shown, product_ids, customer_key, route "
        "from marts.fct_exposures"
    ).fetchall()
    db.commit()
    assert Counter(r[0] for r in marts) == Counter(ids)
    for recommendation_id, shown, product_ids, customer_key, route in marts:
        exposure = by_id[recommendation_id]
        assert shown == len(exposure["items"])
        assert product_ids == [i["product_id"] for i in exposure["items"]]
        assert (customer_key, route) == (exposure["customer_key"], exposure["route"])
