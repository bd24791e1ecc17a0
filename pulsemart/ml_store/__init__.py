"""The ML platform's side of the store: what the ML assets, the `pulsemart model` command and
the drift sensor read from the marts and write to `serving` and `governance`.

    training    the training interactions from marts.fct_product_interactions
    evaluation  the training set file, its split, holdout measures and baselines
    profile     a bounded sample of drift features, and PSI between two of them
    records     model evaluations, training profiles, audit rows
    scoring     batch scoring into serving.recommendations (and serving.item_neighbours),
                serving.model_deployments
    neighbour_checks  coverage and unknown products of the served item neighbours
    versions    a registered recommender version as a function; scoring every customer with it
    lifecycle   gate, promote, roll back, publish: the champion alias is the record, what
                serves is derived from it
    bootstrap   when to ask for the first datamart build and the first model
    offline     the registry's champion measured on a transaction file
    drift       what the drift sensor observes (recent features, live hit rate)
    experiments online experiments: start, end, arms by stable hash (serving.experiments)
    experiment_readout  an experiment's figures per arm from the marts, kept as readouts
    online_gate the online promotion gate, the guardrail, the evidence on a model version

No Dagster here (orchestration/defs/ml and sensors/drift.py wrap it); MLflow only through
`ml.registry`, inside the functions that need it.
"""


def configure_mlflow(settings) -> str:
    """Point MLflow at the store `settings` name; returns the experiment id. The one place the
    ML assets and `pulsemart model` do this, so a profile's artifact store is set once."""
    from ml import registry
    from pulsemart.cloud.objectstore import mlflow_options

    return registry.configure(
        settings.home, settings.mlflow_tracking_uri, **mlflow_options(settings)
    )
