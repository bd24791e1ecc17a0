"""The real-time worker's pure parts: grouping records by partition, the librdkafka settings,
the report window and the status view."""

from collections import Counter
from datetime import UTC, datetime

import pandas as pd
import pytest

from pulsemart.config import SettingsError, load_settings
from pulsemart.realtime.consumer import Record, librdkafka_config, positioned
from pulsemart.realtime.pipeline import BatchOutcome, Landed, group_by_partition
from pulsemart.realtime.report import Window
from pulsemart.realtime.status import render
from pulsemart.serving.fold import RefreshReport
from pulsemart.store.quality import DecidedBatch


def record(topic, partition, offset):
    return Record(topic, partition, offset, b"k", b"{}", None, 1_700_000_000_000, 0)


def test_records_are_grouped_per_partition_in_order_and_stored_ones_dropped():
    records = [
        record("shop.events", 1, 7),
        record("shop.catalog", 0, 3),
        record("shop.events", 1, 5),
        record("shop.events", 1, 4),
        record("shop.events", 0, 0),
    ]
    parts = group_by_partition(records, {("shop.events", 1): 5, ("shop.catalog", 0): None})
    assert list(parts) == [("shop.catalog", 0), ("shop.events", 0), ("shop.events", 1)]
    assert [r.offset for r in parts[("shop.events", 1)]] == [5, 7]  # offset 4 is stored already
    assert [r.offset for r in parts[("shop.catalog", 0)]] == [
        3
    ]  # never stored: kept from its first


def test_librdkafka_settings_follow_the_pulsemart_settings():
    plain = librdkafka_config(load_settings({"PULSEMART_KAFKA_BOOTSTRAP": "b1:9092,b2:9092"}))
    assert plain == {"bootstrap.servers": "b1:9092,b2:9092", "security.protocol": "PLAINTEXT"}
    scram = librdkafka_config(
        load_settings(
            {
                "PULSEMART_KAFKA_BOOTSTRAP": "msk:9096",
                "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "PULSEMART_KAFKA_SASL_USERNAME": "u",
                "PULSEMART_KAFKA_SASL_PASSWORD": "p",
                "PULSEMART_KAFKA_SSL_CAFILE": "/ca.pem",
            }
        )
    )
    assert scram["security.protocol"] == "SASL_SSL"
    assert (scram["sasl.mechanism"], scram["sasl.username"], scram["sasl.password"]) == (
        "SCRAM-SHA-512",
        "u",
        "p",
    )
    assert scram["ssl.ca.location"] == "/ca.pem"
    iam = librdkafka_config(
        load_settings(
            {
                "PULSEMART_KAFKA_BOOTSTRAP": "msk:9098",
                "PULSEMART_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
            }
        )
    )
    assert (iam["security.protocol"], iam["sasl.mechanism"]) == ("SASL_SSL", "OAUTHBEARER")


def test_assigned_partitions_start_at_the_stored_offsets_or_the_beginning():
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition

    tps = positioned(
        [TopicPartition("shop.events", 0), TopicPartition("shop.events", 1)],
        {("shop.events", 1): 42},
    )
    assert [(tp.partition, tp.offset) for tp in tps] == [(0, OFFSET_BEGINNING), (1, 42)]


def test_realtime_settings_have_defaults_and_read_the_environment():
    defaults = load_settings({})
    assert (defaults.realtime_batch_ms, defaults.realtime_max_records, defaults.dagster_url) == (
        20,
        5_000,
        None,
    )
    custom = load_settings(
        {"PULSEMART_REALTIME_BATCH_MS": "50", "PULSEMART_DAGSTER_URL": "http://d:3000/"}
    )
    assert (custom.realtime_batch_ms, custom.dagster_url) == (50, "http://d:3000")
    with pytest.raises(SettingsError, match="PULSEMART_REALTIME_MAX_RECORDS"):
        load_settings({"PULSEMART_REALTIME_MAX_RECORDS": "many"})


class FakeResult:
    """An engine result's parts the window reads."""

    def __init__(self, conservation, payloads):
        self.conservation = conservation
        self.clean = pd.DataFrame({"payload": payloads})

    def metadata(self):
        return {"rule_counts": {"R1:fixed": 2}, "failure_counts": {}}


