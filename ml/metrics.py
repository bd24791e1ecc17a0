"""Measures of ranking quality (recommenders) and of probability quality (propensity).

Ranking metrics use binary relevance: a recommended product is a hit when the customer bought it
in the test period. Each metric is averaged over the customers who bought something in the test
period; a customer left without recommendations scores zero rather than disappearing, so a model
cannot look better by refusing to answer.

The single-list functions (`precision_at_k`, ...) define each metric plainly; `ranking_metrics`
computes the same numbers for thousands of customers at once with joins and group-bys, and the
tests hold the two to each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def precision_at_k(recommended, relevant, k: int) -> float:
    return len(set(list(recommended)[:k]) & set(relevant)) / k


def recall_at_k(recommended, relevant, k: int) -> float:
    relevant = set(relevant)
    return len(set(list(recommended)[:k]) & relevant) / len(relevant) if relevant else 0.0


def ndcg_at_k(recommended, relevant, k: int) -> float:
    relevant = set(relevant)
    gains = [1.0 / np.log2(r + 2) for r, p in enumerate(list(recommended)[:k]) if p in relevant]
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return float(sum(gains) / ideal) if ideal else 0.0


def average_precision_at_k(recommended, relevant, k: int) -> float:
    relevant = set(relevant)
    hits, total = 0, 0.0
    for r, p in enumerate(list(recommended)[:k], start=1):
        if p in relevant:
            hits += 1
            total += hits / r
    return total / min(len(relevant), k) if relevant else 0.0


def ranking_metrics(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    catalog_size: int | None = None,
) -> dict[str, float]:
    """precision, recall, NDCG and MAP at k over the customers in `relevant`, and coverage.

    recommendations: customer_id, product_id, rank (1 = best). relevant: customer_id,
    product_id (duplicates ignored). Coverage is distinct recommended products / catalog_size
    (the products in train), over the recommendations given to these customers.
    """
    truth = relevant[["customer_id", "product_id"]].drop_duplicates()
    n_relevant = truth.groupby("customer_id").size()
    recs = recommendations[
        (recommendations["rank"] <= k) & recommendations["customer_id"].isin(n_relevant.index)
    ][["customer_id", "product_id", "rank"]].drop_duplicates(["customer_id", "product_id"])
    hits = recs.merge(truth, on=["customer_id", "product_id"], how="inner")
    hits = hits.sort_values(["customer_id", "rank"], kind="stable")
    hits["hit_number"] = hits.groupby("customer_id").cumcount() + 1
    ranks = hits["rank"].to_numpy(dtype=float)
    per_hit = pd.DataFrame(
        {
            "customer_id": hits["customer_id"].to_numpy(),
            "hit": 1.0,
            "gain": 1.0 / np.log2(ranks + 1.0),
            "precision_at_hit": hits["hit_number"].to_numpy() / ranks,
        }
    )
    sums = per_hit.groupby("customer_id").sum().reindex(n_relevant.index, fill_value=0.0)
    cutoff = np.minimum(n_relevant.to_numpy(), k)
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1.0))[cutoff - 1]
    result = {
        f"precision_at_{k}": float((sums["hit"] / k).mean()),
        f"recall_at_{k}": float((sums["hit"] / n_relevant).mean()),
        f"ndcg_at_{k}": float((sums["gain"] / ideal).mean()),
        f"map_at_{k}": float((sums["precision_at_hit"] / cutoff).mean()),
        "customers": float(len(n_relevant)),
    }
    if catalog_size:
        result["coverage"] = recs["product_id"].nunique() / catalog_size
    return result


# --- propensity ------------------------------------------------------------------------------


def classification_metrics(y_true, y_score, bins: int = 10) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision), Brier score, ECE and the base rate."""
    from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

    y_true = np.asarray(y_true, dtype=int)
    y_score = np.asarray(y_score, dtype=float)
    both = len(np.unique(y_true)) == 2  # AUCs are undefined when only one class is present
    return {
        "roc_auc": float(roc_auc_score(y_true, y_score)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_true, y_score)) if both else float("nan"),
        "brier": float(brier_score_loss(y_true, y_score)),
        "ece": expected_calibration_error(y_true, y_score, bins),
        "base_rate": float(y_true.mean()),
        "n": float(len(y_true)),
    }


def calibration_table(y_true, y_score, bins: int = 10) -> pd.DataFrame:
    """Predictions in `bins` equal-width probability bins: count, mean predicted, observed rate.

    Empty bins are left out. The last bin is closed on the right so a score of 1.0 is counted.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_score = np.asarray(y_score, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, y_score, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "predicted": y_score, "observed": y_true})
    table = frame.groupby("bin").agg(
        count=("predicted", "size"),
        mean_predicted=("predicted", "mean"),
        observed_rate=("observed", "mean"),
    )
    table.insert(0, "upper", edges[table.index + 1])
    table.insert(0, "lower", edges[table.index])
    return table.reset_index(drop=True)


def expected_calibration_error(y_true, y_score, bins: int = 10) -> float:
    """Sum over bins of |mean predicted - observed rate|, weighted by the bin's share."""
    table = calibration_table(y_true, y_score, bins)
    if table.empty:
        return float("nan")
    weights = table["count"] / table["count"].sum()
    return float((weights * (table["mean_predicted"] - table["observed_rate"]).abs()).sum())
