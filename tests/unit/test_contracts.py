"""The contracts: the builder and the derived Pandera schemas agree and enforce the rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandera.pandas as pa
import pytest

from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC, EXPOSURES_TOPIC
from pulsemart.contracts import (
    CONTRACTS,
    ENVELOPE_FIELDS,
    SCHEMA_VERSION,
    ContractError,
    build_event,
    encode_event,
    events_frame,
    key_for,
    order_lines_frame,
    order_lines_schema,
    pandera_schema,
    topic_for,
)

TIME = "2024-03-01T10:00:00.000Z"
LINE = {
    "line_id": 1,
    "product_id": "P00001",
    "quantity": 2,
    "unit_price": 2.55,
    "customization": None,
}
ORDER = {
    "order_id": "SO1",
    "customer_id": "C000001",
    "session_id": "S1",
    "lines": [LINE],
    "country": "United Kingdom",
    "currency": "GBP",
}
# A valid instance of every event type; a new contract fails `test_every_contract_has_example`
# until it gets one here, so every contract is exercised by the tests below.
EXAMPLES = {
    "product_viewed": {
        "customer_id": "C000001",
        "session_id": "S1",
        "product_id": "P00001",
        "category": "kitchen",
        "unit_price": 2.55,
        "referrer": "search",
    },
    "search_performed": {
        "customer_id": "C000001",
        "session_id": "S1",
        "query": "mug",
        "filter_price_min": None,
        "filter_price_max": 5.0,
        "filter_category": "kitchen",
        "filter_customization": None,
        "filter_in_stock": True,
        "result_product_ids": ["P00001"],
    },
    "cart_updated": {
        "customer_id": "C000001",
        "session_id": "S1",
        "product_id": "P00001",
        "quantity": -1,
        "unit_price": 2.55,
        "customization": "gift_wrap",
    },
    "order_placed": ORDER,
    "order_cancelled": {
        **ORDER,
        "order_id": "CSO1",
        "customer_id": None,
        "lines": [{**LINE, "quantity": -2}],
        "cancels_order_id": "SO1",
    },
    "price_changed": {
        "product_id": "P00001",
        "unit_price": 2.95,
        "previous_unit_price": 2.55,
        "currency": "GBP",
    },
    "availability_changed": {
        "product_id": "P00001",
        "stock": 0,
        "available": False,
        "reason": "sold_out",
    },
    "product_customized": {"product_id": "P00001", "customization_options": ["engraving"]},
    "product_upserted": {
        "product_id": "P00001",
        "description": "RETRO MUG",
        "category": "kitchen",
        "unit_price": 2.55,
        "currency": "GBP",
        "stock": 12,
        "customization_options": [],
    },
    "recommendation_exposed": {
        "recommendation_id": "r-1",
        "shopper_key": "k" * 64,
        "customer_key": "k" * 64,
        "session_id": "S1",
        "route": "customer",
        "variant": "champion",
        "model_name": "pulsemart-recommender",
        "model_version": "3",
        "items": [
            {"product_id": "P00001", "position": 1, "because": ["P00009"]},
            {"product_id": "P00002", "position": 2, "because": []},
        ],
    },
}


def example(event_type: str, event_id: str = "e1", **overrides) -> dict:
    fields = {**EXAMPLES[event_type], **overrides}
    return build_event(event_type, event_id=event_id, event_time=TIME, **fields)


def failures(schema: pa.DataFrameSchema, frame) -> set[tuple[str, str]]:
    """(column, check) pairs the schema reports under lazy validation; empty when valid."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
        return set(zip(cases["column"].astype(str), cases["check"].astype(str), strict=True))
    return set()


