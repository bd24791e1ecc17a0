"""ML assets, batch lane: training set, recommender challenger, evaluation, gate, batch scoring.

Each asset is a thin step over pulsemart.ml_store and ml: read, call, report. Values passed
between assets are small dicts (paths, versions, metrics) through the IO manager; models
travel through the MLflow registry, so every later step uses exactly what was registered.
The training set is a Parquet file per run under `<home>/ml/training/`, so what a model
learned from stays on disk next to the MLflow run that names it.
"""

import json
import time

import dagster as dg
from pydantic import Field

from ml import registry
from ml.recommenders import make_recommender
from orchestration.defs.ml.common import (
    CHALLENGER,
    CHAMPION,
    DATASET,
    EVALUATION,
    GateConfig,
    champion_output,
    configure_mlflow,
    meta,
    ml_asset,
)
from orchestration.defs.ml.reports import git_commit, metrics_markdown
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.ml_store.evaluation import (
    RECOMMENDER_METRIC,
    SESSION_METRICS,
    K,
    dataset_summary,
    make_dataset,
    popularity_metrics,
    read_dataset,
    recommender_metrics,
    session_metrics,
    write_dataset,
)
from pulsemart.ml_store.lifecycle import champion_version, gate_and_promote, publish
from pulsemart.ml_store.profile import feature_profile
from pulsemart.ml_store.records import save_profile, write_evaluations
from pulsemart.ml_store.training import NoTrainingData, read_interactions
from pulsemart.ml_store.versions import load_version

INTERACTIONS = dg.AssetKey(["datamart", "fct_product_interactions"])
COLUMNS = [
    RECOMMENDER_METRIC,
    f"precision_at_{K}",
    f"recall_at_{K}",
    f"map_at_{K}",
    "coverage",
    *SESSION_METRICS[:3],
]


class DatasetConfig(dg.Config):
    holdout_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description=(
            "Share of the period (by time) held out to evaluate on; models learn from the rest."
        ),
    )


class RecommenderConfig(dg.Config):
    params_json: str = Field(
        "",
        description=(
            "Recommender parameters as JSON (ml.recommenders.make_recommender); empty: the default."
        ),
    )


@ml_asset(
    "training_dataset",
    {"postgres", "parquet"},
    deps=[INTERACTIONS],
    description="Every interaction of a known customer (marts.fct_product_interactions), "
    "written to <home>/ml/training/<run id>.parquet and split in time.",
    check_specs=[
        dg.AssetCheckSpec(
            "holdout_not_empty",
            asset=DATASET,
            blocking=True,
            description="The holdout has purchases to measure on.",
        )
    ],
)
def training_dataset(
    context: dg.AssetExecutionContext,
    config: DatasetConfig,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
):
    with postgres.connection() as conn:
        try:
            raw = read_interactions(conn)
        except NoTrainingData as exc:
            raise dg.Failure(str(exc)) from exc
    path = pulsemart.get().home / "ml" / "training" / f"{context.run.run_id}.parquet"
    write_dataset(raw, path)
    dataset = make_dataset(raw, 1 - config.holdout_fraction)
    summary = dataset_summary(dataset)
    yield dg.Output(
        {"path": str(path), "train_fraction": 1 - config.holdout_fraction},
        metadata={**summary, "parquet": dg.MetadataValue.path(str(path))},
    )
    yield dg.AssetCheckResult(
        check_name="holdout_not_empty",
        passed=summary["holdout_customers"] > 0,
        metadata={k: summary[k] for k in ("holdout_purchases", "holdout_customers")},
    )


@ml_asset(
    "recommender_challenger",
    {"mlflow", "scikitlearn"},
    ins={"training_dataset": dg.AssetIn(DATASET)},
    description="Fits the recommender on the training part, logs it to MLflow (Dagster run "
    "id, git commit, data window), registers a version, aliases it challenger.",
)
def recommender_challenger(
    context: dg.AssetExecutionContext,
    config: RecommenderConfig,
    training_dataset: dict,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
) -> dg.Output:
    dataset = read_dataset(training_dataset["path"], training_dataset["train_fraction"])
    started = time.perf_counter()
    try:
        model = make_recommender(
            json.loads(config.params_json) if config.params_json.strip() else None
        )
    except (ValueError, TypeError) as exc:  # bad JSON, an unknown model or parameter
        raise dg.Failure(f"params_json: {exc}") from exc
    model.fit(dataset.split.train)
    fit_seconds = time.perf_counter() - started
    metrics = recommender_metrics(lambda c, k: model.recommend(c, k=k), dataset.split)
    configure_mlflow(pulsemart.get())
    logged = registry.log_recommender(
        model,
        {**metrics, "fit_seconds": fit_seconds},
        model.to_params(),
        dataset.split.window,
        context.run.run_id,
        git_commit(),
    )
    version = registry.register(logged.run_id, registry.RECOMMENDER)
    registry.set_challenger(registry.RECOMMENDER, version)
    with postgres.connection() as conn, conn.transaction():  # the drift sensor's reference
        save_profile(
            conn,
            registry.RECOMMENDER,
            version,
            dataset.split.window,
            feature_profile(dataset.train_raw),
        )
    return dg.Output(
        {"version": version, "run_id": logged.run_id, "params": model.to_params()},
        metadata={
            "version": version,
            "mlflow_run_id": logged.run_id,
            "fit_seconds": fit_seconds,
            RECOMMENDER_METRIC: metrics[RECOMMENDER_METRIC],
            "params": dg.MetadataValue.json(model.to_params()),
        },
    )


