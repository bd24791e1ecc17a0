"""Decisions, thresholds, flags, duplicates, holds and the contract."""

import dataclasses
import json

import pandas as pd

from pulsemart.quality import CatalogState, load_rules, run_batch
from tests.unit.quality.conftest import NOW, catalog_with, decide, only, order, product, raw, view


def test_clean_event_is_accepted_with_full_score(catalog):
    decision, row = only(decide(view(), catalog=catalog))
    assert decision == "accepted"
    assert row["score"] == 1.0 and row["confidence"] == 1.0
    assert json.loads(row["repairs"]) == [] and json.loads(row["flags"]) == []
    assert row["event_time"] == pd.Timestamp("2024-03-01T10:05:00Z")


def test_fix_threshold_decides_between_fixed_and_quarantined(catalog):
    rules = load_rules()
    strict = dataclasses.replace(
        rules, thresholds=dataclasses.replace(rules.thresholds, fix_confidence=0.995)
    )
    event = view(event_time="12/1/24 8:26")
    assert only(decide(event, catalog=catalog))[0] == "fixed"
    decision, row = only(decide(event, catalog=catalog, rules=strict))
    assert decision == "quarantined"
    assert json.loads(row["reasons"]) == ["low_confidence"]
    assert json.loads(row["explanation"])["repairs"][0]["rule_id"] == "time.format"


def test_guest_checkout_is_accepted_and_flagged(catalog):
    decision, row = only(decide(order(customer=None), catalog=catalog))
    assert decision == "accepted"
    assert {
        "rule_id": "order.guest_checkout",
        "field": "customer_id",
        "severity": "info",
    } in json.loads(row["flags"])


def test_cancellations_fees_and_adjustments_are_recognised(catalog):
    cat = catalog_with(product(), product("POST", 18.0, "POSTAGE"))
    lines = [
        {"line_id": 1, "product_id": "P00001", "quantity": -2, "unit_price": 2.55},
        {"line_id": 2, "product_id": "POST", "quantity": -1, "unit_price": 18.0},
    ]
    result = decide(
        order(eid="c1", lines=lines, event_type="order_cancelled", order_id="CSO1"), catalog=cat
    )
    decision, row = only(result)
    assert decision == "accepted"
    flags = {f["rule_id"] for f in json.loads(row["flags"])}
    assert {"order.cancellation", "line.fee_code"} <= flags
    assert result.order_lines["is_cancellation"].all()
    adjustment = [{"line_id": 1, "product_id": "P00001", "quantity": -5, "unit_price": 0.0}]
    decision, row = only(decide(order(lines=adjustment), catalog=cat))
    assert decision == "accepted"
    assert "line.stock_adjustment" in {f["rule_id"] for f in json.loads(row["flags"])}
    fee = [{"line_id": 1, "product_id": "M", "quantity": -1, "unit_price": 0.5}]
    cat = catalog_with(product(), product("M", 1.0, "Manual"))
    assert only(decide(order(lines=fee), catalog=cat))[0] == "accepted"


def test_negative_quantity_on_a_sale_is_a_contract_failure(catalog):
    lines = [{"line_id": 1, "product_id": "P00001", "quantity": -2, "unit_price": 2.55}]
    decision, row = only(decide(order(lines=lines), catalog=catalog))
    assert decision == "quarantined"
    assert "contract:order_placed.lines:quantity:gt(0)" in json.loads(row["reasons"])


def test_future_timestamp_is_quarantined(catalog):
    decision, row = only(decide(view(moment="2049-03-01T10:00:00.000Z"), catalog=catalog))
    assert decision == "quarantined" and json.loads(row["reasons"]) == ["time.future"]


def test_out_of_order_is_accepted_and_flagged(catalog):
    early = view(eid="v2", moment="2024-03-01T09:00:00.000Z")
    result = decide(view(), early, catalog=catalog)
    assert list(result.clean["decision"]) == ["accepted", "accepted"]
    assert "time.out_of_order" in result.clean["flags"].iloc[1]


