"""Shoppers who look at what the serving API recommends and click what suits their tastes.

With a `Recommend` hook (`pulsemart simulate --react-to URL`; `pulsemart up` sets it), a
session now and then asks the API for the customer's recommendations in that session. The
shopper scans the list top down (the cascade model of search clicks): each position is looked
at with probability `EXAMINE ** (position - 1)`, and a product looked at is clicked with a
probability that grows with how well it suits the customer's latent tastes: their weight for
its category and whether its price is within their reach. The first click becomes a view that
echoes the response's `recommendation_id`, and so do a cart addition and the order that
follow. So a recommender that knows the customers' tastes earns more clicks and purchases
than one that does not, which an experiment can measure (docs/ml.md).

Without the hook the simulator draws exactly as before: the stream stays a function of the
seed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import NamedTuple

from pulsemart.stream.simulator.catalog import CATEGORIES, Catalog, Product

log = logging.getLogger(__name__)

LOOK = 0.3  # chance that a session step looks at the recommendations
EXAMINE = 0.8  # chance of looking at the next position after one not clicked
CLICK = 0.3  # click chance of a product of the customer's favourite category within reach
TIMEOUT_S = 1.0


class Shown(NamedTuple):
    recommendation_id: str
    product_ids: list[str]


# (customer_id, session_id) -> what the API showed, or None when it could not answer
Recommend = Callable[[str, str], Shown | None]


def appeal(category_weights: dict[str, float], price_level: float, product: Product) -> float:
    """How much a product suits a customer, in [0, 1]: their weight for its category relative
    to their favourite's, times 1 when its price is within their reach (less above it)."""
    taste = category_weights.get(product.category, 0.0) / max(category_weights.values())
    affordable = price_level * CATEGORIES[product.category][0]
    return taste * min(1.0, affordable / product.unit_price)


def pick(
    rng: random.Random,
    shown: Shown,
    products: dict[str, Product],
    category_weights: dict[str, float],
    price_level: float,
) -> Product | None:
    """The product the shopper clicks in `shown`, or None (they looked and moved on)."""
    for position, product_id in enumerate(shown.product_ids):
        if position and rng.random() >= EXAMINE:
            return None
        product = products.get(product_id)
        if product is None:
            continue
        if rng.random() < CLICK * appeal(category_weights, price_level, product):
            return product
    return None


def api_recommender(base_url: str, api_key: str | None) -> Recommend:
    """A `Recommend` over the serving API's `/customers/{id}/recommendations`. An error or a
    timeout is no recommendation (logged once per kind), never a failure of the simulator."""
    import httpx

    client = httpx.Client(
        base_url=base_url.rstrip("/"),
        headers={"X-API-Key": api_key} if api_key else {},
        timeout=TIMEOUT_S,
    )
    failures: set[str] = set()

    def recommend(customer_id: str, session_id: str) -> Shown | None:
        try:
            response = client.get(
                f"/customers/{customer_id}/recommendations", params={"session_id": session_id}
            )
            response.raise_for_status()
            answer = response.json()
            return Shown(answer["recommendation_id"], [i["product_id"] for i in answer["items"]])
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            kind = type(exc).__name__
            if kind not in failures:
                failures.add(kind)
                log.warning("recommendations unavailable (%s: %s); shoppers browse on", kind, exc)
            return None

    return recommend


def catalog_index(catalog: Catalog) -> dict[str, Product]:
    return {p.product_id: p for p in catalog.products}