@ml_asset(
    "recommender_evaluation",
    {"mlflow", "postgres"},
    ins={"training_dataset": dg.AssetIn(DATASET), "challenger": dg.AssetIn(CHALLENGER)},
    description="Challenger, champion (if any) and the popularity baseline on the same "
    "holdout, ranking metrics and the session replay's; rows in governance.model_evaluations.",
)
def recommender_evaluation(
    context: dg.AssetExecutionContext,
    training_dataset: dict,
    challenger: dict,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
) -> dg.Output:
    configure_mlflow(pulsemart.get())
    split = read_dataset(training_dataset["path"], training_dataset["train_fraction"]).split
    name, versions = registry.RECOMMENDER, {"challenger": challenger["version"]}
    champion = champion_version(name)
    if champion and champion != challenger["version"]:
        versions["champion"] = champion
    results, sessions = {}, {}
    for role, v in versions.items():
        recommend, recommender = load_version(name, v)
        sessions[role] = session_metrics(recommender, split)
        metrics = {**recommender_metrics(recommend, split), **sessions[role]["model"]}
        results[role] = {"version": v, "metrics": metrics}
    results["baseline"] = {
        "version": "popularity",
        "metrics": {**popularity_metrics(split), **sessions["challenger"]["baseline"]},
    }
    with postgres.connection() as conn, conn.transaction():
        rows = write_evaluations(
            conn,
            name,
            [(r, e["version"], e["metrics"]) for r, e in results.items()],
            context.run.run_id,
            split.window,
        )
    return dg.Output(
        {"window": split.window, "results": results, "params": challenger["params"]},
        metadata=meta(
            {
                "evaluation_rows": rows,
                "champion": champion,
                "metrics": dg.MetadataValue.md(metrics_markdown(results, COLUMNS)),
                **{
                    f"{role}_{metric}": e["metrics"][metric]
                    for role, e in results.items()
                    for metric in (RECOMMENDER_METRIC, SESSION_METRICS[0])
                },
            }
        ),
    )


@ml_asset(
    "recommender_champion",
    {"mlflow", "postgres"},
    ins={"evaluation": dg.AssetIn(EVALUATION)},
    description="Gates the challenger (beats the baseline, and the champion by the margin, "
    "on NDCG@10) and promotes it when it passes; audited, with a model card.",
)
def recommender_champion(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    evaluation: dict,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
) -> dg.Output:
    configure_mlflow(pulsemart.get())
    with postgres.connection() as conn:
        outcome = gate_and_promote(
            conn,
            registry.RECOMMENDER,
            evaluation["results"],
            RECOMMENDER_METRIC,
            config.margin,
            f"dagster:{context.run.run_id}",
        )
    return champion_output(registry.RECOMMENDER, outcome, evaluation, COLUMNS)


@ml_asset(
    "recommendations",
    {"postgres", "mlflow"},
    deps=[CHAMPION],
    description="The champion's top 20 available products for every known customer in "
    "serving.recommendations and its item neighbours in serving.item_neighbours (one "
    "transaction), then served by the API.",
)
def recommendations(
    context: dg.AssetExecutionContext, postgres: PostgresResource, pulsemart: PulsemartSettings
) -> dg.MaterializeResult:
    configure_mlflow(pulsemart.get())
    with postgres.connection() as conn:
        version, report = publish(
            conn, registry.RECOMMENDER, f"dagster:{context.run.run_id}", rescore=True
        )
    if version is None or report is None:
        return dg.MaterializeResult(
            metadata={"rows": 0, "note": "no champion yet: the API keeps serving trending products"}
        )
    return dg.MaterializeResult(
        metadata={
            "model_version": version,
            "rows": report.rows,
            "customers": report.customers,
            "seconds": report.seconds,
            "rows_per_second": report.rows_per_second,
            "neighbour_rows": report.neighbours,
        }
    )
