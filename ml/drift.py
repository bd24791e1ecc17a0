"""Has the world moved since the model was trained? Population stability and live hit rate.

The population stability index (PSI) compares a feature's distribution now with the one the
model was trained on: sum over bins of (current share - reference share) x ln(current /
reference). Conventional reading: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a shift worth
retraining for (LEVELS). Numeric features are binned on the reference's quantiles, so each bin
holds an equal share of the reference and the index does not depend on the feature's units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LEVELS = ((0.1, "stable"), (0.25, "moderate"), (float("inf"), "major"))
# An empty bin would make ln(0); a share this small stands in for "none", as is customary.
EPSILON = 1e-4


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (numeric or categorical)."""
    reference = pd.Series(reference).dropna()
    current = pd.Series(current).dropna()
    if reference.empty or current.empty:
        return float("nan")
    if _is_numeric(reference) and _is_numeric(current):
        ref_share, cur_share = _numeric_shares(reference.astype(float), current.astype(float), bins)
    else:
        ref_share, cur_share = _category_shares(reference.astype(str), current.astype(str))
    ref_share = np.maximum(ref_share, EPSILON)
    cur_share = np.maximum(cur_share, EPSILON)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def feature_drift(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    columns=None,
    bins: int = 10,
) -> pd.DataFrame:
    """PSI per column (default: the columns both frames have), with its conventional level."""
    if columns is None:
        columns = [c for c in reference_df.columns if c in current_df.columns]
    missing = [c for c in columns if c not in reference_df.columns or c not in current_df.columns]
    if missing:
        raise ValueError(f"column(s) {', '.join(map(str, missing))} not in both frames")
    values = [psi(reference_df[c], current_df[c], bins) for c in columns]
    return pd.DataFrame(
        {"column": list(columns), "psi": values, "level": [drift_level(v) for v in values]}
    )


def drift_level(value: float) -> str:
    if np.isnan(value):
        return "unknown"
    return next(name for bound, name in LEVELS if value < bound)


def hit_rate(recommendations: pd.DataFrame, purchases: pd.DataFrame) -> float:
    """Share of served recommendations (distinct customer, product) the customer later bought.

    When `recommendations` has `served_at` and `purchases` has `event_time`, a purchase counts
    only if it came at or after the recommendation was served (the first time it was).
    """
    key = ["customer_id", "product_id"]
    timed = "served_at" in recommendations.columns and "event_time" in purchases.columns
    served = recommendations[key + (["served_at"] if timed else [])]
    served = served.groupby(key, as_index=False).min() if timed else served.drop_duplicates()
    if served.empty:
        return float("nan")
    bought = purchases[key + (["event_time"] if timed else [])]
    bought = bought.groupby(key, as_index=False).max() if timed else bought.drop_duplicates()
    joined = served.merge(bought, on=key, how="inner")
    if timed:
        joined = joined[joined["event_time"] >= joined["served_at"]]
    return len(joined) / len(served)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _numeric_shares(reference: pd.Series, current: pd.Series, bins: int):
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    # A value equal to an edge goes to the upper bin in both samples alike.
    ref_counts = np.bincount(
        np.searchsorted(inner, reference, side="right"), minlength=len(inner) + 1
    )
    cur_counts = np.bincount(
        np.searchsorted(inner, current, side="right"), minlength=len(inner) + 1
    )
    return ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()


def _category_shares(reference: pd.Series, current: pd.Series):
    categories = sorted(set(reference) | set(current))
    ref = reference.value_counts(normalize=True).reindex(categories, fill_value=0.0)
    cur = current.value_counts(normalize=True).reindex(categories, fill_value=0.0)
    return ref.to_numpy(), cur.to_numpy()
