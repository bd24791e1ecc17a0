"""Item-item collaborative filtering: recommend what is bought alongside what you bought.

Two products are similar when the same customers buy both (cosine over customer columns of the
weighted matrix). A customer's score for a product is the similarity-weighted sum over their
history, blended with how often they bought the product themselves and how popular it is: in a
gift shop customers re-order the same items, and a model that hides them (or never ranks them)
leaves most of the next basket unpredicted. docs/ml.md has the measured comparison.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ml.recommenders.base import Recommender
from ml.recommenders.matrix import InteractionMatrix, Weighting, blend, check_blend


class ItemKNNRecommender(Recommender):
    """Item-item cosine with shrinkage and top-`neighbours` pruning, blended with repurchase.

    - weighting: how the matrix is weighted before the cosine (see matrix.Weighting);
    - shrink: added to the cosine's denominator, so a pair seen together by two customers
      does not look as similar as a pair seen together by two hundred;
    - neighbours: similar products kept per product (0 keeps all);
    - repurchase_weight: share of the score given to the customer's own purchase frequency;
    - popularity_weight: share given to the product's popularity (the neighbours get the rest;
      both 0 = neighbours only);
    - half_life_days: recency weighting of the history (None: all occasions count alike).

    The defaults are the measured best on the Online Retail sample (docs/ml.md).
    """

    name = "item_knn"

    def __init__(
        self,
        neighbours: int = 100,
        shrink: float = 50.0,
        weighting: str = "log",
        repurchase_weight: float = 0.5,
        popularity_weight: float = 0.3,
        half_life_days: float | None = 90.0,
        k1: float = 1.2,
        b: float = 0.75,
    ):
        check_blend(repurchase_weight, popularity_weight)
        self.neighbours = int(neighbours)
        self.shrink = float(shrink)
        self.weighting = Weighting(weighting, k1=k1, b=b)
        self.repurchase_weight = float(repurchase_weight)
        self.popularity_weight = float(popularity_weight)
        self.half_life_days = half_life_days

    def _fit(self, matrix: InteractionMatrix) -> None:
        weighted = self.weighting.fit_transform(matrix.values)
        self.similarity_ = item_similarity(weighted, self.shrink, self.neighbours)

    def _scores(self, history: sp.csr_matrix) -> np.ndarray:
        profile = self.weighting.transform(history)
        # similarity_ rows are a product's neighbours; its transpose sums them per target.
        neighbours = (profile @ self.similarity_.T).toarray()
        return blend(neighbours, history, self.popularity_, self.repurchase_weight,
                     self.popularity_weight)

    def to_params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "neighbours": self.neighbours,
            "shrink": self.shrink,
            "weighting": self.weighting.kind,
            "k1": self.weighting.k1,
            "b": self.weighting.b,
            "repurchase_weight": self.repurchase_weight,
            "popularity_weight": self.popularity_weight,
            "half_life_days": self.half_life_days,
        }


def item_similarity(weighted: sp.csr_matrix, shrink: float, neighbours: int) -> sp.csr_matrix:
    """Products x products shrunk cosine, each row pruned to its `neighbours` largest values.

    The diagonal is zero: a product's likeness to itself is the repurchase term's job, where
    its weight is explicit instead of hidden in the similarity's scale.
    """
    columns = weighted.tocsc()
    norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=0)).ravel())
    dots = (columns.T @ columns).tocoo()
    keep = dots.row != dots.col
    rows, cols, data = dots.row[keep], dots.col[keep], dots.data[keep]
    data = data / (norms[rows] * norms[cols] + shrink + 1e-12)
    if neighbours > 0:
        rows, cols, data = _top_per_row(rows, cols, data, neighbours)
    n = weighted.shape[1]
    return sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n, n))


def _top_per_row(rows, cols, data, n):
    """The `n` largest entries of each row of a COO matrix, without a loop over rows."""
    order = np.lexsort((-data, rows))  # by row, then by value descending
    rows, cols, data = rows[order], cols[order], data[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(len(rows)) - starts
    keep = rank < n
    return rows[keep], cols[keep], data[keep]
