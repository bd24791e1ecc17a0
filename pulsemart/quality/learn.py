"""The catalog after a batch: catalog events released in it, in event-time order, and the
prices seen on released activity (the price history repairs take their confidence from).

A product_upserted that is quarantined still tells the engine the product exists (with its
name and a positive price, when those are well-formed): existence is what held orders wait
for, and the real retail feed announces products without the category or stock the contract
wants. Duplicates and records with suspicious text teach nothing.
"""

from __future__ import annotations

import pandas as pd

from pulsemart.quality.catalog import CatalogState
from pulsemart.quality.decide import ACCEPTED, FIXED
from pulsemart.quality.detectors import as_float, column, is_text
from pulsemart.quality.timestamps import to_utc

RELEASED = (ACCEPTED, FIXED)
UNTRUSTED_RULES = ("text.suspicious",)


def update_catalog(
    catalog: CatalogState,
    events: pd.DataFrame,
    lines: pd.DataFrame,
    decisions: pd.DataFrame,
    findings: pd.DataFrame,
    line_exempt: dict,
    settings,
) -> CatalogState:
    state = catalog.copy()
    if events.empty:
        return state
    history = settings.price_history_size
    decision = decisions["decision"].reindex(events.index)
    released = decision.isin(RELEASED)
    untrusted = set(findings.loc[findings["rule_id"].isin(UNTRUSTED_RULES), "row"])
    catalog_rows = events[
        events["_event_type"].isin(("product_upserted", "price_changed", "availability_changed"))
    ].copy()
    catalog_rows["_time"] = to_utc(column(catalog_rows, "event_time"))
    catalog_rows = catalog_rows.sort_values("_time", kind="stable")
    for row, item in zip(catalog_rows.index, catalog_rows.to_dict("records"), strict=True):
        pid, moment, kind = item.get("product_id"), item["_time"], item["_event_type"]
        if not isinstance(pid, str) or row in untrusted:
            continue
        moment = None if pd.isna(moment) else moment
        if kind == "product_upserted":
            description = item.get("description")
            attrs = {
                "description": description if _text(description) else None,
                "unit_price": item.get("unit_price"),
            }
            if released[row]:
                attrs.update(
                    category=item.get("category"),
                    currency=item.get("currency"),
                    stock=item.get("stock"),
                )
            state.learn_product(pid, moment, **attrs)
        elif not released[row] or pid not in state.products:
            continue
        elif kind == "price_changed":
            state.set_price(pid, item.get("unit_price"), moment, history)
        else:
            state.products[pid].stock = item.get("stock")
    views = events[released & events["_event_type"].isin(("product_viewed", "cart_updated"))]
    _observe(state, views, history, to_utc(column(views, "event_time")))
    if len(lines):
        ok_lines = lines["_row"].map(decision).isin(RELEASED)
        for field, mask in line_exempt.items():
            if field == "unit_price":
                ok_lines &= ~mask.reindex(lines.index, fill_value=False)
        _observe(state, lines[ok_lines], history)
    return state


def _observe(state: CatalogState, rows: pd.DataFrame, history: int, times=None) -> None:
    if rows.empty:
        return
    prices = as_float(column(rows, "unit_price"))
    products = column(rows, "product_id")
    good = (prices > 0) & is_text(products) & products.isin(state.products.keys())
    if not good.any():
        return
    seen = pd.DataFrame(
        {
            "product_id": products[good],
            "price": prices[good],
            "time": times.reindex(rows.index)[good] if times is not None else pd.NaT,
        }
    )
    # Only each product's last `history` prices matter; pandas cuts the rest before the loop.
    recent = seen.groupby("product_id", sort=False).tail(history)
    for pid, price in zip(recent["product_id"].tolist(), recent["price"].tolist(), strict=True):
        prices = state.products[pid].recent_prices
        prices.append(price)
        if len(prices) > history:
            del prices[0]
    timed = seen.dropna(subset=["time"]).sort_values("time", kind="stable")
    latest = timed.groupby("product_id", sort=False).last()
    for pid, price, moment in zip(latest.index, latest["price"], latest["time"], strict=True):
        product = state.products[pid]
        if product.price_time is None or moment >= product.price_time:
            product.unit_price, product.price_time = float(price), moment


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())
