"""The engine over whole streams: simulator truth and the real retail sample."""

import json

import pandas as pd
import pytest
from pulsemart_bench.simcheck import combined, evaluate_stream, run_stream

from pulsemart.quality import quarantined_lines
from pulsemart.quality.evaluate import calibration
from pulsemart.stream.simulator import generate
from tests.data import RETAIL_SAMPLE as SAMPLE


def test_simulator_metrics_meet_the_targets():
    simulated = list(generate(20_000, seed=1, dirty_rate=0.1))
    metrics = evaluate_stream(simulated, batch_size=5_000, now="2026-11-26T00:00:00Z")
    assert metrics["conservation_balanced"]
    assert metrics["records_corrupted"] > 1_500
    assert metrics["detection_recall"] >= 0.99
    assert metrics["repair_precision"] >= 0.98
    assert metrics["clean_quarantine_rate"] <= 0.001
    assert metrics["ece"] <= 0.05


def test_calibration_buckets():
    result = calibration([(0.95, True), (0.95, False), (0.15, False)], buckets=10)
    assert [r["records"] for r in result["calibration"]] == [1, 2]
    assert result["ece"] == pytest.approx((1 * 0.15 + 2 * 0.45) / 3)


def test_every_real_line_is_accounted_for_exactly_once():
    from pulsemart.stream.replay import replay_events

    events = list(replay_events(SAMPLE))
    results, _ = run_stream(events, batch_size=10_000, now="2026-11-26T00:00:00Z")
    assert all(r.conservation["balanced"] for r in results)
    released = combined(results, "order_lines")
    held_back = quarantined_lines(combined(results, "quarantine"))
    line_ids = pd.concat([released["line_id"], held_back["line_id"]])
    assert len(line_ids) == 240_007 and line_ids.is_unique
    source = pd.read_parquet(SAMPLE)
    expected = round(float((source["Quantity"] * source["UnitPrice"]).sum()), 2)
    found = (released["quantity_as_found"] * released["unit_price_as_found"]).sum() + sum(
        float(q) * float(p)
        for q, p in zip(held_back["quantity"], held_back["unit_price"], strict=True)
    )
    assert round(float(found), 2) == expected
    clean = combined(results, "clean")
    flags = {f["rule_id"] for text in clean["flags"] for f in json.loads(text)}
    assert {
        "order.cancellation",
        "order.guest_checkout",
        "line.fee_code",
        "line.stock_adjustment",
    } <= flags
