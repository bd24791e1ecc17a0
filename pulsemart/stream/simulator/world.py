"""The shop over time: a discrete-event simulation emitting clean events in time order.

Sessions arrive with a daily rhythm and interleave; checkouts draw down stock, a sell-out
emits availability_changed and schedules a restock; some orders are later cancelled; prices
and customization options drift. Everything draws from one `random.Random`, so the seed
determines the stream.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator

from pulsemart.stream.simulator.catalog import (
    CURRENCY,
    Catalog,
    Product,
    customization_sample,
    repriced,
)
from pulsemart.stream.simulator.customers import Checkout, Customer, session
from pulsemart.stream.simulator.reactions import Recommend, catalog_index

# Relative session arrival rate per UTC hour: quiet nights, busy late mornings and evenings.
DIURNAL = (
    0.15,
    0.1,
    0.1,
    0.1,
    0.1,
    0.2,
    0.4,
    0.7,
    1.0,
    1.3,
    1.5,
    1.5,
    1.6,
    1.5,
    1.4,
    1.3,
    1.2,
    1.2,
    1.3,
    1.5,
    1.4,
    1.0,
    0.6,
    0.3,
)
MEAN_SESSION_GAP_S = 10.0  # at a relative rate of 1
MEAN_PRICE_CHANGE_GAP_S = 240.0
MEAN_CUSTOMIZATION_CHANGE_GAP_S = 3600.0
CANCELLATION_RATE = 0.04

# (seconds since start, event type, fields)
WorldEvent = tuple[float, str, dict]


class World:
    def __init__(
        self,
        rng: random.Random,
        catalog: Catalog,
        customers: list[Customer],
        start_hour: float,
        recommend: Recommend | None = None,
    ):
        self.rng = rng
        self.recommend = recommend
        self.products = catalog_index(catalog) if recommend else None
        self.catalog = catalog
        self.customers = customers
        self.start_hour = start_hour
        self._queue: list = []
        self._order = itertools.count()  # tie-breaker: equal times keep scheduling order
        self._sessions = itertools.count(1)
        self._orders = itertools.count(1)

    def events(self) -> Iterator[WorldEvent]:
        """Clean events for ever, in non-decreasing time order."""
        self._schedule(0.0, self._arrive, None)
        self._schedule(self.rng.expovariate(1 / MEAN_PRICE_CHANGE_GAP_S), self._change_price, None)
        self._schedule(
            self.rng.expovariate(1 / MEAN_CUSTOMIZATION_CHANGE_GAP_S), self._change_options, None
        )
        while True:
            now, _, handler, payload = heapq.heappop(self._queue)
            yield from handler(now, payload)

    def _schedule(self, at: float, handler, payload) -> None:
        heapq.heappush(self._queue, (at, next(self._order), handler, payload))

    def _arrive(self, now: float, _) -> tuple[WorldEvent, ...]:
        customer = self.rng.choice(self.customers)
        session_id = f"S{next(self._sessions):08d}"
        actions = session(
            self.rng, customer, self.catalog, session_id, self.recommend, self.products
        )
        self._continue(now, actions)
        hour = int(self.start_hour + now / 3600) % 24
        gap = self.rng.expovariate(DIURNAL[hour] / MEAN_SESSION_GAP_S)
        self._schedule(now + gap, self._arrive, None)
        return ()

    def _continue(self, now: float, actions) -> None:
        action = next(actions, None)
        if action is not None:
            self._schedule(now + action.gap_s, self._act, (action, actions))

    def _act(self, now: float, payload) -> Iterator[WorldEvent]:
        action, actions = payload
        self._continue(now, actions)
        if isinstance(action, Checkout):
            yield from self._checkout(now, action)
        else:
            yield now, action.event_type, action.fields

    def _checkout(self, now: float, checkout: Checkout) -> Iterator[WorldEvent]:
        lines: list[dict] = []
        sold_out = []
        for product, wanted, customization in checkout.items:
            quantity = min(wanted, product.stock)
            if quantity <= 0:
                continue
            product.stock -= quantity
            if product.stock == 0:
                sold_out.append(product)
            lines.append(
                {
                    "line_id": len(lines) + 1,
                    "product_id": product.product_id,
                    "quantity": quantity,
                    "unit_price": product.unit_price,
                    "customization": customization,
                }
            )
        if not lines:
            return
        order = {
            "order_id": f"SO{next(self._orders):08d}",
            "customer_id": checkout.customer.customer_id,
            "session_id": checkout.session_id,
            "lines": lines,
            "country": checkout.customer.country,
            "currency": CURRENCY,
        }
        echo = {"recommendation_id": checkout.recommendation_id}
        yield now, "order_placed", {**order, **echo} if checkout.recommendation_id else order
        for product in sold_out:
            yield now, "availability_changed", _availability(product, "sold_out")
            restock_at = now + self.rng.uniform(6, 72) * 3600
            self._schedule(restock_at, self._restock, product)
        if self.rng.random() < CANCELLATION_RATE:
            self._schedule(now + self.rng.uniform(0.5, 48) * 3600, self._cancel, order)

    def _cancel(self, now: float, order: dict) -> Iterator[WorldEvent]:
        # Cancellations return stock silently: restocks, not returns, make products available.
        lines = [dict(line, quantity=-line["quantity"]) for line in order["lines"]]
        yield (
            now,
            "order_cancelled",
            {
                **order,
                "order_id": f"C{order['order_id']}",
                "session_id": None,
                "lines": lines,
                "cancels_order_id": order["order_id"],
            },
        )

    def _restock(self, now: float, product: Product) -> Iterator[WorldEvent]:
        if product.stock == 0:
            product.stock = self.rng.randint(24, 240)
            yield now, "availability_changed", _availability(product, "restocked")

    def _change_price(self, now: float, _) -> Iterator[WorldEvent]:
        product = self.rng.choice(self.catalog.products)
        previous, product.unit_price = product.unit_price, repriced(self.rng, product)
        yield (
            now,
            "price_changed",
            {
                "product_id": product.product_id,
                "unit_price": product.unit_price,
                "previous_unit_price": previous,
                "currency": CURRENCY,
            },
        )
        gap = self.rng.expovariate(1 / MEAN_PRICE_CHANGE_GAP_S)
        self._schedule(now + gap, self._change_price, None)

    def _change_options(self, now: float, _) -> Iterator[WorldEvent]:
        product = self.rng.choice(self.catalog.products)
        product.customization_options = customization_sample(self.rng)
        yield (
            now,
            "product_customized",
            {
                "product_id": product.product_id,
                "customization_options": list(product.customization_options),
            },
        )
        gap = self.rng.expovariate(1 / MEAN_CUSTOMIZATION_CHANGE_GAP_S)
        self._schedule(now + gap, self._change_options, None)


def _availability(product: Product, reason: str) -> dict:
    return {
        "product_id": product.product_id,
        "stock": product.stock,
        "available": product.available,
        "reason": reason,
    }
