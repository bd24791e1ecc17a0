"""Recommendation outcomes in the datamart, on the real database through Dagster: views, cart
additions and orders that echo an exposure's recommendation_id are attributed to it when they
are about a product it showed and within their window; the experiment aggregate follows with
its intervals; a later batch updates only the exposures and groups it touches, including an
exposure that lands after its outcome; malformed and unknown ids are counted, never
attributed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ml.experiment_stats import mean_interval, wilson
from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.config import CATALOG_TOPIC, EVENTS_TOPIC, EXPOSURES_TOPIC
from pulsemart.contracts import build_event, encode_event, key_for, topic_for
from tests.integration.datamart_support import build_datamart, check_results
from tests.integration.helpers import produce_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRICES = {"OUT-1": 2.5, "OUT-2": 4.0, "OUT-3": 1.25, "OUT-4": 3.0, "OUT-5": 10.0}
# Three days back at 10:00 UTC: every outcome below falls on that day or the next.
BASE = (datetime.now(UTC) - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
DAY = BASE.date()
CUSTOMER, SESSION = "outcome-customer", "outcome-session"


def _rid() -> str:
    return uuid.uuid4().hex


def _land(settings, events: list[dict]) -> None:
    """Produce the events to their topics, each with its key, and land and decide them."""
    for topic in (CATALOG_TOPIC, EVENTS_TOPIC, EXPOSURES_TOPIC):
        chosen = [e for e in events if topic_for(e["event_type"]) == topic]
        if chosen:
            produce_raw(
                settings,
                topic,
                [encode_event(e) for e in chosen],
                keys=[key_for(e) for e in chosen],
            )
    catch_up(settings, defs, [CATALOG_TOPIC, EVENTS_TOPIC, EXPOSURES_TOPIC])


def _exposure(rid, minutes, products, variant="champion", version="1", experiment=None, **extra):
    items = [{"product_id": p, "position": n, "because": []} for n, p in enumerate(products, 1)]
    return build_event(
        "recommendation_exposed",
        event_id=rid,
        event_time=BASE + timedelta(minutes=minutes),
        source="test",
        recommendation_id=rid,
        shopper_key="outcome-key",
        customer_key="outcome-key",
        session_id=SESSION,
        route="customer",
        variant=variant,
        model_name="recommender",
        model_version=version,
        items=items,
        experiment_id=experiment,
        **extra,
    )


def _view(rid, minutes, product):
    return build_event(
        "product_viewed",
        event_time=BASE + timedelta(minutes=minutes),
        source="test",
        customer_id=CUSTOMER,
        session_id=SESSION,
        product_id=product,
        category="outcomes",
        unit_price=PRICES[product],
        recommendation_id=rid,
    )


def _cart(rid, minutes, product, quantity):
    return build_event(
        "cart_updated",
        event_time=BASE + timedelta(minutes=minutes),
        source="test",
        customer_id=CUSTOMER,
        session_id=SESSION,
        product_id=product,
        quantity=quantity,
        unit_price=PRICES[product],
        recommendation_id=rid,
    )


def _order(rid, minutes, lines: dict[str, int]):
    return build_event(
        "order_placed",
        event_time=BASE + timedelta(minutes=minutes),
        source="test",
        order_id=f"OUT-{uuid.uuid4().hex[:8]}",
        customer_id=CUSTOMER,
        session_id=SESSION,
        lines=[
            {"line_id": n, "product_id": p, "quantity": q, "unit_price": PRICES[p]}
            for n, (p, q) in enumerate(lines.items(), 1)
        ],
        country="United Kingdom",
        currency="GBP",
        recommendation_id=rid,
    )


def _outcomes(db) -> dict[str, tuple]:
    rows = db.execute(
        "select recommendation_id, clicked, clicks, first_click_at, carted, purchased, orders, "
        "revenue, xmin::text from marts.fct_recommendation_outcomes"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


def _experiments(db) -> dict[tuple, tuple]:
    rows = db.execute(
        "select experiment_id, variant, model_version, exposures, clicks, purchases, revenue, "
        "revenue_sq, ctr, ctr_low, ctr_high, conversion, conversion_low, conversion_high, "
        "revenue_per_exposure, revenue_per_exposure_low, revenue_per_exposure_high, xmin::text "
        "from marts.agg_experiment_daily where exposure_date = %s",
        (DAY,),
    ).fetchall()
    return {r[:3]: r[3:] for r in rows}


def _attribution(db) -> dict[tuple, tuple]:
    rows = db.execute(
        "select event_date, event_type, with_recommendation_id, attributed, malformed, unknown, "
        "unmatched from marts.agg_outcome_attribution_daily"
    ).fetchall()
    return {r[:2]: r[2:] for r in rows}


def _assert_intervals(row: tuple) -> None:
    """ctr, conversion and revenue per exposure with the readout's own formulas."""
    exposures, clicks, purchases, revenue, revenue_sq = row[:5]
    expected = (
        wilson(clicks, exposures),
        wilson(purchases, exposures),
        mean_interval(float(revenue), float(revenue_sq), exposures),
    )
    for n, interval in enumerate(expected):
        assert row[5 + 3 * n : 8 + 3 * n] == pytest.approx(
            (interval.estimate, interval.low, interval.high), abs=1e-9
        )


