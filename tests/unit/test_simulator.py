"""The simulator: deterministic, exact in count, contract-clean, and dirty exactly as recorded."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pandera.pandas as pa
import pytest
from click.testing import CliRunner

from pulsemart.cli.simulate import simulate
from pulsemart.config import CATALOG_TOPIC
from pulsemart.contracts import (
    CONTRACTS,
    events_frame,
    key_for,
    order_lines_frame,
    order_lines_schema,
    pandera_schema,
    topic_for,
)
from pulsemart.stream.producer import ProducedEvent
from pulsemart.stream.simulator import CORRUPTIONS, DEFAULT_START_TIME, generate

N_PRODUCTS = 200  # generate's default catalog size: the bootstrap is never corrupted
# Corruptions after which the record still fits its contract; the others must break it.
CONTRACT_VALID = {"unknown_product_id", "duplicate", "out_of_order", "future_timestamp"}


@pytest.fixture(scope="module")
def clean_stream():
    return list(generate(20_000, seed=7))


@pytest.fixture(scope="module")
def dirty_stream():
    return list(generate(20_000, seed=7, dirty_rate=0.2))


def rejected_event_ids(events: list[dict], event_type: str) -> set[str]:
    """The event_ids of `events` (unique ids, one type) that the contract schemas reject."""
    rejected = set()
    checks = [(pandera_schema(event_type), events_frame(events))]
    if CONTRACTS[event_type].line_fields:
        checks.append((order_lines_schema(event_type), order_lines_frame(events)))
    for schema, frame in checks:
        try:
            schema.validate(frame, lazy=True)
        except pa.errors.SchemaErrors as exc:
            rows = exc.failure_cases["index"]
            assert rows.notna().all(), "every failure should point at a row"
            rejected.update(frame.loc[rows.astype(int).unique(), "event_id"])
    return rejected


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.parametrize("n_events", [0, 1, 150, 5_000])
@pytest.mark.parametrize("dirty_rate", [0.0, 0.3])
def test_exactly_n_records(n_events, dirty_rate):
    assert sum(1 for _ in generate(n_events, seed=3, dirty_rate=dirty_rate)) == n_events


def test_same_seed_same_bytes_other_seed_other_bytes():
    first = list(generate(3_000, seed=11, dirty_rate=0.1))
    assert first == list(generate(3_000, seed=11, dirty_rate=0.1))
    assert [e.value for e in first] != [e.value for e in generate(3_000, seed=12, dirty_rate=0.1)]


def test_records_convert_to_produced_events(clean_stream):
    record = ProducedEvent(*clean_stream[0][:3])
    assert record.topic == CATALOG_TOPIC and isinstance(record.value, bytes)


def test_catalog_bootstrap_comes_first(clean_stream):
    bootstrap = [json.loads(e.value) for e in clean_stream[:N_PRODUCTS]]
    assert {e["event_type"] for e in bootstrap} == {"product_upserted"}
    assert len({e["product_id"] for e in bootstrap}) == N_PRODUCTS
    assert json.loads(clean_stream[N_PRODUCTS].value)["event_type"] != "product_upserted"


def test_clean_stream_passes_every_contract(clean_stream):
    events = [json.loads(e.value) for e in clean_stream]
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["event_type"], []).append(event)
    # Exposures come from the serving API, not from the shop the simulator plays.
    shop_types = set(CONTRACTS) - {"recommendation_exposed"}
    assert set(by_type) == shop_types, "every shop event type should occur in 20,000 events"
    for event_type, typed in by_type.items():
        assert rejected_event_ids(typed, event_type) == set(), event_type
    for record, event in zip(clean_stream, events, strict=True):
        assert record.truth is None
        assert (record.topic, record.key) == (topic_for(event["event_type"]), key_for(event))


def test_clean_stream_is_plausible(clean_stream):
    events = [json.loads(e.value) for e in clean_stream]
    times = [parse_time(e["event_time"]) for e in events]
    assert times == sorted(times)
    assert times[0] == DEFAULT_START_TIME
    assert timedelta(hours=1) < times[-1] - times[0] < timedelta(days=7)
    assert len({e["event_id"] for e in events}) == len(events)
    known = {e["product_id"] for e in events[:N_PRODUCTS]}
    viewed = [e for e in events if e["event_type"] == "product_viewed"]
    assert {e["product_id"] for e in viewed} <= known
    counts = Counter(e["event_type"] for e in events)
    assert counts["product_viewed"] > counts["cart_updated"] > counts["order_placed"] > 0
    for cancel in (e for e in events if e["event_type"] == "order_cancelled"):
        assert cancel["cancels_order_id"] in {
            e["order_id"] for e in events if e["event_type"] == "order_placed"
        }


def test_customers_have_category_preferences(clean_stream):
    """Latent tastes show: a frequent viewer's top category dominates their views."""
    views: dict[str, Counter] = {}
    for record in clean_stream:
        event = json.loads(record.value)
        if event["event_type"] == "product_viewed":
            views.setdefault(event["customer_id"], Counter())[event["category"]] += 1
    frequent = [c for c in views.values() if sum(c.values()) >= 20]
    assert frequent
    top_share = sum(c.most_common(1)[0][1] / sum(c.values()) for c in frequent) / len(frequent)
    assert top_share > 0.4  # uniform tastes over 8 categories would give about 0.2


