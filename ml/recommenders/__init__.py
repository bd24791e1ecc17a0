"""Recommenders behind one interface (see base.Recommender), and the default one.

DEFAULT_PARAMS is the configuration ml.evaluate and the training assets use; it was chosen by
validation NDCG@10 on the Online Retail sample (docs/ml.md, `python -m pulsemart.ml_store.retail --variants PATH`).
"""

from __future__ import annotations

from typing import Any

from ml.recommenders.base import RECOMMENDATION_COLUMNS, Recommender
from ml.recommenders.item_knn import ItemKNNRecommender
from ml.recommenders.popularity import PopularityRecommender
from ml.recommenders.svd import SVDRecommender

MODELS: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (PopularityRecommender, ItemKNNRecommender, SVDRecommender)
}
DEFAULT_PARAMS: dict[str, Any] = {
    "model": "item_knn",
    "weighting": "log",
    "neighbours": 100,
    "shrink": 50.0,
    "repurchase_weight": 0.5,
    "popularity_weight": 0.3,
    "half_life_days": 90.0,
}


def make_recommender(params: dict[str, Any] | None = None) -> Recommender:
    """A recommender from its parameters (`to_params()` output round-trips); default: DEFAULT."""
    params = dict(DEFAULT_PARAMS if params is None else params)
    name = params.pop("model", None)
    if name not in MODELS:
        raise ValueError(f"unknown recommender {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**params)


__all__ = [
    "DEFAULT_PARAMS",
    "MODELS",
    "RECOMMENDATION_COLUMNS",
    "ItemKNNRecommender",
    "PopularityRecommender",
    "Recommender",
    "SVDRecommender",
    "make_recommender",
]