def test_duplicates_within_and_across_batches(catalog):
    event = view()
    first = decide(event, event, catalog=catalog)
    assert len(first.clean) == 1 and json.loads(first.quarantine["reasons"].iloc[0]) == [
        "duplicate"
    ]
    seen = set(first.clean["event_id"])
    again = decide(event, catalog=first.catalog, seen_event_ids=seen)
    assert only(again)[0] == "quarantined"
    by_query = decide(
        event, catalog=first.catalog, seen_event_ids=lambda ids: [i for i in ids if i in seen]
    )
    assert json.loads(by_query.quarantine["reasons"].iloc[0]) == ["duplicate"]


def test_unknown_product_is_held_then_released(catalog):
    held = decide(view(pid="P77777"), catalog=catalog)
    assert len(held.held) == 1 and held.conservation["held"] == 1
    assert held.held["first_held_at"].iloc[0] == NOW
    still = run_batch(raw(), held.catalog, now=NOW + pd.Timedelta(minutes=5), pending=held.held)
    assert len(still.held) == 1 and still.held["first_held_at"].iloc[0] == NOW
    released = run_batch(
        raw(product("P77777")), still.catalog, now=NOW + pd.Timedelta(minutes=6), pending=still.held
    )
    assert set(released.clean["event_id"]) == {"v1", "up-P77777-2.55"}
    assert released.held.empty and released.conservation["balanced"]


def test_unknown_product_is_quarantined_after_the_timeout(catalog):
    held = decide(
        order(lines=[{"line_id": 1, "product_id": "P99999", "quantity": 1, "unit_price": 1.0}]),
        catalog=catalog,
    )
    later = run_batch(raw(), held.catalog, now=NOW + pd.Timedelta(hours=1), pending=held.held)
    decision, row = only(later)
    assert decision == "quarantined"
    assert json.loads(row["reasons"]) == ["unknown_product_timeout"]


def test_catalog_learns_prices_and_round_trips_as_records():
    cat = catalog_with(product(price=2.0))
    cat = decide(build_price_change(), catalog=cat).catalog
    assert cat.products["P00001"].unit_price == 3.0
    again = CatalogState.from_records(cat.to_records())
    assert again.to_records() == cat.to_records()


def build_price_change():
    from pulsemart.contracts import build_event

    return build_event(
        "price_changed",
        event_id="pc1",
        event_time="2024-03-01T11:00:00.000Z",
        product_id="P00001",
        unit_price=3.0,
        previous_unit_price=2.0,
        currency="GBP",
    )


def test_price_repair_uses_the_price_at_the_event_time():
    cat = catalog_with(product(price=2.0))
    result = decide(
        build_price_change(),
        view(eid="late", price=0.0, moment="2024-03-01T10:30:00.000Z"),
        catalog=cat,
    )
    row = result.clean.set_index("event_id").loc["late"]
    assert json.loads(row["payload"])["unit_price"] == 2.0


def test_injection_looking_text_is_quarantined(catalog):
    decision, row = only(decide(view(category="x'; DROP TABLE users; --"), catalog=catalog))
    assert decision == "quarantined" and "text.suspicious" in json.loads(row["reasons"])


def test_unknown_field_is_quarantined(catalog):
    decision, row = only(decide(view(extra="?"), catalog=catalog))
    assert decision == "quarantined" and json.loads(row["reasons"]) == ["schema.unknown_field"]


def test_contract_failures_are_counted_with_samples(catalog):
    event = view()
    del event["session_id"]
    result = decide(event, catalog=catalog)
    assert only(result)[0] == "quarantined"
    assert result.contract_failures.to_dict("records") == [
        {"schema": "product_viewed", "column": "session_id", "check": "not_nullable", "failures": 1}
    ]
    meta = result.metadata()
    assert meta["failure_counts"] == {"product_viewed:session_id:not_nullable": 1}
    assert meta["samples"][0]["check"] == "not_nullable"
    assert meta["conservation"]["balanced"]