def test_outcomes_attribute_to_their_exposures_and_follow_later_batches(fresh_stream, db, pii_key):
    settings = fresh_stream
    _land(
        settings,
        [
            build_event(
                "product_upserted",
                event_time=BASE - timedelta(days=1),
                source="test",
                product_id=product,
                description=f"outcome product {product}",
                category="outcomes",
                unit_price=price,
                currency="GBP",
            )
            for product, price in PRICES.items()
        ],
    )
    e1, e2, e3, e4, e5, late_exposure = (_rid() for _ in range(6))
    unknown, malformed = _rid(), "not-a-recommendation"
    _land(
        settings,
        [
            _exposure(e1, 0, ["OUT-1", "OUT-2"], "challenger", "2", experiment=1),
            _exposure(e2, 1, ["OUT-3"], experiment=1),
            _exposure(e3, 2, ["OUT-1"], "challenger", "2", experiment=1),
            _exposure(e4, 3, ["OUT-4", "OUT-5"]),
            _exposure(
                e5,
                4,
                ["OUT-1"],
                experiment=2,
                shadow_model_version="3",
                shadow_items=[
                    {"product_id": "OUT-2", "position": 1, "because": []},
                    {"product_id": "OUT-1", "position": 2, "because": ["OUT-3"]},
                ],
            ),
            _view(e1, 2, "OUT-1"),  # e1: two views of shown products, one click
            _view(e1, 4, "OUT-2"),
            _cart(e1, 5, "OUT-2", 1),
            _order(e1, 120, {"OUT-1": 2, "OUT-5": 1}),  # revenue: the shown line only, 2 x 2.5
            _view(e3, 3, "OUT-3"),  # not what e3 showed
            _view(e3, 2 + 45, "OUT-1"),  # after the click window
            _order(e2, 30 * 60, {"OUT-3": 1}),  # after the purchase window, the next day
            _view(late_exposure, 10, "OUT-4"),  # its exposure lands in a later batch
            _view(unknown, 6, "OUT-1"),
            _view(malformed, 6, "OUT-1"),
            _view(None, 7, "OUT-1"),  # from no recommendation: not counted at all
        ],
    )
    checks = check_results(build_datamart(db))
    assert [name for name, passed in checks.items() if not passed] == []

    shadow = db.execute(
        "select experiment_id, shadow_model_version, shadow_product_ids, product_ids "
        "from marts.fct_exposures where recommendation_id = %s",
        (e5,),
    ).fetchone()
    assert shadow == (2, "3", ["OUT-2", "OUT-1"], ["OUT-1"])

    outcomes = _outcomes(db)
    assert set(outcomes) == {e1, e2, e3, e4, e5}  # outcomes of unknown ids make no row
    clicked_at = BASE + timedelta(minutes=2)
    assert outcomes[e1][:7] == (True, 2, clicked_at, True, True, 1, Decimal(5))
    nothing = (False, 0, None, False, False, 0, Decimal(0))
    for rid in (e2, e3, e4, e5):
        assert outcomes[rid][:7] == nothing

    experiments = _experiments(db)
    assert set(experiments) == {
        (1, "challenger", "2"),
        (1, "champion", "1"),
        (2, "champion", "1"),
        (None, "champion", "1"),
    }
    challenger = experiments[(1, "challenger", "2")]
    assert challenger[:5] == (2, 1, 1, Decimal(5), Decimal(25))
    _assert_intervals(challenger)
    assert experiments[(None, "champion", "1")][:5] == (1, 0, 0, Decimal(0), Decimal(0))
    for row in experiments.values():
        _assert_intervals(row)

    next_day = DAY + timedelta(days=1)
    assert _attribution(db) == {
        (DAY, "product_viewed"): (7, 2, 1, 2, 2),
        (DAY, "cart_updated"): (1, 1, 0, 0, 0),
        (DAY, "order_placed"): (1, 1, 0, 0, 0),
        (next_day, "order_placed"): (1, 0, 0, 0, 1),
    }

    # A later batch: an order after e3 (its first outcome), and the exposure a view named.
    _land(
        settings,
        [
            _order(e3, 180, {"OUT-1": 1}),
            _exposure(late_exposure, 8, ["OUT-4"]),
        ],
    )
    checks = check_results(build_datamart(db))
    assert [name for name, passed in checks.items() if not passed] == []

    after = _outcomes(db)
    assert after[e3][:7] == (False, 0, None, False, True, 1, Decimal("2.5"))
    assert after[late_exposure][:7] == (True, 1, BASE + timedelta(minutes=10), False, False, 0, 0)
    for rid in (e1, e2, e4, e5):  # untouched: not even rewritten
        assert after[rid] == outcomes[rid]

    regrouped = _experiments(db)
    challenger = regrouped[(1, "challenger", "2")]
    assert challenger[:5] == (2, 1, 2, Decimal("7.5"), Decimal("31.25"))
    _assert_intervals(challenger)
    assert regrouped[(None, "champion", "1")][:5] == (2, 1, 0, Decimal(0), Decimal(0))
    for group in ((1, "champion", "1"), (2, "champion", "1")):
        assert regrouped[group] == experiments[group]

    assert _attribution(db) == {
        (DAY, "product_viewed"): (7, 3, 1, 1, 2),  # the late exposure's view: unknown no more
        (DAY, "cart_updated"): (1, 1, 0, 0, 0),
        (DAY, "order_placed"): (2, 2, 0, 0, 0),
        (next_day, "order_placed"): (1, 0, 0, 0, 1),
    }
    never = db.execute(
        "select count(*) from marts.fct_recommendation_outcomes where recommendation_id = any(%s)",
        ([unknown, malformed],),
    ).fetchone()[0]
    db.commit()
    assert never == 0

    # The daily full rebuild agrees with the incremental one.
    build_datamart(db, full_refresh=True)
    rebuilt = _outcomes(db)
    assert {k: v[:7] for k, v in rebuilt.items()} == {k: v[:7] for k, v in after.items()}
    assert {k: v[:-1] for k, v in _experiments(db).items()} == {
        k: v[:-1] for k, v in regrouped.items()
    }
    db.commit()
