import math

import numpy as np
import pandas as pd
import pytest

from ml.drift import drift_level, feature_drift, hit_rate, psi


def test_identical_distributions_do_not_drift():
    values = np.random.default_rng(0).normal(size=5000)
    assert psi(values, values) == pytest.approx(0.0, abs=1e-12)
    other_draw = np.random.default_rng(1).normal(size=5000)
    assert psi(values, other_draw) < 0.02


def test_a_shifted_distribution_drifts():
    rng = np.random.default_rng(0)
    reference, shifted = rng.normal(size=5000), rng.normal(loc=1.0, size=5000)
    assert psi(reference, shifted) > 0.25
    assert drift_level(psi(reference, shifted)) == "major"


def test_categorical_psi_by_hand():
    reference = ["uk"] * 50 + ["fr"] * 50
    current = ["uk"] * 80 + ["fr"] * 20
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(reference, current) == pytest.approx(expected)
    # A category never seen before counts with the floor share, not as an error.
    assert psi(["uk"] * 10, ["uk"] * 9 + ["de"]) > 0.05


def test_numeric_bins_are_the_reference_quantiles():
    reference = np.arange(100.0)  # two bins at the median: [0, 50) and [50, 100)
    current = np.array([10.0] * 75 + [90.0] * 25)
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi(reference, current, bins=2) == pytest.approx(expected)


def test_feature_drift_table():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"stable": rng.normal(size=2000), "moved": rng.normal(size=2000), "country": ["uk"] * 2000}
    )
    current = pd.DataFrame(
        {
            "stable": rng.normal(size=2000),
            "moved": rng.normal(loc=2, size=2000),
            "country": ["uk"] * 2000,
        }
    )
    table = feature_drift(reference, current, ["stable", "moved", "country"])
    assert table["column"].tolist() == ["stable", "moved", "country"]
    assert table["level"].tolist() == ["stable", "major", "stable"]
    with pytest.raises(ValueError, match="nope"):
        feature_drift(reference, current, ["nope"])


def test_hit_rate_counts_served_pairs_later_bought():
    recs = pd.DataFrame(
        {"customer_id": ["a", "a", "b", "b", "b"], "product_id": ["x", "y", "x", "z", "z"]}
    )  # b-z served twice
    bought = pd.DataFrame({"customer_id": ["a", "b", "c"], "product_id": ["x", "z", "x"]})
    assert hit_rate(recs, bought) == pytest.approx(2 / 4)


def test_hit_rate_ignores_purchases_before_serving():
    t = pd.Timestamp("2024-01-10", tz="UTC")
    recs = pd.DataFrame({"customer_id": ["a", "b"], "product_id": ["x", "x"], "served_at": [t, t]})
    bought = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "product_id": ["x", "x"],
            "event_time": [t - pd.Timedelta(days=1), t + pd.Timedelta(hours=1)],
        }
    )
    assert hit_rate(recs, bought) == pytest.approx(1 / 2)
