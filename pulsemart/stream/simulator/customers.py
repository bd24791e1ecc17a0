"""Customers with latent tastes, and the sessions in which they browse, search, cart and buy.

Each customer prefers a few categories and a price level; a session is a generator of
actions whose choices follow those preferences, so downstream recommenders and propensity
models have a real signal to learn.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pulsemart.stream.simulator.catalog import CATEGORIES, Catalog, Product
from pulsemart.stream.simulator.reactions import LOOK, Recommend, pick

# Weighted like the real retail data: mostly domestic, a tail of European export customers.
COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands", "Belgium")
COUNTRY_WEIGHTS = (85, 3, 3, 3, 2, 2, 2)
MEAN_ACTION_GAP_S = 35.0


@dataclass(slots=True)
class Customer:
    customer_id: str
    country: str
    category_cum_weights: list[float]  # aligned with Catalog.categories, for bisect sampling
    price_level: float  # how far above a category's typical price they are willing to go
    buy_propensity: float
    customization_affinity: float

    def favourite_category(self, rng: random.Random, categories: tuple[str, ...]) -> str:
        draw = rng.random() * self.category_cum_weights[-1]
        return categories[bisect.bisect(self.category_cum_weights, draw)]

    def category_weights(self, categories: tuple[str, ...]) -> dict[str, float]:
        previous = [0.0, *self.category_cum_weights[:-1]]
        return {
            c: high - low
            for c, high, low in zip(categories, self.category_cum_weights, previous, strict=True)
        }


class Action(NamedTuple):
    """Something a session does `gap_s` seconds after its previous action."""

    gap_s: float
    event_type: str
    fields: dict


class Checkout(NamedTuple):
    """A session's request to buy its cart; the world checks stock and issues the order."""

    gap_s: float
    customer: Customer
    session_id: str
    items: list[tuple[Product, int, str | None]]
    # The recommendations response that led to the cart's latest recommended product, if any.
    recommendation_id: str | None = None


def build_customers(rng: random.Random, n_customers: int, categories: tuple[str, ...]):
    customers = []
    for index in range(n_customers):
        # A small gamma shape concentrates each customer's taste on one or two categories.
        weights = [rng.gammavariate(0.4, 1.0) + 1e-6 for _ in categories]
        customers.append(
            Customer(
                customer_id=f"C{index + 1:06d}",
                country=rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0],
                category_cum_weights=list(itertools.accumulate(weights)),
                price_level=rng.lognormvariate(0.1, 0.4),
                buy_propensity=rng.betavariate(2, 5),
                customization_affinity=rng.betavariate(1, 6),
            )
        )
    return customers


def session(
    rng: random.Random,
    customer: Customer,
    catalog: Catalog,
    session_id: str,
    recommend: Recommend | None = None,
    by_id: dict[str, Product] | None = None,
) -> Iterator[Action | Checkout]:
    """The actions of one visit: searches or category browsing, views, cart changes, checkout.
    With `recommend` (and the catalog's products `by_id`), the shopper also looks at the
    recommendations now and then and clicks what suits them (reactions.py)."""
    who = {"customer_id": customer.customer_id, "session_id": session_id}
    cart: dict[str, tuple[Product, int, str | None]] = {}
    recommended: dict[str, str] = {}  # product_id -> the recommendation_id it was clicked in
    candidates: list[Product] = []
    referrer = "direct"
    for _ in range(1 + int(rng.expovariate(1 / 6))):
        if recommend is not None and by_id is not None and rng.random() < LOOK:
            clicked = _react(rng, customer, catalog, session_id, recommend, by_id)
            if clicked is not None:
                product, recommendation_id = clicked
                recommended[product.product_id] = recommendation_id
                yield from _view_and_cart(rng, customer, who, product, cart, recommendation_id)
                continue
        if not candidates or rng.random() < 0.15:
            category = customer.favourite_category(rng, catalog.categories)
            if rng.random() < 0.45:
                search_fields, candidates = _search(rng, customer, catalog, category)
                yield Action(_gap(rng), "search_performed", {**who, **search_fields})
                referrer = "search"
            else:
                products = catalog.by_category[category]
                candidates = rng.sample(products, min(12, len(products)))
                referrer = "category"
            if not candidates:
                continue
        product = rng.choice(candidates)
        yield from _view_and_cart(rng, customer, who, product, cart, None, referrer)
        referrer = "recommendation" if rng.random() < 0.2 else referrer
    if cart and rng.random() < customer.buy_propensity * 1.5:
        in_cart = [recommended[p] for p in cart if p in recommended]
        yield Checkout(
            _gap(rng), customer, session_id, list(cart.values()), in_cart[-1] if in_cart else None
        )


