"""The customer x product matrix every recommender starts from, and its weightings.

A cell counts the separate occasions a customer bought a product (distinct orders), not units:
this shop sells to wholesalers as well as to households, and one order of 1,000 tea lights says
less about taste than ten orders of six. Views and carts, where the source has them, add a
fraction of a purchase each (EVENT_WEIGHTS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

EVENT_WEIGHTS = {"purchase": 1.0, "cart": 0.3, "view": 0.1}
WEIGHTINGS = ("count", "binary", "log", "tfidf", "bm25")


@dataclass(frozen=True)
class InteractionMatrix:
    """`values[u, i]`: how often customers[u] interacted with products[i] (CSR, float32)."""

    values: sp.csr_matrix
    customers: pd.Index
    products: pd.Index

    def rows(self, customer_ids) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of `customer_ids` (-1 where unknown) and the mask of known ones."""
        positions = self.customers.get_indexer(pd.Index(customer_ids, dtype=object))
        return positions, positions >= 0


def interaction_matrix(
    interactions: pd.DataFrame, half_life_days: float | None = None
) -> InteractionMatrix:
    """Occasions per customer and product: distinct orders for purchases, events otherwise.

    With `half_life_days`, an occasion counts 0.5 ** (age / half-life), its age taken from the
    last interaction in the frame: what a customer bought last month says more about next month
    than what they bought last Christmas.
    """
    frame = interactions[["customer_id", "product_id", "event_type", "event_time", "order_id"]]
    # An order is one occasion however many lines repeat the product; without an order id
    # (the stream's views and carts) each event is its own occasion.
    occasion = (
        frame["order_id"]
        .astype(object)
        .where(frame["order_id"].notna(), frame["event_time"].astype(str))
    )
    keyed = frame.assign(occasion=occasion).drop_duplicates(
        ["customer_id", "product_id", "event_type", "occasion"]
    )
    weight = keyed["event_type"].map(EVENT_WEIGHTS).fillna(0.0).to_numpy(dtype=np.float64)
    if half_life_days is not None:
        age = (keyed["event_time"].max() - keyed["event_time"]).dt.total_seconds() / 86_400.0
        weight = weight * np.power(0.5, age.to_numpy() / half_life_days)
    customers = pd.Index(pd.unique(keyed["customer_id"]), dtype=object)
    products = pd.Index(pd.unique(keyed["product_id"]), dtype=object)
    rows = customers.get_indexer(keyed["customer_id"])
    cols = products.get_indexer(keyed["product_id"])
    values = sp.csr_matrix(
        (weight.astype(np.float32), (rows, cols)), shape=(len(customers), len(products))
    )
    values.sum_duplicates()
    values.eliminate_zeros()
    return InteractionMatrix(
        values=values.astype(np.float32), customers=customers, products=products
    )


class Weighting:
    """Re-weights customer rows so rare products and light customers count for more.

    - count: as is; binary: 1 per product; log: log(1 + count);
    - tfidf: log(1 + count) x idf, idf = log(1 + customers / customers who bought the product);
    - bm25: the count saturated (k1) and normalised by the customer's basket length (b), x idf;
      heavy wholesale customers would otherwise dominate every product's neighbourhood.

    fit() learns idf and the mean basket length from the training matrix; transform() applies
    them to any rows, so a customer's history is weighted alike at training and serving time.
    """

    def __init__(self, kind: str = "bm25", k1: float = 1.2, b: float = 0.75):
        if kind not in WEIGHTINGS:
            raise ValueError(f"unknown weighting {kind!r}; expected one of {WEIGHTINGS}")
        self.kind, self.k1, self.b = kind, k1, b
        self.idf_ = np.ones(0, dtype=np.float32)
        self.mean_length_ = 1.0

    def fit(self, values: sp.csr_matrix) -> Weighting:
        buyers = np.diff(values.tocsc().indptr).astype(np.float64)
        self.idf_ = np.log1p(values.shape[0] / np.maximum(buyers, 1.0)).astype(np.float32)
        self.mean_length_ = max(float(values.sum()) / max(values.shape[0], 1), 1e-12)
        return self

    def transform(self, values: sp.csr_matrix) -> sp.csr_matrix:
        out = values.tocsr(copy=True).astype(np.float32)
        if self.kind == "binary":
            out.data[:] = 1.0
        elif self.kind in ("log", "tfidf"):
            out.data = np.log1p(out.data)
        elif self.kind == "bm25":
            length = np.asarray(out.sum(axis=1)).ravel()
            norm = (1.0 - self.b) + self.b * length / self.mean_length_
            row_norm = np.repeat(norm, np.diff(out.indptr)).astype(np.float32)
            out.data = out.data * (self.k1 + 1.0) / (out.data + self.k1 * row_norm)
        if self.kind in ("tfidf", "bm25"):
            out.data = out.data * self.idf_[out.indices]
        out.eliminate_zeros()
        return out

    def fit_transform(self, values: sp.csr_matrix) -> sp.csr_matrix:
        return self.fit(values).transform(values)


def scale_rows(scores: np.ndarray) -> np.ndarray:
    """Each row divided by its maximum (rows of zeros stay zero), so scores can be blended."""
    top = scores.max(axis=1, keepdims=True)
    return np.divide(scores, top, out=np.zeros_like(scores), where=top > 0)


def check_blend(repurchase_weight: float, popularity_weight: float) -> None:
    if min(repurchase_weight, popularity_weight) < 0 or repurchase_weight + popularity_weight > 1:
        raise ValueError(
            "repurchase_weight and popularity_weight must be >= 0 and sum to at most 1, "
            f"not {repurchase_weight} and {popularity_weight}"
        )


def blend(
    model: np.ndarray,
    history: sp.csr_matrix,
    popularity: np.ndarray,
    repurchase_weight: float,
    popularity_weight: float,
) -> np.ndarray:
    """repurchase x own frequency + popularity x popularity + the rest x the model's scores.

    Each part is scaled to [0, 1] per customer first. Measured on this shop (docs/ml.md), what
    a customer bought before is the strongest single signal, popularity tells which of those
    staples are re-ordered, and the model adds products the customer has not bought yet.
    """
    out = (1.0 - repurchase_weight - popularity_weight) * scale_rows(model)
    if repurchase_weight:
        out += repurchase_weight * scale_rows(history.toarray())
    if popularity_weight:
        out += popularity_weight * popularity[np.newaxis, :]
    return out
