"""Exactly-once ingestion against the real embedded PostgreSQL and broker."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.config import load_settings
from pulsemart.store.reset import ResetRefused
from pulsemart.stream.ingest import BatchPlan, ingest_batch
from pulsemart.stream.reader import ReadError, make_consumer
from pulsemart.stream.rewind import reset_to_earliest
from pulsemart.stream.simulator import generate
from tests.integration.helpers import (
    free_port,
    produce_raw,
    produce_simulated,
    read_topic,
    stored_triples,
    topic_triples,
)
from tests.integration.realtime_support import same, serving_snapshot

pytestmark = pytest.mark.integration
TOPIC = "shop.events"
TOPICS = ["shop.catalog", "shop.events"]


def test_catch_up_stores_every_record_exactly_once(fresh_stream, db):
    values = [json.dumps({"event_id": str(i), "n": i}).encode() for i in range(5_000)]
    produce_raw(fresh_stream, TOPIC, values)

    report = catch_up(fresh_stream, defs, [TOPIC])

    produced = topic_triples(read_topic(fresh_stream, TOPIC))
    assert len(produced) == 5_000
    assert stored_triples(db, TOPIC) == produced
    assert report.records == 5_000
    offsets = dict(
        db.execute(
            'select "partition", next_offset from ingest.offsets where topic = %s', (TOPIC,)
        ).fetchall()
    )
    last = {}
    for _, partition, offset in produced:
        last[partition] = max(last.get(partition, -1), offset)
    assert offsets == {p: o + 1 for p, o in last.items()}


def test_running_a_batch_again_changes_nothing(fresh_stream, db):
    produce_raw(fresh_stream, TOPIC, [b"x%d" % i for i in range(300)], keys=["same"] * 300)
    partition = read_topic(fresh_stream, TOPIC)[0].partition
    plan = BatchPlan(TOPIC, partition, 0, 1_000)
    consumer = make_consumer(fresh_stream)
    try:
        first = ingest_batch(db, consumer, plan)
        again = ingest_batch(db, consumer, plan)
    finally:
        consumer.close()
    assert (first.status, first.records, first.next_offset) == ("stored", 300, 300)
    assert (again.status, again.records, again.next_offset) == ("already_stored", 0, 300)
    assert len(stored_triples(db, TOPIC)) == 300
    assert db.execute("select count(*) from ingest.batches").fetchone()[0] == 1


def test_batch_is_bounded_and_the_next_one_continues(fresh_stream, db):
    produce_raw(fresh_stream, TOPIC, [b"v%d" % i for i in range(250)], keys=["same"] * 250)
    partition = read_topic(fresh_stream, TOPIC)[0].partition
    consumer = make_consumer(fresh_stream)
    try:
        first = ingest_batch(db, consumer, BatchPlan(TOPIC, partition, 0, 100))
        second = ingest_batch(db, consumer, BatchPlan(TOPIC, partition, first.next_offset, 1_000))
    finally:
        consumer.close()
    assert (first.records, first.next_offset) == (100, 100)
    assert (second.start_offset, second.records, second.next_offset) == (100, 150, 250)


def test_bad_records_land_exactly_as_received(fresh_stream, db):
    oversized = b"{" + b"a" * (1024 * 1024) + b"}"
    values = [b"", b"not json at all", b"\xff\xfe\x00binary", oversized, b'{"event_id": 1}']
    produce_raw(fresh_stream, TOPIC, values, keys=["k"] * len(values))
    catch_up(fresh_stream, defs, [TOPIC])
    stored = [bytes(row[0]) for row in db.execute('select value from raw.events order by "offset"')]
    assert stored == values


def test_broker_down_fails_cleanly_and_moves_no_offset(fresh_stream, db):
    produce_raw(fresh_stream, TOPIC, [b"a", b"b"], keys=["k", "k"])
    partition = read_topic(fresh_stream, TOPIC)[0].partition
    broken = load_settings(
        {
            "PULSEMART_HOME": str(fresh_stream.home),
            "PULSEMART_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        }
    )
    with pytest.raises(ReadError, match="cannot reach Kafka|failed"):
        consumer = make_consumer(broken, request_timeout_s=3)
        ingest_batch(db, consumer, BatchPlan(TOPIC, partition, 0, 100))
    assert (
        db.execute("select count(*) from ingest.offsets where next_offset > 0").fetchone()[0] == 0
    )
    # The next run, with the broker reachable, recovers everything.
    catch_up(fresh_stream, defs, [TOPIC])
    assert len(stored_triples(db, TOPIC)) == 2


def test_database_down_fails_the_run_cleanly_and_the_next_run_recovers(
    fresh_stream, db, monkeypatch
):
    from orchestration.catch_up import run_batch
    from pulsemart.store.db import DatabaseError
    from pulsemart.stream.planner import PlannedBatch

    produce_raw(fresh_stream, TOPIC, [b"d1", b"d2"], keys=["k", "k"])
    partition = read_topic(fresh_stream, TOPIC)[0].partition
    batch = PlannedBatch(TOPIC, partition, 0, 100, 0)
    with dg.instance_for_test() as instance:
        monkeypatch.setenv(
            "PULSEMART_DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none"
        )
        with pytest.raises(DatabaseError, match="PULSEMART_DATABASE_URL"):
            run_batch(defs, instance, batch, max_seconds=2)
        monkeypatch.delenv("PULSEMART_DATABASE_URL")
        assert db.execute("select count(*) from ingest.offsets").fetchone()[0] == 0
        assert run_batch(defs, instance, batch, max_seconds=2)["records"] == 2
    assert len(stored_triples(db, TOPIC)) == 2


def test_reset_to_earliest_rebuilds_the_raw_layer(fresh_stream, db):
    produce_raw(fresh_stream, TOPIC, [b"r%d" % i for i in range(400)])
    catch_up(fresh_stream, defs, [TOPIC])
    before = stored_triples(db, TOPIC)
    # A table built from the decisions (as the datamart's incremental models are) is dropped.
    db.execute(
        "create schema if not exists marts; create table if not exists marts.reset_probe (x int)"
    )
    db.commit()
    deleted = reset_to_earliest(db, fresh_stream, TOPIC, derived=[("marts", "reset_probe")])
    assert deleted == 400 and stored_triples(db, TOPIC) == []
    assert db.execute("select to_regclass('marts.reset_probe')").fetchone()[0] is None
    catch_up(fresh_stream, defs, [TOPIC])
    assert stored_triples(db, TOPIC) == before
    audit = db.execute(
        "select action, subject from governance.audit_log order by audit_id desc"
    ).fetchone()
    assert audit == ("reset_to_earliest", TOPIC)


def test_reset_to_earliest_rebuilds_the_serving_tables_exactly(fresh_stream, db):
    produce_simulated(fresh_stream, list(generate(3_000, seed=17)))
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    before = serving_snapshot(db)
    assert before["customer_profile"] and before["product_state"]
    reset_to_earliest(db, fresh_stream, "shop.events")
    catch_up(fresh_stream, defs, TOPICS, serve=True)
    after = serving_snapshot(db)
    for table, rows in before.items():
        # Replayed events fold once: counts and sums equal the first fold, not twice it.
        assert after[table].keys() == rows.keys(), table
        differing = [key for key, row in rows.items() if not same(row, after[table][key])]
        assert (table, differing[:3]) == (table, [])


def test_reset_refuses_when_the_broker_lost_records(fresh_stream, db):
    produce_raw(fresh_stream, TOPIC, [b"a"] * 10, keys=["k"] * 10)
    catch_up(fresh_stream, defs, [TOPIC])
    db.execute(
        "update ingest.offsets set next_offset = next_offset + 1000 where topic = %s", (TOPIC,)
    )
    db.commit()
    with pytest.raises(ResetRefused, match="fewer records than were stored"):
        reset_to_earliest(db, fresh_stream, TOPIC)
    assert len(stored_triples(db, TOPIC)) == 10
