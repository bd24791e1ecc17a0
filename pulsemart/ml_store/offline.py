"""The registry's champion measured on a transaction file, on the split `ml.evaluate` uses.

The recommender learned customers by their keyed hash (the marts never hold raw ids), so the
file's customer ids are hashed with the database's `governance.keyed_hash` first; without the
database the champion would see only strangers, and the report says so instead of measuring.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg

from ml import registry
from ml.propensity import temporal_datasets
from ml.split import TimeSplit, time_split
from pulsemart.config import Settings
from pulsemart.ml_store.evaluation import propensity_metrics, recommender_metrics
from pulsemart.ml_store.lifecycle import champion_version
from pulsemart.ml_store.retail import load_interactions
from pulsemart.ml_store.versions import load_recommend
from pulsemart.store.db import DatabaseError, connect_migrated

COLUMNS = {
    registry.RECOMMENDER: ("ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10"),
    registry.PROPENSITY: ("roc_auc", "pr_auc", "brier", "ece"),
}


def champion_report(settings: Settings, model_name: str, path: str | Path) -> str:
    version = champion_version(model_name)
    if version is None:
        return f"{model_name}: no champion in the registry yet"
    interactions = load_interactions(path)
    split = time_split(interactions, 0.75)
    if model_name == registry.RECOMMENDER:
        try:
            split = hashed(split, settings)
        except (DatabaseError, psycopg.Error) as exc:
            return (
                f"{model_name} champion v{version}: not measured, customer ids cannot be "
                f"hashed without the database ({type(exc).__name__}: {exc})"
            )
        metrics = recommender_metrics(load_recommend(model_name, version), split)
    else:
        from mlflow import sklearn as mlflow_sklearn

        _, test = temporal_datasets(interactions, split.cutoff)
        metrics = propensity_metrics(
            mlflow_sklearn.load_model(f"models:/{model_name}/{version}"), test
        )
    values = "  ".join(f"{name} {metrics[name]:.4f}" for name in COLUMNS[model_name])
    lines = [f"champion {model_name} v{version} on the same split", f"  {values}"]
    trained_to = _trained_cutoff(model_name, version)
    if trained_to is not None and trained_to > split.cutoff:
        lines.append(
            f"  note: it learned from data up to {trained_to.isoformat()}, after this "
            f"split's cutoff {split.cutoff.isoformat()}: its figures are optimistic"
        )
    return "\n".join(lines)


def hashed(split: TimeSplit, settings: Settings) -> TimeSplit:
    """The split with customer ids replaced by the database's keyed hashes."""
    ids = sorted(set(split.train["customer_id"]) | set(split.test["customer_id"]))
    with connect_migrated(settings) as conn:
        keys: dict[str, str] = dict(
            conn.execute(
                "select v, governance.keyed_hash(v) from unnest(%s::text[]) v", (ids,)
            ).fetchall()
        )
    train = split.train.assign(customer_id=split.train["customer_id"].map(keys))
    test = split.test.assign(customer_id=split.test["customer_id"].map(keys))
    return TimeSplit(train, test, split.cutoff, split.start, split.end)


def _trained_cutoff(model_name: str, version: str) -> pd.Timestamp | None:
    client = registry.load_mlflow().MlflowClient()
    run_id = client.get_model_version(model_name, version).run_id
    cutoff = client.get_run(run_id).data.tags.get("data_window.cutoff") if run_id else None
    return pd.Timestamp(cutoff) if cutoff else None
