"""The baseline: the products most customers bought, the same list for everyone.

Every personalised model is judged against it (ml.evaluate reports the ratio), because a model
that cannot beat "what sells" is not worth serving.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ml.recommenders.base import Recommender
from ml.recommenders.matrix import InteractionMatrix

BY = ("customers", "quantity")


class PopularityRecommender(Recommender):
    """Products ranked by distinct buyers (`by="customers"`) or units sold (`by="quantity"`).

    Distinct buyers is the default: units are dominated by a few wholesale orders of cheap
    items, which says little about what the next customer wants.
    """

    name = "popularity"

    def __init__(self, by: str = "customers"):
        if by not in BY:
            raise ValueError(f"unknown popularity measure {by!r}; expected one of {BY}")
        self.by = by

    def fit(self, train: pd.DataFrame) -> PopularityRecommender:
        self._units = (
            train[train["event_type"] == "purchase"].groupby("product_id")["quantity"].sum()
        )
        return super().fit(train)

    def _fit(self, matrix: InteractionMatrix) -> None:
        if self.by == "customers":
            self.scores_ = self.popularity_.copy()
        else:
            units = self._units.reindex(matrix.products).fillna(0.0).to_numpy(np.float32)
            self.scores_ = units / max(float(units.max()), 1.0)

    def _scores(self, history: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.scores_, (history.shape[0], 1))

    def to_params(self) -> dict[str, Any]:
        return {"model": self.name, "by": self.by}
