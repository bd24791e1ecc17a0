"""Drift features: a bounded sample of what a model was trained on, and PSI against now.

A profile holds, per feature, up to SAMPLE values drawn from a frame of interactions (the
columns of pulsemart.ml_store.training). It is small enough to live in a jsonb column and is
compared with the same features of recent data by `ml.drift.psi`, which bins numbers on the
reference's quantiles and compares categories by share.

Products are compared as "top products of the reference, or other": with hundreds of products
and a few hundred recent interactions, a per-product PSI is mostly sampling noise (its
expected value is about (products - 1) / rows), while TOP_PRODUCTS + 1 groups keep the noise
near 0.04 at the sensor's minimum of 500 rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.drift import psi

SAMPLE = 5_000
TOP_PRODUCTS = 20
OTHER = "(other)"
CATEGORICAL = ("category", "interaction", "product")
NUMERIC = ("unit_price", "basket_units")
FEATURES = CATEGORICAL + NUMERIC


def feature_profile(
    frame: pd.DataFrame, top_products: list[str] | None = None, sample: int = SAMPLE, seed: int = 0
) -> dict:
    """{"rows", "top_products", "features": {name: [values]}} for interactions in `frame`.

    `top_products` names the products kept by name (the others become OTHER); by default the
    frame's own most frequent ones, as for a reference. Pass the reference's list to profile
    current data on the same groups.
    """
    if top_products is None:
        counts = frame["product_id"].value_counts()
        top_products = sorted(counts.index[:TOP_PRODUCTS].astype(str))
    product = frame["product_id"].astype(str)
    purchases = frame[frame["event_type"] == "purchase"]
    baskets = purchases.groupby(purchases["order_id"].fillna("(no order)"))["quantity"].sum()
    columns = {
        "category": frame["category"] if "category" in frame.columns else pd.Series(dtype=object),
        "interaction": frame["event_type"],
        "product": product.where(product.isin(set(top_products)), OTHER),
        "unit_price": frame["unit_price"],
        "basket_units": baskets,
    }
    rng = np.random.default_rng(seed)
    features = {
        name: _sample(values, sample, rng, name in NUMERIC) for name, values in columns.items()
    }
    return {"rows": len(frame), "top_products": list(top_products), "features": features}


def psi_by_feature(reference: dict, current: dict) -> dict[str, float]:
    """PSI of each feature of `current` against `reference` (NaN where either side is empty)."""
    values = {}
    for name in FEATURES:
        ref = reference["features"].get(name, [])
        cur = current["features"].get(name, [])
        kind = float if name in NUMERIC else str
        values[name] = psi(pd.Series(ref, dtype=kind), pd.Series(cur, dtype=kind))
    return values


def _sample(values: pd.Series, size: int, rng: np.random.Generator, numeric: bool) -> list:
    values = pd.Series(values).dropna()
    if numeric:
        values = pd.to_numeric(values, errors="coerce").astype(float)
        values = values[np.isfinite(values)]  # jsonb holds no NaN or infinity
    if len(values) > size:
        values = values.iloc[np.sort(rng.choice(len(values), size, replace=False))]
    if numeric:
        return [float(v) for v in values]
    return [str(v) for v in values]
