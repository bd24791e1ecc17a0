"""The fault matrix, delivery faults: the broker paused mid-batch, records delivered twice,
prices arriving newest first, a burst at ten times the rate. Each case lets the pipeline finish
as an operator would and asserts conservation from the topic to the marts (faults.py).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.contracts import build_event, encode_event
from pulsemart.stream.simulator import generate
from tests.integration.helpers import produce_raw
from tests.reliability.faults import (
    FIRST_BATCH_LANDED,
    TOPICS,
    assert_conserved,
    broker_paused,
    catch_up_process,
    finish,
    produce,
    report,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def longest_stall_s(db) -> float:
    """The longest a batch took, or the longest time between two batches finishing."""
    (stall,) = db.execute("""
        select extract(epoch from max(greatest(finished_at - started_at, gap)))
        from (select started_at, finished_at,
                     finished_at - lag(finished_at) over (order by finished_at) as gap
              from ingest.batches) b""").fetchone()
    db.commit()
    return float(stall or 0)


def test_broker_paused_mid_batch_then_resumed(fresh_stream, db):
    produced = produce(fresh_stream, generate(40_000, seed=33))
    process = catch_up_process({"PULSEMART_MAX_BATCH_EVENTS": "2000"})
    wait_for(fresh_stream, FIRST_BATCH_LANDED)
    with broker_paused(fresh_stream, seconds=4):
        paused_a_run = process.poll() is None  # still running after 4 s without a broker
    output, _ = process.communicate(timeout=240)
    # The run rode the pause out and landed everything itself, before `finish` looked; its
    # batches show the pause as a stall of seconds (one batch long, or none finishing).
    assert paused_a_run
    assert longest_stall_s(db) >= 3.0
    assert process.returncode == 0, output[-2000:]
    assert f"caught up: {produced} records" in output
    finish(fresh_stream)
    counts = assert_conserved(fresh_stream, db)
    assert counts["raw"] == produced
    report(
        "broker paused 4 s mid-batch",
        faulted_run_exit=process.returncode,
        produced=produced,
        **counts,
    )


def test_duplicate_delivery_is_decided_once_and_quarantined_as_duplicate(fresh_stream, db):
    events = list(generate(4_000, seed=34))
    produce(fresh_stream, events)
    shop = [e for e in events if e.topic == "shop.events"][:1_500]
    produce(fresh_stream, shop)  # the same records again: same event_id, new offsets
    finish(fresh_stream)
    counts = assert_conserved(fresh_stream, db)
    assert counts["raw"] == len(events) + len(shop)
    once = db.execute(
        "select count(*), count(distinct event_id) from quality.events_clean"
    ).fetchone()
    assert once[0] == once[1]
    duplicates = db.execute(
        "select count(*) from quality.quarantine where reasons ? 'duplicate'"
    ).fetchone()[0]
    assert duplicates == len(shop)
    report("duplicate delivery", resent=len(shop), quarantined_as_duplicate=duplicates, **counts)


def test_out_of_order_events_keep_the_newest_state(fresh_stream, db):
    produce(fresh_stream, generate(2_000, seed=35))
    finish(fresh_stream)
    product = db.execute(
        "select product_id from quality.events_clean where event_type = 'product_upserted' "
        "order by product_id limit 1"
    ).fetchone()[0]
    base = db.execute("select max(event_time) from quality.events_clean").fetchone()[0]
    prices = [
        (base + timedelta(minutes=m), price) for m, price in ((30, 9.5), (10, 1.5), (20, 4.5))
    ]
    values = [
        encode_event(
            build_event(
                "price_changed",
                event_time=at,
                source="test",
                product_id=product,
                unit_price=price,
                currency="GBP",
            )
        )
        for at, price in prices
    ]
    produce_raw(fresh_stream, "shop.catalog", values, keys=[product] * len(values))  # newest first
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    counts = assert_conserved(fresh_stream, db)
    assert counts["raw"] == 2_000 + len(values)
    served = db.execute(
        "select unit_price from serving.product_state where product_id = %s", (product,)
    ).fetchone()
    current = db.execute(
        "select unit_price from marts.dim_product where product_id = %s and is_current", (product,)
    ).fetchone()
    assert served == (9.5,) and current == (9.5,)
    report(
        "out-of-order prices",
        sent="newest first",
        served=served[0],
        dim_product_current=current[0],
        **counts,
    )


def test_burst_at_ten_times_the_rate_is_absorbed(fresh_stream, db, monkeypatch):
    monkeypatch.setenv("PULSEMART_MIN_BATCH_EVENTS", "200")
    events = list(generate(24_000, seed=36))
    catalog = [e for e in events if e.topic == "shop.catalog"]
    shop = [e for e in events if e.topic == "shop.events"]
    produce(fresh_stream, catalog)
    normal, burst = shop[:2_000], shop[2_000:22_000]  # 1,000/s for 2 s, then 10,000/s for 2 s

    def producer():
        for chunk, per_second in ((normal, 1_000), (burst, 10_000)):
            for start in range(0, len(chunk), per_second // 10):
                produce_raw(
                    fresh_stream,
                    "shop.events",
                    [e.value for e in chunk[start : start + per_second // 10]],
                    keys=[e.key for e in chunk[start : start + per_second // 10]],
                )
                time.sleep(0.1)

    thread = threading.Thread(target=producer)
    thread.start()
    while thread.is_alive():
        catch_up(fresh_stream, defs, TOPICS, decide=False)
    thread.join()
    finish(fresh_stream)
    counts = assert_conserved(fresh_stream, db)
    assert counts["raw"] == len(catalog) + len(normal) + len(burst)
    sizes = [
        row[0]
        for row in db.execute(
            "select records from ingest.batches where topic = 'shop.events' order by batch_id"
        ).fetchall()
    ]
    assert max(sizes) > 2 * min(sizes)  # batches grew with the lag the burst built up
    report(
        "10x burst",
        batches=len(sizes),
        smallest_batch=min(sizes),
        largest_batch=max(sizes),
        **counts,
    )
