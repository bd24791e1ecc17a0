"""Offline evaluation: how good are the models on a transaction file, against the baseline?

`evaluate_interactions` is what `pulsemart model evaluate --data PATH` and
`python -m pulsemart.ml_store.retail PATH` run on a file's purchases: split 75/25 in time, fit the popularity baseline and the default recommender on the
past, rank for every test customer at once, score against what they bought next; then the same
for the purchase-propensity model. The result is a plain dict (JSON-friendly) for MLflow, Dagster
metadata or `format_report`.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from ml.interactions import purchases
from ml.metrics import ranking_metrics
from ml.recommenders import DEFAULT_PARAMS, PopularityRecommender, Recommender, make_recommender
from ml.split import TimeSplit, time_split

DEFAULT_PROPENSITY_MODEL = "logistic"  # chosen by measured ROC AUC (docs/ml.md)


def evaluate_recommenders(
    train: pd.DataFrame,
    test: pd.DataFrame,
    models: dict[str, Recommender],
    k: int = 10,
    exclude_seen: bool | dict[str, bool] = False,
) -> pd.DataFrame:
    """Fit each (unfitted) model on `train` and measure it on the purchases in `test`.

    One row per model (index: its name) with the ranking metrics at k, coverage, fit_seconds and
    recommend_seconds. `exclude_seen` may differ per model (a dict by name).
    """
    truth = purchases(test)[["customer_id", "product_id"]]
    customers = truth["customer_id"].unique()
    catalog = train["product_id"].nunique()
    rows = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(train)
        fitted = time.perf_counter()
        exclude = exclude_seen.get(name, False) if isinstance(exclude_seen, dict) else exclude_seen
        recs = model.recommend(customers, k=k, exclude_seen=exclude)
        done = time.perf_counter()
        rows[name] = {
            **ranking_metrics(recs, truth, k=k, catalog_size=catalog),
            "fit_seconds": fitted - started,
            "recommend_seconds": done - fitted,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def evaluate_split(split: TimeSplit, interactions: pd.DataFrame, k: int = 10) -> dict[str, Any]:
    """Recommender and propensity metrics for one time split (see evaluate_interactions)."""
    from ml.propensity import evaluate_propensity, temporal_datasets, train_propensity

    default = make_recommender(DEFAULT_PARAMS)
    table = evaluate_recommenders(
        split.train, split.test, {"popularity": PopularityRecommender(), "default": default}, k
    )
    key = f"ndcg_at_{k}"
    baseline = float(table.loc["popularity", key])
    train_set, test_set = temporal_datasets(interactions, split.cutoff)
    started = time.perf_counter()
    propensity = train_propensity(train_set, DEFAULT_PROPENSITY_MODEL)
    fit_seconds = time.perf_counter() - started
    return {
        "k": k,
        "window": split.window,
        "recommenders": {
            "popularity": {
                "params": PopularityRecommender().to_params(),
                "metrics": table.loc["popularity"].to_dict(),
            },
            "default": {"params": default.to_params(), "metrics": table.loc["default"].to_dict()},
        },
        f"{key}_ratio": float(table.loc["default", key]) / baseline if baseline else float("inf"),
        "propensity": {
            "params": {"model": DEFAULT_PROPENSITY_MODEL},
            "metrics": {**evaluate_propensity(propensity, test_set), "fit_seconds": fit_seconds},
            "train_cutoff": train_set.cutoff.isoformat(),
            "train_customers": len(train_set.label),
        },
    }


def evaluate_interactions(interactions: pd.DataFrame, k: int = 10) -> dict[str, Any]:
    """Split canonical purchases 75/25 in time and measure all; `attrs` (source, rows read,
    dropped lines) are reported with the data."""
    split = time_split(interactions, 0.75)
    result = evaluate_split(split, interactions, k)
    result["data"] = {
        "source": str(interactions.attrs.get("source", "(frame)")),
        "rows_read": interactions.attrs.get("rows_read"),
        "purchases": len(interactions),
        "dropped": interactions.attrs.get("dropped", {}),
        "customers": int(interactions["customer_id"].nunique()),
        "products": int(interactions["product_id"].nunique()),
        "train_rows": len(split.train),
        "test_rows": len(split.test),
        "test_customers": int(split.test["customer_id"].nunique()),
    }
    return result


def format_report(result: dict[str, Any]) -> str:
    """The result of evaluate_interactions as a few aligned lines for a terminal."""
    k = result["k"]
    lines = []
    data = result.get("data")
    if data:
        dropped = ", ".join(f"{n} {why}" for why, n in data["dropped"].items() if n)
        lines += [
            f"data: {data['source']}",
            f"  {data['rows_read']} rows read, {data['purchases']} purchases kept"
            + (f" (dropped: {dropped})" if dropped else ""),
            f"  {data['customers']} customers, {data['products']} products",
        ]
    window = result["window"]
    lines.append(f"window: train {window['start']} .. {window['cutoff']}, test to {window['end']}")
    columns = (
        f"ndcg_at_{k}",
        f"precision_at_{k}",
        f"recall_at_{k}",
        f"map_at_{k}",
        "coverage",
        "fit_seconds",
    )
    lines.append(
        f"\nrecommenders ({int(result['recommenders']['default']['metrics']['customers'])}"
        " test customers seen in train)"
    )
    lines.append(f"  {'model':<12}" + "".join(f"{c:>17}" for c in columns))
    for name, entry in result["recommenders"].items():
        values = "".join(f"{entry['metrics'][c]:>17.4f}" for c in columns)
        lines.append(f"  {name:<12}{values}")
    params = result["recommenders"]["default"]["params"]
    lines.append("  default: " + ", ".join(f"{key}={value}" for key, value in params.items()))
    lines.append(f"  NDCG@{k} ratio default / popularity: {result[f'ndcg_at_{k}_ratio']:.2f}")
    prop = result["propensity"]
    m = prop["metrics"]
    lines.append(
        f"\npropensity ({prop['params']['model']}, trained at {prop['train_cutoff']}, "
        f"{int(m['n'])} customers scored, base rate {m['base_rate']:.3f})"
    )
    lines.append(
        f"  ROC AUC {m['roc_auc']:.4f}  PR AUC {m['pr_auc']:.4f}  "
        f"Brier {m['brier']:.4f}  ECE {m['ece']:.4f}"
    )
    return "\n".join(lines)