def test_start_time_shifts_the_stream():
    start = datetime(2025, 6, 1, 12, tzinfo=UTC)
    first = json.loads(next(iter(generate(1, seed=1, start_time=start))).value)
    assert parse_time(first["event_time"]) == start


def test_clean_events_do_not_depend_on_dirty_rate(clean_stream, dirty_stream):
    clean_ids = [json.loads(e.value)["event_id"] for e in clean_stream]
    kept = [json.loads(e.value)["event_id"] for e in dirty_stream if e.truth is None]
    position = {event_id: i for i, event_id in enumerate(clean_ids)}
    assert [position[event_id] for event_id in kept] == sorted(position[i] for i in kept)


def test_dirty_rate_is_honoured(dirty_stream):
    activity = dirty_stream[N_PRODUCTS:]
    corrupted = sum(1 for e in activity if e.truth is not None)
    assert corrupted / len(activity) == pytest.approx(0.2, abs=0.015)
    assert all(e.truth is None for e in dirty_stream[:N_PRODUCTS])


def test_every_kind_occurs_with_a_truth_record(dirty_stream):
    truths = [e.truth for e in dirty_stream if e.truth is not None]
    assert {t["corruption"] for t in truths} == set(CORRUPTIONS)
    originals: dict[str, list[dict]] = {}
    for truth in truths:
        assert set(truth) == {"event_id", "corruption", "field", "original"}
        assert truth["original"]["event_id"] == truth["event_id"]
        if truth["corruption"] != "duplicate":  # a duplicate's original is also in the stream
            originals.setdefault(truth["original"]["event_type"], []).append(truth["original"])
    for event_type, events in originals.items():
        assert rejected_event_ids(events, event_type) == set(), event_type


def test_each_corruption_does_what_it_claims(dirty_stream):
    catalog = {json.loads(e.value)["product_id"] for e in dirty_stream[:N_PRODUCTS]}
    parsed: dict[str, list[dict]] = {}  # corrupted, parseable, not duplicates; by event type
    claims: dict[str, str] = {}
    previous_time = None
    for record in dirty_stream:
        truth = record.truth
        if truth is None:
            previous_time = parse_time(json.loads(record.value)["event_time"])
            continue
        kind, original = truth["corruption"], truth["original"]
        assert (record.topic, record.key) == (topic_for(original["event_type"]), key_for(original))
        if kind == "malformed_json":
            with pytest.raises(ValueError):
                json.loads(record.value)
            continue
        if kind == "oversized_payload":
            assert len(record.value) > 1024 * 1024
        event = json.loads(record.value)
        if kind == "duplicate":
            assert event == original
            continue
        assert event != original
        parsed.setdefault(original["event_type"], []).append(event)
        claims[event["event_id"]] = kind
        if kind == "unknown_product_id":
            assert _product_ids(event) - _product_ids(original) - catalog
        if kind == "out_of_order":
            assert parse_time(event["event_time"]) < previous_time
        if kind == "future_timestamp":
            ahead = parse_time(event["event_time"]) - parse_time(original["event_time"])
            assert ahead > timedelta(days=365 * 20)
        if kind in ("timestamp_format", "missing_field", "wrong_type"):
            assert event.get(truth["field"]) != original[truth["field"]]
    rejected = set()
    for event_type, events in parsed.items():
        rejected |= rejected_event_ids(events, event_type)
    for event_id, kind in claims.items():
        assert (event_id in rejected) == (kind not in CONTRACT_VALID), (event_id, kind)


def _product_ids(event: dict) -> set[str]:
    if "lines" in event:
        return {line["product_id"] for line in event["lines"]}
    return {event["product_id"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dirty-rate", "1.5"], "--dirty-rate"),
        (["--dirty-rate", "-0.1"], "--dirty-rate"),
        (["--events", "-1"], "--events"),
        (["--rate", "0"], "--rate"),
        (["--start-time", "yesterday"], "not an ISO-8601 time"),
        (["--start-time", "2024-03-01T09:00:00"], "give a time zone"),
    ],
)
def test_cli_rejects_bad_arguments(args, message):
    result = CliRunner().invoke(simulate, args)
    assert result.exit_code == 2
    assert message in result.output
