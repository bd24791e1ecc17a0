"""The measured comparison behind the default recommender (`python -m pulsemart.ml_store.retail
--variants PATH` prints it for a transaction file).

Each variant is fitted twice. Validation: on the first 75% of the training period, scored on
the rest of it; the default is chosen by validation NDCG@10, so the test period never picks
its own winner. Test: on the whole training period, scored on the test period (the numbers
docs/ml.md reports). Then the propensity models, trained and scored as ml.evaluate does. The
tables print as Markdown.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pandas as pd

from ml.evaluate import evaluate_recommenders
from ml.recommenders import DEFAULT_PARAMS, make_recommender
from ml.split import time_split

# The blend the variants below vary one setting of at a time.
BLEND = {
    "model": "item_knn",
    "weighting": "log",
    "neighbours": 100,
    "shrink": 10.0,
    "repurchase_weight": 0.5,
    "popularity_weight": 0.3,
    "half_life_days": None,
}
# name -> (recommender params, exclude_seen)
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "popularity": ({"model": "popularity"}, False),
    "popularity, exclude seen": ({"model": "popularity"}, True),
    "popularity by units": ({"model": "popularity", "by": "quantity"}, False),
    "own history + popularity fill": (
        {**BLEND, "repurchase_weight": 1.0, "popularity_weight": 0.0},
        False,
    ),
    "item-kNN bm25, exclude seen": (
        {**BLEND, "weighting": "bm25", "repurchase_weight": 0.0, "popularity_weight": 0.0},
        True,
    ),
    "item-kNN bm25, neighbours only": (
        {**BLEND, "weighting": "bm25", "repurchase_weight": 0.0, "popularity_weight": 0.0},
        False,
    ),
    "item-kNN bm25 + own 0.5": ({**BLEND, "weighting": "bm25", "popularity_weight": 0.0}, False),
    "item-kNN bm25 + own 0.5 + pop 0.3": ({**BLEND, "weighting": "bm25"}, False),
    "item-kNN log + own 0.5 + pop 0.3": (BLEND, False),
    "  same, exclude seen": (BLEND, True),
    "  same, binary weighting": ({**BLEND, "weighting": "binary"}, False),
    "  same, tf-idf weighting": ({**BLEND, "weighting": "tfidf"}, False),
    "  same, shrink 0": ({**BLEND, "shrink": 0.0}, False),
    "  same, shrink 50": ({**BLEND, "shrink": 50.0}, False),
    "  same, 20 neighbours": ({**BLEND, "neighbours": 20}, False),
    "  same, all neighbours": ({**BLEND, "neighbours": 0}, False),
    "  same, half-life 90 days": ({**BLEND, "half_life_days": 90.0}, False),
    "  same, own 0.7 + pop 0.2": (
        {**BLEND, "repurchase_weight": 0.7, "popularity_weight": 0.2},
        False,
    ),
    "  same, own 0.5 + pop 0.4": ({**BLEND, "popularity_weight": 0.4}, False),
    "default: same, shrink 50 + half-life 90": (DEFAULT_PARAMS, False),
    "SVD 64 bm25, factors only": (
        {
            "model": "svd",
            "factors": 64,
            "weighting": "bm25",
            "repurchase_weight": 0.0,
            "popularity_weight": 0.0,
            "half_life_days": None,
        },
        False,
    ),
    "SVD 64 bm25 + own 0.5 + pop 0.3": (
        {
            "model": "svd",
            "factors": 64,
            "weighting": "bm25",
            "repurchase_weight": 0.5,
            "popularity_weight": 0.3,
            "half_life_days": None,
        },
        False,
    ),
}
PROPENSITY_COLUMNS = ("roc_auc", "pr_auc", "brier", "ece", "base_rate", "fit_seconds")
COLUMNS = (
    "validation_ndcg",
    "ndcg_at_10",
    "precision_at_10",
    "recall_at_10",
    "map_at_10",
    "coverage",
    "fit_seconds",
)


def compare_variants(interactions: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """One row per VARIANTS entry: validation NDCG@k and the test metrics."""
    split = time_split(interactions, 0.75)
    inner = time_split(split.train, 0.75)
    rows = {}
    for name, (params, exclude) in VARIANTS.items():
        valid = evaluate_recommenders(
            inner.train, inner.test, {name: make_recommender(params)}, k, exclude
        )
        test = evaluate_recommenders(
            split.train, split.test, {name: make_recommender(params)}, k, exclude
        )
        rows[name] = {"validation_ndcg": valid.loc[name, f"ndcg_at_{k}"], **test.loc[name]}
        print(f"measured {name.strip()}", file=sys.stderr, flush=True)
    return pd.DataFrame.from_dict(rows, orient="index")


def compare_propensity(interactions: pd.DataFrame) -> pd.DataFrame:
    """Each propensity model trained one label window before the 75% cutoff, scored after it."""
    from ml.propensity import MODELS, evaluate_propensity, temporal_datasets, train_propensity

    train, test = temporal_datasets(interactions, time_split(interactions, 0.75).cutoff)
    rows = {}
    for name in MODELS:
        started = time.perf_counter()
        model = train_propensity(train, name)
        fit_seconds = time.perf_counter() - started
        rows[name] = {**evaluate_propensity(model, test), "fit_seconds": fit_seconds}
    return pd.DataFrame.from_dict(rows, orient="index")


def to_markdown(table: pd.DataFrame, columns=COLUMNS, first: str = "variant") -> str:
    lines = ["| " + " | ".join((first, *columns)) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in table.iterrows():
        cells = [f"{row[c]:.2f}" if c.endswith("seconds") else f"{row[c]:.4f}" for c in columns]
        lines.append(f"| {str(name).strip()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
