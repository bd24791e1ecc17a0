"""A registered recommender version as a function, and scoring every known customer with it.

Writes in the caller's transaction (pulsemart.ml_store.lifecycle decides when a version is
scored and when it serves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import psycopg

from ml import registry
from pulsemart.ml_store.scoring import Recommend, write_recommendations
from pulsemart.ml_store.training import known_customers


@dataclass(frozen=True)
class ScoreReport:
    model_name: str
    model_version: str
    customers: int
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def load_recommend(model_name: str, version: str) -> Recommend:
    """The registered version as a (customer keys, k) -> recommendations function."""
    mlflow = registry.load_mlflow()
    model = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")

    def recommend(customers, k: int) -> pd.DataFrame:
        return model.predict(pd.DataFrame({"customer_id": list(customers)}), params={"k": int(k)})

    return recommend


def score_version(conn: psycopg.Connection, model_name: str, version: str,
                  recommend: Recommend | None = None) -> ScoreReport:
    """Rank products for every known customer with `version` (in the caller's transaction)."""
    started = time.perf_counter()
    recommend = recommend or load_recommend(model_name, version)
    customers = known_customers(conn)
    rows = write_recommendations(conn, model_name, str(version), recommend, customers)
    return ScoreReport(model_name, str(version), len(customers), rows,
                       time.perf_counter() - started)
