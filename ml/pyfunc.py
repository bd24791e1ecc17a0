"""The recommender as an MLflow pyfunc model: a DataFrame of customers in, top-k products out.

Serving code (the API, a batch scoring asset, `mlflow models serve`) loads any registered
version with `mlflow.pyfunc.load_model("models:/pulsemart-recommender@champion")` and calls
`predict`, without knowing which recommender class is inside. Imported only when a model is
logged or loaded, so `import ml` does not pay for MLflow.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import mlflow.pyfunc
import pandas as pd

from ml.recommenders.base import Recommender

# Versions pinned in each logged model's requirements: the environment that trained it. Listing
# them avoids MLflow's requirement inference, which re-loads the model in a subprocess.
REQUIREMENTS = ("mlflow", "scikit-learn", "scipy", "numpy", "pandas")
DEFAULT_K = 10


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """predict(DataFrame[customer_id], params={k, exclude_seen}) -> customer_id, product_id,
    rank, score (k rows per customer, best first; unknown customers get the popular items)."""

    def __init__(self, recommender: Recommender, k: int = DEFAULT_K):
        self.recommender = recommender
        self.k = k

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        params = params or {}
        if isinstance(model_input, pd.DataFrame):
            if "customer_id" not in model_input.columns:
                raise ValueError("the input needs a customer_id column")
            customers = model_input["customer_id"]
        else:  # a list or array of ids, as `mlflow models serve` may pass
            customers = pd.Series(list(model_input))
        out = self.recommender.recommend(
            customers.astype(str),
            k=int(params.get("k", self.k)),
            exclude_seen=bool(params.get("exclude_seen", False)),
        )
        return out.astype(
            {"customer_id": str, "product_id": str, "rank": "int64", "score": "float64"}
        )


def pip_requirements() -> list[str]:
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]
