"""Purchase-propensity assets: challenger, evaluation against a recency baseline, gate, scores.

The propensity model answers "who buys in the coming weeks" (ml.propensity); it is trained
one label window before the recommender's cutoff and measured on labels after it, so it never
sees the future it is judged on. Like the recommender's, its champion is batch-scored, then
published to serving.model_deployments, and the API serves the scores on /customers/{id}.
"""

import time

import dagster as dg

from ml import registry
from ml.evaluate import DEFAULT_PROPENSITY_MODEL
from ml.propensity import train_propensity
from orchestration.defs.ml.common import (
    DATASET,
    GROUP,
    GateConfig,
    champion_output,
    configure_mlflow,
    meta,
    ml_asset,
)
from orchestration.defs.ml.reports import git_commit, metrics_markdown
from orchestration.resources import PostgresResource, PulsemartSettings
from pulsemart.ml_store.evaluation import (
    PROPENSITY_METRIC,
    propensity_metrics,
    propensity_sets,
    read_dataset,
    recency_baseline,
)
from pulsemart.ml_store.lifecycle import champion_version, gate_and_promote, publish
from pulsemart.ml_store.records import write_evaluations

CHALLENGER = dg.AssetKey([GROUP, "propensity_challenger"])
CHAMPION = dg.AssetKey([GROUP, "propensity_champion"])
EVALUATION = dg.AssetKey([GROUP, "propensity_evaluation"])
COLUMNS = [PROPENSITY_METRIC, "pr_auc", "brier", "ece", "base_rate"]


def _sets(training_dataset: dict):
    dataset = read_dataset(training_dataset["path"], training_dataset["train_fraction"])
    try:
        return dataset.split.window, *propensity_sets(dataset)
    except ValueError as exc:  # too little history, or one class only: say so in the UI
        raise dg.Failure(f"cannot build propensity datasets: {exc}") from exc


@ml_asset(
    "propensity_challenger",
    {"mlflow", "scikitlearn"},
    ins={"training_dataset": dg.AssetIn(DATASET)},
    description="Fits the purchase-propensity model (logistic regression on RFM features), "
    "logs it to MLflow, registers a version, aliases it challenger.",
)
def propensity_challenger(
    context: dg.AssetExecutionContext, training_dataset: dict, pulsemart: PulsemartSettings
) -> dg.Output:
    window, train, test = _sets(training_dataset)
    started = time.perf_counter()
    try:
        model = train_propensity(train, DEFAULT_PROPENSITY_MODEL)
    except ValueError as exc:
        raise dg.Failure(f"cannot train the propensity model: {exc}") from exc
    fit_seconds = time.perf_counter() - started
    params = {"model": DEFAULT_PROPENSITY_MODEL, "train_cutoff": train.cutoff.isoformat()}
    metrics = {**propensity_metrics(model, test), "fit_seconds": fit_seconds}
    configure_mlflow(pulsemart.get())
    logged = registry.log_propensity(
        model,
        metrics,
        params,
        window,
        context.run.run_id,
        git_commit(),
        input_example=train.features.head(5),
    )
    version = registry.register(logged.run_id, registry.PROPENSITY)
    registry.set_challenger(registry.PROPENSITY, version)
    return dg.Output(
        {"version": version, "run_id": logged.run_id, "params": params},
        metadata={
            "version": version,
            "mlflow_run_id": logged.run_id,
            "train_customers": len(train.label),
            "fit_seconds": fit_seconds,
            PROPENSITY_METRIC: metrics[PROPENSITY_METRIC],
        },
    )


@ml_asset(
    "propensity_evaluation",
    {"mlflow", "postgres"},
    ins={"training_dataset": dg.AssetIn(DATASET), "challenger": dg.AssetIn(CHALLENGER)},
    description="Challenger, champion (if any) and a recency-only logistic baseline on the "
    "same customers and labels; rows in governance.model_evaluations.",
)
def propensity_evaluation(
    context: dg.AssetExecutionContext,
    training_dataset: dict,
    challenger: dict,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
) -> dg.Output:
    from mlflow import sklearn as mlflow_sklearn

    configure_mlflow(pulsemart.get())
    window, train, test = _sets(training_dataset)
    name, versions = registry.PROPENSITY, {"challenger": challenger["version"]}
    champion = champion_version(name)
    if champion and champion != challenger["version"]:
        versions["champion"] = champion
    results = {
        role: {
            "version": v,
            "metrics": propensity_metrics(mlflow_sklearn.load_model(f"models:/{name}/{v}"), test),
        }
        for role, v in versions.items()
    }
    results["baseline"] = {
        "version": "recency_logistic",
        "metrics": propensity_metrics(recency_baseline(train), test),
    }
    with postgres.connection() as conn, conn.transaction():
        rows = write_evaluations(
            conn,
            name,
            [(r, e["version"], e["metrics"]) for r, e in results.items()],
            context.run.run_id,
            window,
        )
    return dg.Output(
        {"window": window, "results": results, "params": challenger["params"]},
        metadata=meta(
            {
                "evaluation_rows": rows,
                "champion": champion,
                "customers_scored": len(test.label),
                "metrics": dg.MetadataValue.md(metrics_markdown(results, COLUMNS)),
            }
        ),
    )


@ml_asset(
    "propensity_champion",
    {"mlflow", "postgres"},
    ins={"evaluation": dg.AssetIn(EVALUATION)},
    description="Gates the propensity challenger on ROC AUC (beats the recency baseline, and "
    "the champion by the margin) and promotes it when it passes; audited.",
)
def propensity_champion(
    context: dg.AssetExecutionContext,
    config: GateConfig,
    evaluation: dict,
    postgres: PostgresResource,
    pulsemart: PulsemartSettings,
) -> dg.Output:
    configure_mlflow(pulsemart.get())
    actor = f"dagster:{context.run.run_id}"
    with postgres.connection() as conn:
        outcome = gate_and_promote(
            conn,
            registry.PROPENSITY,
            evaluation["results"],
            PROPENSITY_METRIC,
            config.margin,
            actor,
        )
    return champion_output(registry.PROPENSITY, outcome, evaluation, COLUMNS)


@ml_asset(
    "propensity_scores",
    {"postgres", "mlflow"},
    deps=[CHAMPION],
    description="The propensity champion's purchase probability for every customer active "
    "in its feature window, in serving.propensity_scores (one transaction), "
    "then served by the API on /customers/{id}.",
)
def propensity_scores(
    context: dg.AssetExecutionContext, postgres: PostgresResource, pulsemart: PulsemartSettings
) -> dg.MaterializeResult:
    configure_mlflow(pulsemart.get())
    with postgres.connection() as conn:
        version, report = publish(
            conn, registry.PROPENSITY, f"dagster:{context.run.run_id}", rescore=True
        )
    if version is None or report is None:
        return dg.MaterializeResult(
            metadata={"rows": 0, "note": "no champion yet: the API serves propensity null"}
        )
    return dg.MaterializeResult(
        metadata={"model_version": version, "rows": report.rows, "seconds": report.seconds}
    )
