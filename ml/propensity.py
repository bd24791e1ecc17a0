"""Purchase propensity: how likely is each customer to buy in the coming weeks?

Features describe a customer's activity before a cutoff (recency, frequency, monetary value and
their relatives); the label says whether they bought in the label window after it. Training and
scoring use the same builder at different cutoffs, so a model is always judged on a future it
did not see: train at `cutoff - label window`, evaluate at `cutoff` (see `temporal_datasets`).

Online Retail has only purchases; the stream's views and carts add their counts as features when
present (zero otherwise), so one model definition serves both sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FEATURES = (
    "recency_days",
    "frequency",
    "monetary",
    "distinct_products",
    "days_active",
    "tenure_days",
    "avg_basket_value",
    "avg_basket_units",
    "mean_days_between_orders",
    "orders_last_30d",
    "orders_last_90d",
    "views",
    "carts",
)
MODELS = ("hist_gradient_boosting", "logistic")
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class PropensityDataset:
    """One row per customer active in the feature window: features and the 0/1 label."""

    features: pd.DataFrame  # index customer_id, columns FEATURES
    label: pd.Series  # index customer_id, 1 = purchased in the label window
    cutoff: pd.Timestamp
    label_end: pd.Timestamp


def build_propensity_dataset(
    interactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    label_days: float | None = None,
    feature_days: float | None = None,
) -> PropensityDataset:
    """Features from [cutoff - feature_days, cutoff), labels from [cutoff, cutoff + label_days).

    Without `feature_days` all history before the cutoff is used; without `label_days` the label
    window runs to the last interaction. Customers with no activity in the feature window are
    not in the dataset: there is nothing to score them on.
    """
    cutoff = pd.Timestamp(cutoff)
    times = interactions["event_time"]
    start = times.min() if feature_days is None else cutoff - feature_days * DAY
    if label_days is None:
        label_end = times.max() + pd.Timedelta(1, "ns")  # the last interaction is inside
    else:
        label_end = cutoff + label_days * DAY
    past = interactions[(times >= start) & (times < cutoff)]
    future = interactions[(times >= cutoff) & (times < label_end)]
    features = customer_features(past, cutoff, window_days=(cutoff - start) / DAY)
    buyers = set(future.loc[future["event_type"] == "purchase", "customer_id"])
    label = pd.Series(
        features.index.isin(list(buyers)).astype(int), index=features.index, name="label"
    )
    return PropensityDataset(features=features, label=label, cutoff=cutoff, label_end=label_end)


def customer_features(past: pd.DataFrame, cutoff: pd.Timestamp, window_days: float) -> pd.DataFrame:
    """FEATURES per customer from their interactions before `cutoff` (one group-by each)."""
    age = (cutoff - past["event_time"]).dt.total_seconds().to_numpy() / 86_400.0
    frame = past.assign(
        age=age,
        day=past["event_time"].dt.floor("D"),
        value=past["quantity"] * past["unit_price"].fillna(0.0),
        order=past["order_id"]
        .astype(object)
        .where(past["order_id"].notna(), past["event_time"].astype(str)),
    )
    by = frame.groupby("customer_id", sort=True)
    buys = frame[frame["event_type"] == "purchase"]
    orders = buys.groupby(["customer_id", "order"]).agg(
        age=("age", "min"), value=("value", "sum"), units=("quantity", "sum")
    )
    orders = orders.assign(last_30d=orders["age"] < 30, last_90d=orders["age"] < 90)
    per = orders.groupby(level="customer_id").agg(
        frequency=("age", "size"),
        recency_days=("age", "min"),
        first_order_age=("age", "max"),
        monetary=("value", "sum"),
        units=("units", "sum"),
        orders_last_30d=("last_30d", "sum"),
        orders_last_90d=("last_90d", "sum"),
    )
    out = pd.DataFrame(index=pd.Index(sorted(by.groups), name="customer_id"))
    out = out.join(per).fillna({c: 0.0 for c in per.columns})
    # Customers who never bought in the window: as long ago as the window allows.
    out["recency_days"] = out["recency_days"].where(out["frequency"] > 0, window_days)
    out["distinct_products"] = buys.groupby("customer_id")["product_id"].nunique()
    out["days_active"] = by["day"].nunique()
    out["tenure_days"] = by["age"].max()
    counts = frame.groupby(["customer_id", "event_type"]).size().unstack(fill_value=0)
    for kind, column in (("view", "views"), ("cart", "carts")):
        out[column] = counts[kind] if kind in counts.columns else 0
    orders_n = out["frequency"].replace(0, np.nan)
    out["avg_basket_value"] = out["monetary"] / orders_n
    out["avg_basket_units"] = out["units"] / orders_n
    span = out["first_order_age"] - out["recency_days"]
    gaps = span / (out["frequency"] - 1).where(out["frequency"] > 1)
    # One order or none: no gap yet, so the best guess is "at least the whole window".
    out["mean_days_between_orders"] = gaps.fillna(window_days)
    return out.fillna(0.0).reindex(columns=list(FEATURES)).astype(float)


def train_propensity(
    dataset: PropensityDataset, model: str = "hist_gradient_boosting", seed: int = 0
):
    """A fitted scikit-learn Pipeline predicting P(purchase in the label window)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    if model == "hist_gradient_boosting":
        # Shallow trees and a small learning rate: a few thousand customers, and the
        # probabilities (not only the ranking) are used downstream, so no aggressive fitting.
        steps = [
            (
                "classifier",
                HistGradientBoostingClassifier(
                    max_iter=150,
                    learning_rate=0.05,
                    max_leaf_nodes=15,
                    min_samples_leaf=40,
                    l2_regularization=1.0,
                    early_stopping=False,
                    random_state=seed,
                ),
            )
        ]
    elif model == "logistic":
        # Counts and money are heavy-tailed: log them so one wholesaler does not set the scale.
        steps = [
            ("log", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
            ("scale", StandardScaler()),
            ("classifier", LogisticRegression(max_iter=1000, C=1.0)),
        ]
    else:
        raise ValueError(f"unknown propensity model {model!r}; expected one of {MODELS}")
    if dataset.label.nunique() < 2:
        raise ValueError("the propensity label has one class only; widen the label window")
    pipeline = Pipeline(steps)
    pipeline.fit(dataset.features, dataset.label.to_numpy())
    return pipeline


def predict_propensity(model, features: pd.DataFrame) -> pd.Series:
    """P(purchase) per customer (index as `features`)."""
    scores = model.predict_proba(features.reindex(columns=list(FEATURES)))[:, 1]
    return pd.Series(scores, index=features.index, name="propensity")


def evaluate_propensity(model, dataset: PropensityDataset, bins: int = 10) -> dict[str, float]:
    """ROC AUC, PR AUC, Brier score, ECE and base rate on `dataset`."""
    from ml.metrics import classification_metrics

    scores = predict_propensity(model, dataset.features)
    return classification_metrics(dataset.label.to_numpy(), scores.to_numpy(), bins)


def temporal_datasets(
    interactions: pd.DataFrame, cutoff: pd.Timestamp
) -> tuple[PropensityDataset, PropensityDataset]:
    """(train, test) datasets for an honest temporal evaluation around `cutoff`.

    The label window is cutoff..end of data. Test: features before `cutoff`, labels after.
    Train: the same construction one label window earlier, so its labels end at `cutoff` and
    never overlap the test's. Both use the same feature window length, so frequency-like
    features mean the same in both.
    """
    start, end = interactions["event_time"].min(), interactions["event_time"].max()
    label_days = (end - cutoff) / DAY
    train_cutoff = cutoff - label_days * DAY
    feature_days = (train_cutoff - start) / DAY
    if feature_days <= 0:
        raise ValueError("not enough history before the cutoff for a propensity training window")
    train = build_propensity_dataset(interactions, train_cutoff, label_days, feature_days)
    test = build_propensity_dataset(interactions, cutoff, None, feature_days)
    return train, test
