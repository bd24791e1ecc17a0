"""Where MLflow keeps runs and models, and logging a trained model as one run.

Locally everything lives under the pulsemart home: `<home>/mlflow/mlflow.db` (runs and the
model registry, SQLite) and `<home>/mlflow/artifacts` (model files). The MLFLOW_TRACKING_URI
setting points elsewhere (a tracking server in the cloud profiles); it is passed in by the
caller, since one module (pulsemart.config) reads the settings.

MLflow is imported inside the functions: `import ml` must stay fast for the CLI and Dagster's
code-location load, which touch `ml` without logging anything.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

EXPERIMENT = "pulsemart"
ARTIFACT_PATH = "model"  # the name each run's model is logged under


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str  # what mlflow.pyfunc.load_model accepts


def tracking_uri(home: Path, override: str | None = None) -> str:
    """`override` when set, else SQLite at `<home>/mlflow/mlflow.db`."""
    if override:
        return override
    return f"sqlite:///{(Path(home) / 'mlflow' / 'mlflow.db').resolve()}"


def artifact_root(home: Path) -> Path:
    return (Path(home) / "mlflow" / "artifacts").resolve()


def configure(
    home: Path,
    override: str | None = None,
    experiment: str = EXPERIMENT,
    artifact_location: str | None = None,
    s3_endpoint_url: str | None = None,
) -> str:
    """Point MLflow at the store (creating the local folders) and return the experiment id.

    With the local store the experiment's artifacts go to `<home>/mlflow/artifacts`; without
    this MLflow would write them to ./mlruns under whatever folder the process started in.
    The cloud profiles pass `artifact_location` (`s3://<bucket>/mlflow`,
    `wasbs://<container>@<account>.blob.core.windows.net/mlflow`: see
    `pulsemart.cloud.mlflow_options(settings)`), and for an S3-compatible endpoint (moto,
    MinIO) `s3_endpoint_url`, which MLflow only reads from MLFLOW_S3_ENDPOINT_URL.
    An experiment keeps the artifact location it was created with.
    """
    mlflow = load_mlflow()
    if s3_endpoint_url:
        os.environ["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint_url
    uri = tracking_uri(home, override)
    local = uri.startswith(("sqlite:", "file:")) or "://" not in uri
    if local and not artifact_location:
        artifact_root(home).mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
        if artifact_location and found.artifact_location.rstrip("/") != artifact_location.rstrip(
            "/"
        ):
            warnings.warn(
                f"MLflow experiment {experiment!r} keeps its artifacts at "
                f"{found.artifact_location}, not {artifact_location}: MLflow fixes "
                "an experiment's location when it is created",
                stacklevel=2,
            )
    else:
        location = artifact_location or (artifact_root(home).as_uri() if local else None)
        experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
    # Runs started without an explicit experiment go here, not to MLflow's "Default" (whose
    # artifacts would land in ./mlruns).
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def log_recommender(
    model,
    metrics: dict[str, float],
    params: dict[str, Any],
    data_window: dict[str, str],
    dagster_run_id: str | None = None,
    git_commit: str | None = None,
    input_example: pd.DataFrame | None = None,
    k: int = 10,
    experiment_id: str | None = None,
) -> LoggedModel:
    """Log a fitted recommender as a pyfunc model (with signature and input example) in a run."""
    mlflow = load_mlflow()
    from mlflow.models import infer_signature

    from ml.pyfunc import RecommenderModel, pip_requirements

    wrapper = RecommenderModel(model, k=k)
    if input_example is None:
        input_example = pd.DataFrame({"customer_id": model.matrix_.customers[:3].astype(str)})
    run_params = {"k": k, "exclude_seen": False}
    with warnings.catch_warnings():
        # "integer columns cannot represent missing values": rank never is missing.
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        signature = infer_signature(
            input_example, wrapper.predict(None, input_example), params=run_params
        )
    with _run(
        "recommender", metrics, params, data_window, dagster_run_id, git_commit, experiment_id
    ) as run:
        info = mlflow.pyfunc.log_model(
            name=ARTIFACT_PATH,
            python_model=wrapper,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(),
            code_paths=[str(Path(__file__).resolve().parent)],  # the ml package, for serving
        )
        return LoggedModel(run_id=run.info.run_id, model_uri=info.model_uri)


def log_propensity(
    model,
    metrics: dict[str, float],
    params: dict[str, Any],
    data_window: dict[str, str],
    dagster_run_id: str | None = None,
    git_commit: str | None = None,
    input_example: pd.DataFrame | None = None,
    experiment_id: str | None = None,
) -> LoggedModel:
    """Log a fitted propensity Pipeline (sklearn flavour) with its signature in a run."""
    load_mlflow()
    from mlflow import sklearn as mlflow_sklearn
    from mlflow.models import infer_signature

    from ml.pyfunc import pip_requirements

    if input_example is None:
        raise ValueError("log_propensity needs an input_example (a few feature rows)")
    signature = infer_signature(input_example, model.predict_proba(input_example)[:, 1])
    with _run(
        "propensity", metrics, params, data_window, dagster_run_id, git_commit, experiment_id
    ) as run:
        info = mlflow_sklearn.log_model(
            model,
            name=ARTIFACT_PATH,
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(),
            serialization_format="cloudpickle",
        )
        return LoggedModel(run_id=run.info.run_id, model_uri=info.model_uri)


@contextmanager
def _run(kind, metrics, params, window, dagster_run_id, git_commit, experiment_id):
    """A run tagged with what produced it (data window, Dagster run, git commit)."""
    mlflow = load_mlflow()
    if experiment_id is None:
        found = mlflow.get_experiment_by_name(EXPERIMENT)
        if found is None:
            raise RuntimeError("MLflow is not configured: call ml.registry.configure(home) first")
        experiment_id = found.experiment_id
    tags = {"pulsemart.model_kind": kind}
    tags.update({f"data_window.{key}": str(value) for key, value in window.items()})
    if dagster_run_id:
        tags["dagster_run_id"] = dagster_run_id
    if git_commit:
        tags["mlflow.source.git.commit"] = git_commit
    with mlflow.start_run(experiment_id=experiment_id, tags=tags) as run:
        mlflow.log_params({key: _param(value) for key, value in params.items()})
        mlflow.log_metrics(
            {key: float(value) for key, value in metrics.items() if _is_number(value)}
        )
        yield run


def _param(value: Any) -> str:
    return "None" if value is None else str(value)


def _is_number(value: Any) -> bool:
    # numbers.Real also admits numpy scalars (np.int64 is not an int).
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def load_mlflow():
    """MLflow, imported on first use (with telemetry off unless the operator turned it on)."""
    # MLflow 3 sends usage telemetry unless told not to; pulsemart runs offline by default,
    # so it is off unless the operator set the variable themselves.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    return mlflow
