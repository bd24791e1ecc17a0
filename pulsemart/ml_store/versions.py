"""A registered version as a function, and scoring every known customer with it: the
recommender's products per customer (and its item neighbours), the propensity model's
probability per customer.

Writes in the caller's transaction (pulsemart.ml_store.lifecycle decides when a version is
scored and when it serves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import psycopg

from ml import registry
from ml.names import PROPENSITY
from ml.neighbours import published_neighbours
from ml.recommenders import Recommender
from pulsemart.ml_store.scoring import (
    Recommend,
    propensity_now,
    write_neighbours,
    write_propensity,
    write_recommendations,
)
from pulsemart.ml_store.training import known_customers, read_interactions


@dataclass(frozen=True)
class ScoreReport:
    model_name: str
    model_version: str
    customers: int
    rows: int
    seconds: float
    neighbours: int = 0  # item-neighbour rows written (recommenders only)

    def counts(self) -> dict[str, int]:
        """The rows written, as audit details."""
        return {"rows": self.rows, "neighbours": self.neighbours}

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def load_recommend(model_name: str, version: str) -> Recommend:
    """The registered version as a (customer keys, k) -> recommendations function."""
    return load_version(model_name, version)[0]


def load_version(model_name: str, version: str) -> tuple[Recommend, Recommender]:
    """The registered version as a recommend function and as the fitted recommender inside it
    (for what only the model's state can say: its item neighbours)."""
    mlflow = registry.load_mlflow()
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")

    def recommend(customers, k: int) -> pd.DataFrame:
        return model.predict(pd.DataFrame({"customer_id": list(customers)}), params={"k": int(k)})

    return recommend, model.unwrap_python_model().recommender


def score_version(
    conn: psycopg.Connection,
    model_name: str,
    version: str,
    loaded: tuple[Recommend, Recommender] | None = None,
) -> ScoreReport:
    """Score every known customer with `version` and publish its item neighbours (in the
    caller's transaction). `loaded`: the version as load_version returns it, if at hand."""
    started = time.perf_counter()
    if model_name == PROPENSITY:
        rows = write_propensity(
            conn, model_name, str(version), score_propensity(conn, model_name, version)
        )
        return ScoreReport(model_name, str(version), rows, rows, time.perf_counter() - started)
    recommend, recommender = loaded or load_version(model_name, version)
    customers = known_customers(conn)
    rows = write_recommendations(conn, model_name, str(version), recommend, customers)
    neighbours = write_neighbours(conn, model_name, str(version), published_neighbours(recommender))
    return ScoreReport(
        model_name,
        str(version),
        len(customers),
        rows,
        time.perf_counter() - started,
        neighbours,
    )


def score_propensity(conn: psycopg.Connection, model_name: str, version: str) -> pd.Series:
    """The registered propensity version's score for every customer active in its feature
    window (pulsemart.ml_store.scoring.propensity_now), by customer key."""
    client = registry.load_mlflow().MlflowClient()
    from mlflow import sklearn as mlflow_sklearn

    run_id = client.get_model_version(model_name, str(version)).run_id
    train_cutoff = pd.Timestamp(client.get_run(run_id).data.params["train_cutoff"])
    model = mlflow_sklearn.load_model(f"models:/{model_name}/{version}")
    return propensity_now(model, read_interactions(conn), train_cutoff)
