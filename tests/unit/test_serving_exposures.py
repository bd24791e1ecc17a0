"""The exposure log (pulsemart/serving/exposures.py) and its spool, with a stand-in for the
Kafka producer's interface: what is offered is sent once acknowledged, kept on disk while
sending fails, bounded and counted, and taken over from a process that died. The real broker
and API are in tests/integration/test_exposures.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from ml.names import RECOMMENDER
from pulsemart.contracts import build_event, events_frame, pandera_schema
from pulsemart.serving import exposures
from pulsemart.serving.exposure_spool import ExposureSpool
from pulsemart.serving.exposures import (
    ExposureLog,
    Offer,
    exposure_event,
    exposure_part,
    keyed_hash,
    new_recommendation_id,
    with_recommendation_id,
)

PADS = (b"\x36" * 64, b"\x5c" * 64)
ANSWER = {
    "customer_id": "C000001",
    "session_id": "S1",
    "model_version": "3",
    "items": [
        {"product_id": "P1", "because": ["P9"], "score": 1.0},
        {"product_id": "P2", "because": [], "score": 0.5},
    ],
}


class Message:
    def __init__(self, key: bytes, value: bytes) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class FakeProducer:
    """The calls the log makes of confluent_kafka.Producer: each produced record is reported
    delivered (and kept in `sent`) on the next poll while `up` is set, failed otherwise."""

    def __init__(self, sent: list, up: threading.Event) -> None:
        self.sent, self.up, self.waiting, self.closed = sent, up, [], False

    def produce(self, topic, value, key, on_delivery) -> None:
        self.waiting.append((topic, key, value, on_delivery))

    def poll(self, timeout) -> int:
        if not self.waiting:
            time.sleep(min(timeout, 0.01))  # as librdkafka waits for a report
        waiting, self.waiting = self.waiting, []
        for topic, key, value, on_delivery in waiting:
            if self.up.is_set():
                self.sent.append((topic, key, value))
                on_delivery(None, Message(key, value))
            else:
                on_delivery("broker away", Message(key, value))
        return len(waiting)

    def flush(self, timeout) -> int:
        self.poll(0)
        return 0

    def purge(self) -> None:
        pass

    def close(self) -> bool:
        self.closed = True
        return True


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(exposures, "RETRY_S", (0.05, 0.1))
    monkeypatch.setattr(exposures, "ROUND_S", 0.01)


def make_log(tmp_path: Path, up: threading.Event, sent: list, **kwargs) -> ExposureLog:
    spool = ExposureSpool(tmp_path, kwargs.pop("max_rows", 1000))
    return ExposureLog(spool, lambda error_cb: FakeProducer(sent, up), lambda: PADS, **kwargs)


def test_a_served_answer_becomes_a_valid_exposure_event_with_a_hashed_customer():
    at = exposures.datetime(2026, 12, 7, 12, tzinfo=exposures.UTC)
    event = exposure_event(Offer("r1", "customer", orjson.dumps(ANSWER), at), PADS)
    assert event["event_id"] == event["recommendation_id"] == "r1"
    assert event["customer_key"] == keyed_hash(PADS, "C000001") == event["shopper_key"]
    assert "C000001" not in orjson.dumps(event).decode()
    assert event["items"] == [
        {"product_id": "P1", "position": 1, "because": ["P9"]},
        {"product_id": "P2", "position": 2, "because": []},
    ]
    schema = pandera_schema("recommendation_exposed")
    schema.validate(events_frame([event]), lazy=True)  # raises on any failure
    anonymous = {**ANSWER, "customer_id": None}
    event = exposure_event(Offer("r2", "session", orjson.dumps(anonymous), at), PADS)
    assert event["customer_key"] is None and event["shopper_key"] == "S1"


def test_an_exposure_names_its_arm_and_a_shadow_list_the_shopper_never_saw():
    at = exposures.datetime(2026, 12, 7, 12, tzinfo=exposures.UTC)
    plain = exposure_event(Offer("r0", "customer", orjson.dumps(ANSWER), at), PADS)
    assert (plain["variant"], plain["experiment_id"], plain["shadow_items"]) == (
        "champion",
        None,
        None,
    )
    answer = {**ANSWER, "variant": "challenger", "experiment_id": 7, "model_version": "4"}
    event = exposure_event(Offer("r3", "customer", orjson.dumps(answer), at), PADS)
    assert (event["variant"], event["experiment_id"], event["model_version"]) == (
        "challenger",
        7,
        "4",
    )
    shadow = {"model_version": "5", "items": [{"product_id": "P7", "position": 1, "because": []}]}
    answer = {**ANSWER, "variant": "champion", "experiment_id": 8}
    event = exposure_event(Offer("r4", "customer", orjson.dumps(answer), at, shadow), PADS)
    assert event["shadow_model_version"] == "5" and event["shadow_items"] == shadow["items"]
    assert [i["product_id"] for i in event["items"]] == ["P1", "P2"]
    schema = pandera_schema("recommendation_exposed")
    for valid in (plain, event):
        schema.validate(events_frame([valid]), lazy=True)


def test_the_event_is_what_the_contract_builder_makes_and_the_part_stands_for_the_body():
    at = exposures.datetime(2026, 12, 7, 12, 0, 0, 123456, tzinfo=exposures.UTC)
    answer = {**ANSWER, "variant": "challenger", "experiment_id": 3}
    shadow = {"model_version": "5", "items": [{"product_id": "P7", "position": 1, "because": []}]}
    event = exposure_event(Offer("r5", "customer", orjson.dumps(answer), at, shadow), PADS)
    built = build_event(
        "recommendation_exposed",
        event_id="r5",
        event_time=at,
        source=exposures.SOURCE,
        recommendation_id="r5",
        shopper_key=keyed_hash(PADS, "C000001"),
        customer_key=keyed_hash(PADS, "C000001"),
        session_id="S1",
        route="customer",
        variant="challenger",
        model_name=RECOMMENDER,
        model_version="3",
        items=event["items"],
        experiment_id=3,
        shadow_model_version="5",
        shadow_items=shadow["items"],
    )
    assert list(event.items()) == list(built.items())  # same fields, same order
    part = exposure_part(answer)
    assert set(orjson.loads(part)) <= set(answer)
    assert all("score" not in item for item in orjson.loads(part)["items"])
    from_part = exposure_event(Offer("r5", "customer", part, at, shadow), PADS)
    assert from_part == event


def test_recommendation_ids_are_32_hex_digits_and_distinct():
    ids = [new_recommendation_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)


def test_the_id_is_spliced_into_the_body_as_its_first_member():
    body = with_recommendation_id(orjson.dumps(ANSWER), "abc")
    decoded = orjson.loads(body)
    assert next(iter(decoded)) == "recommendation_id" and decoded["recommendation_id"] == "abc"
    assert {k: v for k, v in decoded.items() if k != "recommendation_id"} == ANSWER


def test_offered_answers_are_sent_once_and_leave_the_spool(tmp_path):
    up, sent = threading.Event(), []
    up.set()
    log = make_log(tmp_path, up, sent).start()
    for n in range(20):
        log.offer(f"r{n}", "customer", orjson.dumps(ANSWER))
    wait_until(lambda: log.stats()["produced"] == 20)
    log.close()
    ids = [orjson.loads(value)["recommendation_id"] for _, _, value in sent]
    assert sorted(ids) == sorted(f"r{n}" for n in range(20))
    assert {topic for topic, _, _ in sent} == {"shop.exposures"}
    assert log.stats() == {"offered": 20, "produced": 20, "pending": 0, "dropped": 0}
    assert not list(tmp_path.glob("*.sqlite"))  # an empty spool is removed on close


def test_with_the_broker_away_exposures_wait_in_the_spool_and_go_when_it_returns(tmp_path):
    up, sent = threading.Event(), []
    log = make_log(tmp_path, up, sent).start()
    for n in range(30):
        log.offer(f"r{n}", "session", orjson.dumps(ANSWER))
    wait_until(lambda: log.spool.pending == 30)
    assert log.stats()["produced"] == 0 and not sent
    up.set()
    wait_until(lambda: log.stats()["produced"] == 30)
    log.close()
    assert len(sent) == 30 and log.stats()["pending"] == 0


def test_a_full_spool_drops_and_counts_what_it_cannot_keep(tmp_path):
    up, sent = threading.Event(), []
    log = make_log(tmp_path, up, sent, max_rows=10).start()
    log.offer("first", "customer", orjson.dumps(ANSWER))
    wait_until(lambda: log.spool.pending == 1)  # the broker is away: it waits on disk
    for n in range(24):
        log.offer(f"r{n}", "customer", orjson.dumps(ANSWER))
    wait_until(lambda: log.stats()["dropped"] == 15)
    up.set()
    wait_until(lambda: log.stats()["produced"] == 10)
    log.close()
    assert log.stats() == {"offered": 25, "produced": 10, "pending": 0, "dropped": 15}
    # The oldest are kept: what was refused came last.
    assert sorted(orjson.loads(v)["recommendation_id"] for _, _, v in sent) == sorted(
        ["first", *(f"r{n}" for n in range(9))]
    )


def test_offer_never_blocks_and_a_full_queue_counts_its_drops(tmp_path):
    up, sent = threading.Event(), []
    log = make_log(tmp_path, up, sent, queue_max=5)  # not started: nothing drains the queue
    started = time.perf_counter()
    for n in range(1000):
        log.offer(f"r{n}", "customer", b"{}")
    assert time.perf_counter() - started < 1.0
    assert log.stats()["dropped"] == 995 and log.stats()["pending"] == 5
    log.spool.close()


def test_what_is_unsent_at_shutdown_is_spooled_for_the_next_process(tmp_path):
    up, sent = threading.Event(), []
    log = make_log(tmp_path, up, sent)  # its thread is not started: the test runs its rounds
    log._round()  # connects the producer; the broker looks fine so far
    for n in range(3):
        log.offer(f"r{n}", "customer", orjson.dumps(ANSWER))
    producer = log._producer
    log._last_round()  # produced, not acknowledged within the flush: back to the spool
    assert log.spool.pending == 3 and not sent
    assert producer.closed and log._producer is None  # no client left reconnecting
    log.spool.close()
    assert len(list(tmp_path.glob("exposures-*.sqlite"))) == 1


def test_close_stops_the_thread_within_seconds_even_with_the_broker_away(tmp_path):
    up, sent = threading.Event(), []
    log = make_log(tmp_path, up, sent).start()
    log.offer("r1", "customer", orjson.dumps(ANSWER))
    wait_until(lambda: log.spool.pending == 1)
    started = time.monotonic()
    log.close(timeout_s=5.0)
    assert time.monotonic() - started < 5.0
    assert not any(t.name == "exposure-log" and t.is_alive() for t in threading.enumerate())
    assert list(tmp_path.glob("*.sqlite"))  # kept on disk for the next process


KILLED_OWNER = """
import os, signal, sys
from pathlib import Path
from pulsemart.serving.exposure_spool import ExposureSpool
spool = ExposureSpool(Path(sys.argv[1]), 100)
spool.add([(b"k", b"v1"), (b"k", b"v2")])
print("spooled", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_spool_whose_process_was_killed_is_taken_over_and_one_in_use_is_not(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", KILLED_OWNER, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -9 and "spooled" in done.stdout, done.stderr
    heir = ExposureSpool(tmp_path, 100)
    assert [value for _, _, value in heir.oldest(10)] == [b"v1", b"v2"]
    other = ExposureSpool(tmp_path, 100)  # the heir holds that one: a new spool
    assert other.path != heir.path and other.pending == 0
    heir.remove([rowid for rowid, _, _ in heir.oldest(10)])
    heir.close()
    other.close()
    assert not list(tmp_path.glob("*.sqlite"))


def test_an_answer_that_is_not_a_recommendations_body_is_counted_not_fatal(tmp_path):
    up, sent = threading.Event(), []
    up.set()
    log = make_log(tmp_path, up, sent).start()
    log.offer("bad", "customer", b'{"items": "nope"}')
    log.offer("good", "customer", orjson.dumps(ANSWER))
    wait_until(lambda: log.stats()["produced"] == 1)
    log.close()
    assert log.stats()["dropped"] == 1
    assert [orjson.loads(v)["recommendation_id"] for _, _, v in sent] == ["good"]
