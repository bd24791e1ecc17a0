"""MLflow keeps its tracking URI, registry URI and active experiment per process (and
`ml.tracking.configure` exports them to the environment). Tests that point MLflow at a store of
their own put all of it back, so the next test starts where it would have alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_REGISTRY_URI")


@contextmanager
def mlflow_state_restored() -> Iterator[None]:
    import mlflow
    from mlflow.tracking import fluent

    saved = {name: os.environ.get(name) for name in MLFLOW_ENV}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        fluent._active_experiment_id = None
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
