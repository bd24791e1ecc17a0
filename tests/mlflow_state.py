"""MLflow keeps its tracking URI, registry URI and active experiment per process (and
`ml.tracking.configure` exports them to the environment). Tests that point MLflow at a store of
their own put all of it back, so the next test starts where it would have alone."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock


@contextmanager
def mlflow_state_restored() -> Iterator[None]:
    import mlflow
    from mlflow.tracking import fluent

    # patch.dict restores the whole environment on exit, dropping the variables added inside.
    with mock.patch.dict(os.environ):
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            fluent._active_experiment_id = None
