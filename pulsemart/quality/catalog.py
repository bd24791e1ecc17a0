"""What the engine knows about products, carried from batch to batch by the caller.

The caller loads a `CatalogState` (from rows, `from_records`), passes it to `run_batch`, and
saves the updated state the result carries (`to_records`). The engine never mutates the state
it was given. Prices keep a short history (catalog prices and prices seen on released events)
because a repair's confidence comes from how much the product's price moves.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class ProductState:
    product_id: str
    description: str | None = None
    category: str | None = None
    unit_price: float | None = None  # the current catalog price
    price_time: pd.Timestamp | None = None  # when the current price took effect
    currency: str | None = None
    stock: int | None = None
    recent_prices: list[float] = field(default_factory=list)


@dataclass
class CatalogState:
    products: dict[str, ProductState] = field(default_factory=dict)

    def copy(self) -> CatalogState:
        return CatalogState(
            {
                pid: dataclasses.replace(p, recent_prices=list(p.recent_prices))
                for pid, p in self.products.items()
            }
        )

    def knows(self, ids: pd.Series) -> pd.Series:
        return ids.isin(self.products.keys())

    def attribute(self, ids: pd.Series, name: str) -> pd.Series:
        """A product attribute per id (None for unknown products or unknown values)."""
        values = {pid: getattr(p, name) for pid, p in self.products.items()}
        return ids.map(values)

    def price_confidence(self, ids: pd.Series, single_price: float = 0.9) -> pd.Series:
        """1 - coefficient of variation of each product's recent prices, clipped to [0, 1].

        With fewer than two prices the spread is unknown, so `single_price` is used.
        """
        table = {pid: stability(p.recent_prices, single_price) for pid, p in self.products.items()}
        return ids.map(table).astype(float).fillna(0.0)

    # -- learning -------------------------------------------------------------------------

    def learn_product(self, product_id: str, moment, **attrs) -> None:
        product = self.products.setdefault(product_id, ProductState(product_id))
        for name, value in attrs.items():
            if name == "unit_price":
                self.set_price(product_id, value, moment)
            elif value is not None:
                setattr(product, name, value)

    def set_price(self, product_id: str, price, moment, history: int = 20) -> None:
        if not _positive(price):
            return
        product = self.products.setdefault(product_id, ProductState(product_id))
        if (
            product.price_time is None
            or moment is None
            or pd.isna(moment)
            or (moment >= product.price_time)
        ):
            product.unit_price = float(price)
            product.price_time = None if moment is None or pd.isna(moment) else moment
        self.observe_price(product_id, price, history)

    def observe_price(self, product_id: str, price, history: int = 20, moment=None) -> None:
        """A price seen on a released event: history, and the current price if it is newer."""
        product = self.products.get(product_id)
        if product is None or not _positive(price):
            return
        if (
            moment is not None
            and not pd.isna(moment)
            and (product.price_time is None or moment >= product.price_time)
        ):
            product.unit_price, product.price_time = float(price), moment
        product.recent_prices.append(float(price))
        del product.recent_prices[:-history]

    # -- persistence ----------------------------------------------------------------------

    def to_records(self) -> list[dict]:
        """One JSON-friendly dict per product (times as ISO strings)."""
        return [
            {
                "product_id": p.product_id,
                "description": p.description,
                "category": p.category,
                "unit_price": p.unit_price,
                "price_time": None if p.price_time is None else p.price_time.isoformat(),
                "currency": p.currency,
                "stock": p.stock,
                "recent_prices": list(p.recent_prices),
            }
            for p in self.products.values()
        ]

    @classmethod
    def from_records(cls, records) -> CatalogState:
        state = cls()
        for row in records:
            row = dict(row)
            time = row.get("price_time")
            row["price_time"] = None if time is None else pd.Timestamp(time)
            row["recent_prices"] = [float(v) for v in (row.get("recent_prices") or [])]
            state.products[row["product_id"]] = ProductState(**row)
        return state


def _positive(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def stability(prices: list[float], single_price: float) -> float:
    if len(prices) < 2:
        return single_price if prices else 0.0
    values = np.asarray(prices, dtype=float)
    with np.errstate(all="ignore"):  # absurd prices overflow: they are simply not stable
        cv = values.std() / values.mean()
    return float(min(1.0, max(0.0, 1.0 - cv))) if np.isfinite(cv) else 0.0
