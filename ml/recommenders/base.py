"""What every recommender is: fit on interactions, then rank products for many customers at once.

Subclasses only say how to score a block of customers (`_scores`: one dense row of product
scores per customer, from their history row). Ranking, excluding seen products, the popularity
fallback and chunking live here once, so every model is served and measured the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommenders.matrix import InteractionMatrix, interaction_matrix
from ml.sequences import NEIGHBOURS_PER_PRODUCT, pruned, sequence_rules

RECOMMENDATION_COLUMNS = ("customer_id", "product_id", "rank", "score")
# Ties (and customers the model knows nothing about) are broken by popularity, added at a
# millionth of the customer's top score so it only decides between (near-)equal scores.
TIE_BREAK = 1e-6


class Recommender(ABC):
    """fit(train) -> self; recommend(customer_ids, k) -> customer_id, product_id, rank, score."""

    name: ClassVar[str]
    # Customers scored per block: a block is chunk_size x products float32 (about 13 MB for
    # this shop's 3,300 products), so memory stays flat however many customers are scored.
    chunk_size: int = 1024
    # Recency weighting of the history (see interaction_matrix); None counts every occasion alike.
    half_life_days: float | None = None

    matrix_: InteractionMatrix
    popularity_: np.ndarray
    # What comes next in a basket (ml.sequences), the strongest NEIGHBOURS_PER_PRODUCT of each.
    sequences_: sp.csr_matrix

    def fit(self, train: pd.DataFrame) -> Self:
        """Learn from canonical interactions (see ml.interactions)."""
        if train.empty:
            raise ValueError(f"{self.name}: cannot fit on no interactions")
        self.matrix_ = interaction_matrix(train, self.half_life_days)
        buyers = np.diff(self.matrix_.values.tocsc().indptr).astype(np.float32)
        self.popularity_ = buyers / max(float(buyers.max()), 1.0)
        self.sequences_ = pruned(sequence_rules(train, self.products), NEIGHBOURS_PER_PRODUCT)
        self._fit(self.matrix_)
        return self

    @abstractmethod
    def _fit(self, matrix: InteractionMatrix) -> None:
        """Learn the model's state from the customer x product matrix."""

    @abstractmethod
    def _scores(self, history: sp.csr_matrix) -> np.ndarray:
        """Dense scores (customers x products) for customers with these history rows."""

    @abstractmethod
    def to_params(self) -> dict[str, Any]:
        """The hyper-parameters, as logged with the model (JSON-friendly)."""

    @property
    def products(self) -> pd.Index:
        return self.matrix_.products

    def recommend(self, customer_ids, k: int = 10, exclude_seen: bool = False) -> pd.DataFrame:
        """The top `k` products for each customer, best first (rank 1).

        Customers unseen in training get the most popular products. With `exclude_seen`,
        products the customer already interacted with are never recommended (a customer who
        has seen nearly everything may then get fewer than k rows).
        """
        if not hasattr(self, "matrix_"):
            raise RuntimeError(f"{self.name}: call fit() before recommend()")
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        customers = pd.unique(pd.Series(list(customer_ids), dtype=object).astype(str))
        k = min(k, len(self.products))
        parts = [
            self._recommend_block(customers[i : i + self.chunk_size], k, exclude_seen)
            for i in range(0, len(customers), self.chunk_size)
        ]
        if not parts:
            return pd.DataFrame({c: [] for c in RECOMMENDATION_COLUMNS})
        return pd.concat(parts, ignore_index=True)

    def _history(self, customers: np.ndarray) -> sp.csr_matrix:
        positions, known = self.matrix_.rows(customers)
        rows = self.matrix_.values[np.where(known, positions, 0)]
        # Unknown customers get an empty history (their row is zeroed, not dropped).
        return (sp.diags(known.astype(np.float32)) @ rows).tocsr()

    def _recommend_block(self, customers: np.ndarray, k: int, exclude_seen: bool) -> pd.DataFrame:
        history = self._history(customers)
        scores = np.asarray(self._scores(history), dtype=np.float32)
        top = np.abs(scores).max(axis=1, keepdims=True)
        ranked = scores + TIE_BREAK * np.where(top > 0, top, 1.0) * self.popularity_
        if exclude_seen:
            seen_rows, seen_cols = history.nonzero()
            ranked[seen_rows, seen_cols] = -np.inf
        best = np.argpartition(-ranked, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(ranked, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        keep = np.isfinite(np.take_along_axis(ranked, best, axis=1)).ravel()
        out = pd.DataFrame(
            {
                "customer_id": np.repeat(customers, k),
                "product_id": self.products.to_numpy()[best.ravel()],
                "rank": np.tile(np.arange(1, k + 1), len(customers)),
                "score": np.take_along_axis(scores, best, axis=1).ravel().astype(float),
            }
        )
        if not keep.all():
            out = out[keep]
            out["rank"] = out.groupby("customer_id", sort=False).cumcount() + 1
        return out