def outcome(landed, conservation, payloads, new_records, seconds=0.05):
    served = RefreshReport(
        1, 2, batches=1, events=len(payloads), max_event_time=datetime(2024, 3, 1, tzinfo=UTC)
    )
    return BatchOutcome(
        landed,
        DecidedBatch(2, FakeResult(conservation, payloads), 0.01, new_records),
        served,
        seconds,
    )


def test_a_window_aggregates_batches_into_one_event_per_asset_and_two_checks():
    window = Window()
    assert window.empty
    window.add(
        outcome(
            [
                Landed("shop.events", 0, 10, 13, 3, 300, 1),
                Landed("shop.catalog", 1, 0, 1, 1, 90, 2),
            ],
            {"in": 4, "accepted": 3, "fixed": 0, "quarantined": 1, "held": 0},
            [],
            4,
        ),
        0.2,
    )
    window.add(
        outcome(
            [Landed("shop.events", 0, 13, 15, 2, 200, 3)],
            {"in": 2, "accepted": 1, "fixed": 1, "quarantined": 0, "held": 0},
            [],
            2,
            0.07,
        ),
        0.1,
    )
    window.lag = {("shop.events", 0): 5, ("shop.events", 1): 2}
    materializations, checks = window.events(gaps=[])
    keys = [tuple(m["asset_key"]) for m in materializations]
    assert len(keys) == len(set(keys))
    assert keys[:2] == [("raw", "shop_events"), ("raw", "shop_catalog")]
    assert ("quality", "events_clean") in keys and ("serving", "product_state") in keys
    events = materializations[0]["metadata"]
    assert (events["records"], events["offset_ranges"], events["lag"], events["batches"]) == (
        5,
        {"0": "10..15"},
        7,
        2,
    )
    assert events["batch_seconds_p95"] >= events["batch_seconds_p50"] > 0
    clean = next(
        m["metadata"] for m in materializations if m["asset_key"] == ["quality", "events_clean"]
    )
    assert Counter({k: clean[k] for k in ("accepted", "fixed", "quarantined")}) == Counter(
        accepted=4, fixed=1, quarantined=1
    )
    assert {c["check_name"]: c["passed"] for c in checks} == {
        "contract": True,
        "conservation": True,
    }


def test_conservation_fails_when_decisions_do_not_add_up_or_the_database_disagrees():
    window = Window()
    window.add(
        outcome(
            [Landed("shop.events", 0, 0, 2, 2, 10, 1)],
            {"in": 2, "accepted": 1, "fixed": 0, "quarantined": 0, "held": 0},
            [],
            2,
        ),
        None,
    )
    _, checks = window.events(gaps=[])
    assert {c["check_name"]: c["passed"] for c in checks}["conservation"] is False
    balanced = Window()
    balanced.add(
        outcome(
            [Landed("shop.events", 0, 0, 1, 1, 10, 1)],
            {"in": 1, "accepted": 1, "fixed": 0, "quarantined": 0, "held": 0},
            [],
            1,
        ),
        None,
    )
    _, checks = balanced.events(
        gaps=[{"topic": "shop.events", "partition": 0, "records_out_of_balance": 1}]
    )
    assert {c["check_name"]: c["passed"] for c in checks}["conservation"] is False


def test_the_status_view_names_owners_lag_and_dead_workers():
    text = render(
        [
            {
                "worker_id": "w1",
                "pid": 1,
                "state": "running",
                "partitions": ["shop.events[0]"],
                "lag": 3,
                "last_commit_at": None,
                "batches": 2,
                "records": 9,
            }
        ],
        [("shop.events", 0, 100, 98, 1.5)],
        {("shop.events", 0): 104},
    )
    assert "worker w1 (pid 1): running; partitions shop.events[0]; lag 3" in text
    assert "shop.events[0]" in text and "     4  1.5s ago" in text


def test_the_status_view_names_a_live_session_to_try_the_blend_with():
    known = render([], [], {}, ("S9", "C7"))
    assert "GET /customers/C7/recommendations?session_id=S9" in known
    assert "GET /sessions/S9/recommendations" in render([], [], {}, ("S9", None))
    assert "latest session" not in render([], [], {})