def violation(rule) -> object:
    """A value of the right type that breaks `rule`."""
    kind, args = rule
    return {
        "gt": lambda: args[0],
        "ge": lambda: args[0] - 1,
        "lt": lambda: args[0],
        "ne": lambda: args[0],
        "isin": lambda: "not-a-member",
        "str_length": lambda: "x" * (args[1] + 1),
        "matches": lambda: "no match!",
        "iso8601": lambda: "12/1/10 8:26",
    }[kind]()


def test_every_contract_has_example():
    assert set(EXAMPLES) == set(CONTRACTS)


@pytest.mark.parametrize("event_type", CONTRACTS)
def test_built_event_is_flat_envelope_then_fields(event_type):
    event = example(event_type)
    contract = CONTRACTS[event_type]
    assert list(event) == list(ENVELOPE_FIELDS) + [spec.name for spec in contract.fields]
    assert event["schema_version"] == SCHEMA_VERSION
    assert event["source"] == "simulator"
    assert json.loads(encode_event(event)) == event
    assert topic_for(event_type) == contract.topic
    assert key_for(event) == event[contract.key_field]


@pytest.mark.parametrize("event_type", CONTRACTS)
def test_schema_accepts_built_events(event_type):
    frame = events_frame([example(event_type, "e1"), example(event_type, "e2")])
    assert failures(pandera_schema(event_type), frame) == set()
    if CONTRACTS[event_type].line_fields:
        lines = order_lines_frame(frame.to_dict("records"))
        assert failures(order_lines_schema(event_type), lines) == set()


@pytest.mark.parametrize("event_type", CONTRACTS)
def test_schema_columns_mirror_contract(event_type):
    """Builder and schema derive from one declaration, so they cannot drift apart."""
    contract = CONTRACTS[event_type]
    columns = pandera_schema(event_type).columns
    assert list(columns) == list(ENVELOPE_FIELDS) + [spec.name for spec in contract.fields]
    for spec in contract.fields:
        assert columns[spec.name].required == spec.required
        assert columns[spec.name].nullable == spec.nullable


@pytest.mark.parametrize("event_type", CONTRACTS)
def test_builder_refuses_each_missing_required_field(event_type):
    for spec in CONTRACTS[event_type].fields:
        fields = {k: v for k, v in EXAMPLES[event_type].items() if k != spec.name}
        if spec.required:
            with pytest.raises(ContractError, match=re.escape(repr(spec.name))):
                build_event(event_type, event_id="e1", event_time=TIME, **fields)
        else:
            event = build_event(event_type, event_id="e1", event_time=TIME, **fields)
            assert event[spec.name] is None


@pytest.mark.parametrize("event_type", CONTRACTS)
def test_schema_rejects_each_rule_violation_and_wrong_type(event_type):
    contract = CONTRACTS[event_type]
    for spec in contract.fields:
        for rule in spec.rules:
            frame = events_frame([example(event_type), example(event_type, "e2")])
            frame.at[1, spec.name] = violation(rule)
            assert failures(pandera_schema(event_type), frame) == {(spec.name, rule.describe())}
        frame = events_frame([example(event_type)])
        frame.at[0, spec.name] = object()
        assert (spec.name, f"dtype({spec.dtype})") in failures(pandera_schema(event_type), frame)


@pytest.mark.parametrize("event_type", ["order_placed", "order_cancelled"])
def test_line_schema_rejects_each_rule_violation(event_type):
    for spec in CONTRACTS[event_type].line_fields:
        for rule in spec.rules:
            lines = order_lines_frame([example(event_type)])
            lines.at[0, spec.name] = violation(rule)
            assert (spec.name, rule.describe()) in failures(order_lines_schema(event_type), lines)


