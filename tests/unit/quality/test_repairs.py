"""Each repair on concrete dirty inputs, with its explanation."""

import json

import pandas as pd
import pytest

from pulsemart.quality import CatalogState, run_batch
from pulsemart.quality.timestamps import classify, to_canonical, to_utc
from tests.unit.quality.conftest import catalog_with, decide, only, order, product, raw, view


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("12/1/10 8:26", "2010-12-01T08:26:00.000Z"),
        ("3/1/24 10:00", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01 10:00:00", "2024-03-01T10:00:00.000Z"),
        ("2024-03-01T10:00:00", "2024-03-01T10:00:00.000Z"),
        (1709287223456, "2024-03-01T10:00:23.456Z"),
        ("1709287223456", "2024-03-01T10:00:23.456Z"),
        ("2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00.000Z"),
    ],
)
def test_timestamps_in_every_format_become_iso_utc(found, expected):
    values = pd.Series([found], dtype=object)
    assert to_canonical(to_utc(values)).iloc[0] == expected


def test_unreadable_times_are_not_guessed():
    values = pd.Series(["yesterday", 20240301100000000.0, True, None], dtype=object)
    assert classify(values).isna().all()


def test_us_timestamp_is_fixed_and_explained(catalog):
    decision, row = only(decide(view(event_time="12/1/24 8:26"), catalog=catalog))
    assert decision == "fixed"
    assert row["event_time"] == pd.Timestamp("2024-12-01T08:26:00Z")
    (repair,) = json.loads(row["repairs"])
    assert repair == {
        "rule_id": "time.format",
        "field": "event_time",
        "before": "12/1/24 8:26",
        "after": "2024-12-01T08:26:00.000Z",
        "confidence": 0.98,
    }
    assert json.loads(row["payload"])["event_time"] == "2024-12-01T08:26:00.000Z"


@pytest.mark.parametrize(
    ("found", "expected", "confidence"),
    [
        ("£2.55", 2.55, 0.99),
        ("GBP 2.55", 2.55, 0.99),
        ("2,55", 2.55, 0.9),
        ("2.55", 2.55, 0.99),
    ],
)
def test_price_text_becomes_a_number(catalog, found, expected, confidence):
    decision, row = only(decide(view(price=found), catalog=catalog))
    assert decision == "fixed"
    assert json.loads(row["payload"])["unit_price"] == expected
    assert row["confidence"] == pytest.approx(confidence)


def test_foreign_currency_is_not_trusted(catalog):
    decision, row = only(decide(view(price="$2.55"), catalog=catalog))
    assert decision == "quarantined"
    assert "low_confidence" in json.loads(row["reasons"])


def test_nonpositive_view_price_comes_from_the_catalog(catalog):
    decision, row = only(decide(view(price=0.0), catalog=catalog))
    assert decision == "fixed"
    assert json.loads(row["payload"])["unit_price"] == 2.55
    (repair,) = json.loads(row["repairs"])
    assert repair["rule_id"] == "price.nonpositive" and repair["before"] == 0.0


def test_sign_flip_is_repaired_with_high_confidence(catalog):
    decision, row = only(decide(view(price=-2.55), catalog=catalog))
    assert decision == "fixed" and row["confidence"] >= 0.99


def test_price_confidence_follows_price_history():
    stable = CatalogState()
    stable.learn_product("P1", None, unit_price=2.0)
    for price in (2.0, 2.0):
        stable.set_price("P1", price, None)
    volatile = CatalogState()
    volatile.learn_product("P1", None, unit_price=1.0)
    for price in (3.0, 1.0, 3.0):
        volatile.set_price("P1", price, None)
    ids = pd.Series(["P1"])
    assert stable.price_confidence(ids).iloc[0] == 1.0
    assert volatile.price_confidence(ids).iloc[0] == pytest.approx(0.5)


def test_volatile_price_history_quarantines_a_guess():
    cat = catalog_with(product(price=1.0))
    for n, price in enumerate((3.0, 1.0, 3.0, 1.0)):
        cat = decide(view(eid=f"x{n}", price=price), catalog=cat).catalog
    decision, row = only(decide(view(price=0.0), catalog=cat))
    assert decision == "quarantined"
    assert "low_confidence" in json.loads(row["reasons"])


def test_order_line_price_and_description_from_catalog(catalog):
    lines = [
        {
            "line_id": 1,
            "product_id": "P00001",
            "quantity": 2,
            "unit_price": 0.0,
            "description": None,
        }
    ]
    result = decide(order(lines=lines), catalog=catalog)
    decision, row = only(result)
    assert decision == "fixed"
    line = json.loads(row["payload"])["lines"][0]
    assert line["unit_price"] == 2.55 and line["description"] == "RED MUG"
    ol = result.order_lines.iloc[0]
    assert ol["unit_price_as_found"] == 0.0 and ol["unit_price"] == 2.55


def test_text_is_trimmed(catalog):
    decision, row = only(decide(view(category="  kitchen   tools "), catalog=catalog))
    assert decision == "fixed"
    assert json.loads(row["payload"])["category"] == "kitchen tools"


def test_wrong_types_are_coerced(catalog):
    event = order(lines=None)
    event["lines"] = json.dumps(event["lines"])
    decision, row = only(decide(event, catalog=catalog))
    assert decision == "fixed"
    assert isinstance(json.loads(row["payload"])["lines"], list)


def test_missing_customer_comes_from_the_key(catalog):
    event = view()
    del event["customer_id"]
    result = decide(event, catalog=catalog)  # the raw key is None here: nothing to take
    assert only(result)[0] == "quarantined"
    frame = raw(event)
    frame.loc[0, "key"] = b"C000001"
    decision, row = only(run_batch(frame, catalog, now="2026-11-26"))
    assert decision == "fixed"
    assert json.loads(row["payload"])["customer_id"] == "C000001"
