"""Measuring models on one holdout: the training set file, its time split, the baselines.

Every model a gate compares (challenger, champion, baseline) is measured here on the same
split, so the gate compares like with like. Models are given as functions, so a registered
MLflow version and a freshly fitted baseline are measured by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ml.blend import BlendWeights
from ml.interactions import from_frame, purchases
from ml.metrics import ranking_metrics
from ml.propensity import PropensityDataset, evaluate_propensity, temporal_datasets
from ml.recommenders import PopularityRecommender, Recommender
from ml.session_inputs import capped, prepare
from ml.session_replay import rankers, replay
from ml.split import TimeSplit, time_split
from pulsemart.ml_store.scoring import Recommend

K = 10
RECOMMENDER_METRIC = f"ndcg_at_{K}"
PROPENSITY_METRIC = "roc_auc"
# The session replay's figures, recorded beside the ranking metrics (the gate still decides on
# RECOMMENDER_METRIC): what the role serves in a session, and the same model without one.
SESSION_METRICS = (
    f"session_hr_at_{K}",
    f"session_ndcg_at_{K}",
    f"session_batch_hr_at_{K}",
    "session_steps",
)
# Steps the gate replays per model: a few seconds each, whatever the holdout's size; the
# invoices are a fixed hash sample (ml.session_inputs.capped).
SESSION_STEPS = 5000


@dataclass(frozen=True)
class Dataset:
    """The training set file, read back: interactions (with category) and its time split."""

    raw: pd.DataFrame  # canonical columns plus category (for the drift profile)
    interactions: pd.DataFrame  # canonical (ml.interactions.from_frame)
    split: TimeSplit

    @property
    def train_raw(self) -> pd.DataFrame:
        return self.raw[self.raw["event_time"] < self.split.cutoff]


def write_dataset(raw: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw.to_parquet(path, index=False)
    return path


def make_dataset(raw: pd.DataFrame, train_fraction: float) -> Dataset:
    interactions = from_frame(raw)
    # By interactions, not span: the stream carries late events stamped up to hours early, and
    # a span split around them would train on almost nothing (see ml.split.time_split).
    return Dataset(raw, interactions, time_split(interactions, train_fraction, by="interactions"))


def read_dataset(path: str | Path, train_fraction: float) -> Dataset:
    raw = pd.read_parquet(path)
    raw["event_time"] = pd.to_datetime(raw["event_time"], utc=True)
    return make_dataset(raw, train_fraction)


def dataset_summary(dataset: Dataset) -> dict:
    """Sizes and window of a training set, as JSON-friendly values (asset metadata)."""
    frame, split = dataset.interactions, dataset.split
    kinds = frame["event_type"].value_counts()
    return {
        "rows": len(frame),
        "customers": int(frame["customer_id"].nunique()),
        "products": int(frame["product_id"].nunique()),
        **{f"{kind}_rows": int(kinds.get(kind, 0)) for kind in ("view", "cart", "purchase")},
        "window_start": split.window["start"],
        "cutoff": split.window["cutoff"],
        "window_end": split.window["end"],
        "train_rows": len(split.train),
        **holdout_size(split),
    }


def holdout_size(split: TimeSplit) -> dict[str, int]:
    """What the holdout can measure: its purchases and the customers who made them."""
    truth = purchases(split.test)
    return {
        "holdout_purchases": len(truth),
        "holdout_customers": int(truth["customer_id"].nunique()),
    }


def recommender_metrics(recommend: Recommend, split: TimeSplit, k: int = K) -> dict[str, float]:
    """Ranking metrics at k of `recommend` for the customers who bought in the holdout."""
    truth = purchases(split.test)[["customer_id", "product_id"]]
    customers = list(truth["customer_id"].unique())
    recs = recommend(customers, k)
    return ranking_metrics(recs, truth, k=k, catalog_size=split.train["product_id"].nunique())


def popularity_metrics(split: TimeSplit, k: int = K) -> dict[str, float]:
    """The baseline every recommender must beat: the most-bought products, for everyone."""
    model = PopularityRecommender().fit(split.train)
    return recommender_metrics(lambda customers, n: model.recommend(customers, k=n), split, k)


def session_metrics(
    recommender: Recommender,
    split: TimeSplit,
    weights: BlendWeights | None = None,
    max_steps: int | None = SESSION_STEPS,
) -> dict[str, dict[str, float]]:
    """The session replay (ml.session_replay) of a fitted recommender on the holdout's
    invoices: {"model": its figures (SESSION_METRICS), "baseline": popularity's}."""
    inputs = capped(prepare(split.train, split.test, recommender), max_steps)
    rows = {r["name"]: r for r in replay(inputs, rankers(inputs, weights or BlendWeights()))}

    def figures(served: str, batch: str) -> dict[str, float]:
        return {
            f"session_hr_at_{K}": rows[served]["hr_at_10"],
            f"session_ndcg_at_{K}": rows[served]["ndcg_at_10"],
            f"session_batch_hr_at_{K}": rows[batch]["hr_at_10"],
            "session_steps": float(rows[served]["steps"]),
        }

    return {
        "model": figures("session_aware", "batch_only"),
        "baseline": figures("popularity", "popularity"),
    }


def propensity_sets(dataset: Dataset) -> tuple[PropensityDataset, PropensityDataset]:
    """(train, test) for propensity around the recommender's cutoff (ml.propensity)."""
    return temporal_datasets(dataset.interactions, dataset.split.cutoff)


def recency_baseline(train: PropensityDataset):
    """A logistic regression on log(1 + days since the last order) alone: the RFM rule of
    thumb "who bought lately buys again", as a model with probabilities."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    pick = ColumnTransformer([("recency", FunctionTransformer(np.log1p), ["recency_days"])])
    model = Pipeline([("recency", pick), ("classifier", LogisticRegression())])
    return model.fit(train.features, train.label.to_numpy())


def propensity_metrics(model, test: PropensityDataset) -> dict[str, float]:
    return evaluate_propensity(model, test)