def _react(
    rng: random.Random,
    customer: Customer,
    catalog: Catalog,
    session_id: str,
    recommend: Recommend,
    by_id: dict[str, Product],
) -> tuple[Product, str] | None:
    shown = recommend(customer.customer_id, session_id)
    if shown is None:
        return None
    weights = customer.category_weights(catalog.categories)
    clicked = pick(rng, shown, by_id, weights, customer.price_level)
    return None if clicked is None else (clicked, shown.recommendation_id)


def _view_and_cart(
    rng: random.Random,
    customer: Customer,
    who: dict,
    product: Product,
    cart: dict[str, tuple[Product, int, str | None]],
    recommendation_id: str | None,
    referrer: str = "recommendation",
) -> Iterator[Action]:
    """A view of `product`, then perhaps a cart addition (or a removal of something else)."""
    echo = {"recommendation_id": recommendation_id} if recommendation_id else {}
    yield Action(
        _gap(rng),
        "product_viewed",
        {
            **who,
            "product_id": product.product_id,
            "category": product.category,
            "unit_price": product.unit_price,
            "referrer": referrer,
            **echo,
        },
    )
    if product.available and rng.random() < _add_probability(customer, product):
        quantity = 1 + int(rng.expovariate(0.6))
        options = product.customization_options
        wants_option = options and rng.random() < customer.customization_affinity
        choice = rng.choice(options) if wants_option else None
        cart[product.product_id] = (product, quantity, choice)
        fields = _cart_fields(who, product, quantity, choice)
        yield Action(_gap(rng), "cart_updated", {**fields, **echo})
    elif cart and rng.random() < 0.1:
        removed, quantity, choice = cart.pop(rng.choice(list(cart)))
        yield Action(_gap(rng), "cart_updated", _cart_fields(who, removed, -quantity, choice))


def _gap(rng: random.Random) -> float:
    return 2.0 + rng.expovariate(1 / MEAN_ACTION_GAP_S)


def _add_probability(customer: Customer, product: Product) -> float:
    affordable = customer.price_level * CATEGORIES[product.category][0]
    return 0.15 * min(1.0, affordable / product.unit_price)


def _cart_fields(who: dict, product: Product, quantity: int, customization: str | None) -> dict:
    return {
        **who,
        "product_id": product.product_id,
        "quantity": quantity,
        "unit_price": product.unit_price,
        "customization": customization,
    }


def _search(rng: random.Random, customer: Customer, catalog: Catalog, category: str):
    """A query for a noun of the category, optional filters, and the products that match."""
    typical_price, nouns, _ = CATEGORIES[category]
    noun = rng.choice(nouns)
    price_max = round(typical_price * customer.price_level * 1.5, 2) if rng.random() < 0.4 else None
    price_min = round(typical_price * 0.3, 2) if price_max and rng.random() < 0.2 else None
    options = [o for p in catalog.by_category[category] for o in p.customization_options]
    wanted_option = (
        rng.choice(options) if options and rng.random() < customer.customization_affinity else None
    )
    in_stock = True if rng.random() < 0.3 else None
    needle = noun.upper()
    results = [
        p
        for p in catalog.by_category[category]
        if needle in p.description
        and (price_max is None or p.unit_price <= price_max)
        and (price_min is None or p.unit_price >= price_min)
        and (wanted_option is None or wanted_option in p.customization_options)
        and (not in_stock or p.available)
    ][:10]
    fields = {
        "query": noun,
        "filter_price_min": price_min,
        "filter_price_max": price_max,
        "filter_category": category if rng.random() < 0.5 else None,
        "filter_customization": wanted_option,
        "filter_in_stock": in_stock,
        "result_product_ids": [p.product_id for p in results],
    }
    return fields, results