def test_schema_reports_the_bad_rows_only():
    events = [
        example("product_upserted", "ok"),
        example("product_upserted", "negative", unit_price=-1.0),
        example("product_upserted", "text", unit_price="£2.55"),
        example("product_upserted", "ok"),  # a re-sent event
        {**example("product_upserted", "naive"), "event_time": "2024-03-01 10:00:00"},
        {**example("product_upserted", "wrong-type"), "event_type": "price_changed"},
    ]
    missing = example("product_upserted", "missing")
    del missing["unit_price"]  # required; stock, category and options may be left out
    frame = events_frame(events + [missing])
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        pandera_schema("product_upserted").validate(frame, lazy=True)
    cases = caught.value.failure_cases
    assert sorted(cases["index"].tolist()) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "items",
    [
        [{"product_id": "P1", "position": 0, "because": []}],  # positions start at 1
        [{"product_id": "", "position": 1, "because": []}],
        [{"product_id": "P1", "position": 1}],  # because is required (empty when none)
        [{"product_id": "P1", "position": 1, "because": [7]}],
        [{"product_id": "P1", "position": "1", "because": []}],
        ["P1"],
        "P1",
    ],
)
def test_an_exposure_s_items_are_products_with_positions_and_reasons(items):
    frame = events_frame([example("recommendation_exposed", items=items)])
    assert failures(pandera_schema("recommendation_exposed"), frame) == {
        ("items", "dtype(shown_items)")
    }


def test_an_exposure_may_show_nothing():
    frame = events_frame([example("recommendation_exposed", items=[])])
    assert failures(pandera_schema("recommendation_exposed"), frame) == set()


@pytest.mark.parametrize("event_type", ["product_viewed", "cart_updated", "order_placed"])
@pytest.mark.parametrize(
    "recommendation_id", [None, "0123456789abcdef0123456789abcdef", "not-one-of-ours", ""]
)
def test_an_outcome_may_echo_any_recommendation_id_and_stays_valid(event_type, recommendation_id):
    """A malformed or unknown id is the datamart's to count, never a reason to quarantine."""
    with_id = example(event_type, recommendation_id=recommendation_id)
    without = {k: v for k, v in example(event_type, "e2").items() if k != "recommendation_id"}
    frame = events_frame([with_id, without])
    assert failures(pandera_schema(event_type), frame) == set()


def test_order_quantity_signs():
    placed = order_lines_frame([example("order_placed", lines=[{**LINE, "quantity": -1}])])
    assert ("quantity", "gt(0)") in failures(order_lines_schema("order_placed"), placed)
    cancelled = order_lines_frame([example("order_cancelled", lines=[LINE])])
    assert ("quantity", "lt(0)") in failures(order_lines_schema("order_cancelled"), cancelled)


def test_builder_rejects_unknown_type_and_fields():
    with pytest.raises(ContractError, match="unknown event type 'page_viewed'"):
        build_event("page_viewed", event_id="e1", event_time=TIME)
    with pytest.raises(ContractError, match="colour"):
        example("product_viewed", colour="red")
    with pytest.raises(ContractError, match="line 1: required field 'quantity'"):
        example("order_placed", lines=[{"line_id": 1, "product_id": "P1", "unit_price": 1.0}])
    with pytest.raises(ContractError, match="'unit_price' must not be null"):
        example("price_changed", unit_price=None)


def test_topics_and_keys():
    assert {c.topic for c in CONTRACTS.values()} == {EVENTS_TOPIC, CATALOG_TOPIC, EXPOSURES_TOPIC}
    keys = {
        CATALOG_TOPIC: "product_id",
        EVENTS_TOPIC: "customer_id",
        EXPOSURES_TOPIC: "shopper_key",
    }
    for contract in CONTRACTS.values():
        assert contract.key_field == keys[contract.topic]
    assert key_for(example("order_cancelled")) is None  # guest order


def test_docs_describe_every_event_type_and_field():
    docs = (Path(__file__).parents[2] / "docs" / "events.md").read_text(encoding="utf-8")
    for event_type, contract in CONTRACTS.items():
        assert f"`{event_type}`" in docs
        for spec in contract.fields + contract.line_fields:
            assert f"`{spec.name}`" in docs, f"{event_type}.{spec.name} is not documented"
