"""Experiment arms (pulsemart/ml_store/experiments.py): shares validated with the reason, bucket
ranges laid end to end, and the stable hash the database computes too (its SQL twin is
checked against this one in tests/integration/test_experiments.py)."""

from __future__ import annotations

import math

import pytest

from pulsemart.ml_store.experiments import ExperimentError, bucket, plan_variants


@pytest.mark.parametrize(
    ("challengers", "shadow", "reason"),
    [
        ([], False, "needs a challenger"),
        ([("3", 0.0)], False, r"outside \(0, 1\]"),
        ([("3", -0.1)], False, r"outside \(0, 1\]"),
        ([("3", 1.5)], False, r"outside \(0, 1\]"),
        ([("3", math.nan)], False, r"outside \(0, 1\]"),
        ([("3", 0.6), ("4", 0.5)], False, "sum to 1.1, above 1"),
        ([("3", 0.1), ("3", 0.1)], False, "named twice"),
        ([("3", 0.1), ("4", 0.1)], True, "one challenger"),
    ],
)
def test_shares_that_cannot_be_are_refused_with_the_reason(challengers, shadow, reason):
    with pytest.raises(ExperimentError, match=reason):
        plan_variants(challengers, shadow)


def test_variants_own_consecutive_bucket_ranges():
    variants = plan_variants([("3", 0.1), ("popularity", 0.25)], shadow=False)
    assert [(v.name, v.model_version, v.low, v.high) for v in variants] == [
        ("challenger", "3", 0.0, 0.1),
        ("challenger_2", "popularity", 0.1, 0.35),
    ]
    (shadow,) = plan_variants([("3", 0.5)], shadow=True)
    assert (shadow.name, shadow.low, shadow.high) == ("shadow", 0.0, 0.5)
    # Shares summing to exactly 1 leave the champion nothing, and are allowed.
    assert plan_variants([("3", 0.5), ("4", 0.5)], shadow=False)[-1].high == 1.0


def test_the_bucket_is_stable_uniform_and_reshuffled_per_experiment():
    units = [f"C{n:06d}" for n in range(20_000)]
    first = [bucket(1, u) for u in units]
    assert first == [bucket(1, u) for u in units]
    assert all(0 <= b < 1 for b in first)
    below = sum(b < 0.1 for b in first) / len(units)
    assert 0.09 < below < 0.11
    second = [bucket(2, u) for u in units]
    both = sum(a < 0.5 and b < 0.5 for a, b in zip(first, second, strict=True)) / len(units)
    assert 0.23 < both < 0.27  # independent between experiments, not the same half again
