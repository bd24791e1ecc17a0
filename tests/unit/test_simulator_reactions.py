"""Shoppers who react to recommendations (pulsemart/stream/simulator/reactions.py): they click
what suits their latent tastes, echo the response's id on the view, the cart addition and the
order, and so a recommender that knows their tastes earns more clicks than one that does not."""

from __future__ import annotations

import random
from collections import Counter

from pulsemart.stream.simulator import generate
from pulsemart.stream.simulator.catalog import build_catalog
from pulsemart.stream.simulator.customers import Checkout, build_customers, session
from pulsemart.stream.simulator.reactions import Shown, appeal, catalog_index


def _shop(seed: int = 5):
    rng = random.Random(seed)
    catalog = build_catalog(rng, 200)
    customers = build_customers(rng, 300, catalog.categories)
    return catalog, customers


def test_appeal_follows_the_customers_taste_and_reach():
    catalog, customers = _shop()
    customer = customers[0]
    weights = customer.category_weights(catalog.categories)
    favourite = max(weights, key=weights.__getitem__)
    least = min(weights, key=weights.__getitem__)
    cheap = min(catalog.by_category[favourite], key=lambda p: p.unit_price)
    other = min(catalog.by_category[least], key=lambda p: p.unit_price)
    assert appeal(weights, 100.0, cheap) == 1.0  # the favourite, well within reach
    assert appeal(weights, 100.0, other) < 0.5
    dear = appeal(weights, 1e-3, cheap)
    assert 0 < dear < 0.01  # far above their reach


def _clicks(recommender_for) -> tuple[int, int, Counter]:
    """Sessions of every customer with `recommender_for(customer)` as the API: (asks, clicks,
    kinds of events that echoed an id)."""
    catalog, customers = _shop()
    products = catalog_index(catalog)
    rng = random.Random(11)
    asks = 0
    echoed: Counter = Counter()

    for n, customer in enumerate(customers * 4):
        shown_list = recommender_for(customer, catalog)

        def recommend(customer_id, session_id, shown_list=shown_list, n=n):
            nonlocal asks
            asks += 1
            return Shown(f"{n:032x}", shown_list)

        for action in session(rng, customer, catalog, f"S{n}", recommend, products):
            if isinstance(action, Checkout):
                echoed["order_placed"] += action.recommendation_id is not None
            elif "recommendation_id" in action.fields:
                echoed[action.event_type] += 1
                assert action.fields["recommendation_id"] == f"{n:032x}"
    return asks, echoed["product_viewed"], echoed


def _tasteful(customer, catalog):
    weights = customer.category_weights(catalog.categories)
    favourite = max(weights, key=weights.__getitem__)
    return [p.product_id for p in catalog.by_category[favourite][:10]]


def _untasteful(customer, catalog):
    weights = customer.category_weights(catalog.categories)
    least = min(weights, key=weights.__getitem__)
    return [p.product_id for p in catalog.by_category[least][:10]]


def test_a_recommender_that_knows_the_tastes_earns_more_clicks_and_orders():
    asks, good_clicks, good = _clicks(_tasteful)
    asks_bad, bad_clicks, bad = _clicks(_untasteful)
    assert asks > 500 and asks_bad > 500
    assert good_clicks / asks > 3 * bad_clicks / asks_bad
    assert good["cart_updated"] > bad["cart_updated"]
    assert good["order_placed"] > 0
    assert good["order_placed"] >= bad["order_placed"]


def test_without_an_answer_the_shopper_browses_on_and_nothing_is_echoed():
    catalog, customers = _shop()
    rng = random.Random(3)
    actions = [
        a
        for n, c in enumerate(customers)
        for a in session(rng, c, catalog, f"S{n}", lambda c, s: None, catalog_index(catalog))
    ]
    assert actions
    assert not any("recommendation_id" in getattr(a, "fields", {}) for a in actions)


def test_the_hook_leaves_the_seeded_stream_alone_when_absent():
    assert list(generate(300, seed=4)) == list(generate(300, seed=4, recommend=None))
