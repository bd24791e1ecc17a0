"""Matrix factorisation: customers and products as points in a few latent "taste" dimensions.

TruncatedSVD of the weighted matrix (scikit-learn, randomized solver) gives product factors;
a customer is folded in by projecting their weighted history onto them, so a customer who
arrives after training is scored without refitting. Like the item-kNN it blends in the
customer's own purchase frequency and popularity (matrix.blend), since this shop's customers
re-order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ml.recommenders.base import Recommender
from ml.recommenders.matrix import InteractionMatrix, Weighting, blend, check_blend


class SVDRecommender(Recommender):
    """Truncated SVD on a BM25 / tf-idf weighted matrix, blended with repurchase and popularity.

    Weighting and blend parameters mean what they mean for ItemKNNRecommender; `factors` is the
    number of latent dimensions.
    """

    name = "svd"

    def __init__(
        self,
        factors: int = 64,
        weighting: str = "bm25",
        repurchase_weight: float = 0.5,
        popularity_weight: float = 0.3,
        half_life_days: float | None = None,
        seed: int = 0,
    ):
        check_blend(repurchase_weight, popularity_weight)
        self.factors = int(factors)
        self.weighting = Weighting(weighting)
        self.repurchase_weight = float(repurchase_weight)
        self.popularity_weight = float(popularity_weight)
        self.half_life_days = half_life_days
        self.seed = seed

    def _fit(self, matrix: InteractionMatrix) -> None:
        from sklearn.decomposition import TruncatedSVD

        weighted = self.weighting.fit_transform(matrix.values)
        factors = max(1, min(self.factors, min(weighted.shape) - 1))
        svd = TruncatedSVD(n_components=factors, random_state=self.seed, n_iter=5)
        svd.fit(weighted)
        self.item_factors_ = svd.components_.astype(np.float32)  # factors x products

    def _scores(self, history: sp.csr_matrix) -> np.ndarray:
        profile = self.weighting.transform(history)
        users = profile @ self.item_factors_.T  # fold-in: customers x factors
        latent = np.maximum(users @ self.item_factors_, 0.0)
        return blend(
            latent, history, self.popularity_, self.repurchase_weight, self.popularity_weight
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "factors": self.factors,
            "weighting": self.weighting.kind,
            "repurchase_weight": self.repurchase_weight,
            "popularity_weight": self.popularity_weight,
            "half_life_days": self.half_life_days,
            "seed": self.seed,
        }
