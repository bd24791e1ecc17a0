import pandas as pd
import pytest
from ml_builders import T0, frame, loyal_and_occasional

from ml.propensity import (
    FEATURES,
    build_propensity_dataset,
    evaluate_propensity,
    predict_propensity,
    temporal_datasets,
    train_propensity,
)

CUTOFF = T0 + pd.Timedelta(days=100)


def test_features_and_label_by_hand():
    interactions = frame(
        [
            # a: orders on days 10 (two lines) and 70; views; buys again after the cutoff.
            ("a", "x", 10, "purchase", 2, 3.0),
            ("a", "y", 10, "purchase", 1, 4.0),
            ("a", "x", 70, "purchase", 5, 2.0),
            ("a", "z", 80, "view"),
            ("a", "z", 81, "cart"),
            ("a", "x", 120),
            # b: only views before the cutoff, buys after the label window.
            ("b", "x", 95, "view"),
            ("b", "x", 150),
            # c: active only after the cutoff: not in the dataset.
            ("c", "x", 101),
        ]
    )
    data = build_propensity_dataset(interactions, CUTOFF, label_days=30)
    f = data.features

    assert list(f.columns) == list(FEATURES)
    assert f.index.tolist() == ["a", "b"]
    assert data.label.to_dict() == {"a": 1, "b": 0}
    a = f.loc["a"]
    assert a["frequency"] == 2
    assert a["recency_days"] == pytest.approx(30)
    assert a["tenure_days"] == pytest.approx(90)
    assert a["monetary"] == pytest.approx(2 * 3 + 1 * 4 + 5 * 2)
    assert a["avg_basket_value"] == pytest.approx(10)
    assert a["avg_basket_units"] == pytest.approx(4)
    assert a["mean_days_between_orders"] == pytest.approx(60)
    assert a["distinct_products"] == 2
    assert a["days_active"] == 4
    assert a["orders_last_30d"] == 0  # day 70 is exactly 30 days before the cutoff
    assert a["orders_last_90d"] == 1
    assert (a["views"], a["carts"]) == (1, 1)
    b = f.loc["b"]
    assert b["frequency"] == 0
    # Never bought: as long ago as the window allows (it opens at the first event, day 10).
    assert b["recency_days"] == pytest.approx(90)
    assert b["views"] == 1


def test_temporal_datasets_do_not_overlap_and_the_model_learns():
    interactions = loyal_and_occasional()
    cutoff = T0 + pd.Timedelta(days=150)
    train, test = temporal_datasets(interactions, cutoff)

    assert train.label_end == test.cutoff  # training labels end where testing starts
    assert train.cutoff == cutoff - (test.label_end - test.cutoff) + pd.Timedelta(1, "ns")
    for name in ("logistic", "hist_gradient_boosting"):
        model = train_propensity(train, name)
        metrics = evaluate_propensity(model, test)
        assert metrics["roc_auc"] > 0.8, name
        assert 0 <= metrics["ece"] < 0.2
        scores = predict_propensity(model, test.features)
        assert scores.between(0, 1).all() and scores.index.equals(test.features.index)


def test_one_class_labels_are_refused():
    interactions = frame([("a", "x", 0), ("b", "x", 1)])
    data = build_propensity_dataset(interactions, T0 + pd.Timedelta(days=5), label_days=5)
    with pytest.raises(ValueError, match="one class"):
        train_propensity(data)
    with pytest.raises(ValueError, match="unknown propensity model"):
        train_propensity(data, "forest")
