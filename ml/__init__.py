"""pulsemart's machine learning: recommenders, purchase propensity, evaluation, registry, drift.

The pure modelling layer: it imports nothing of pulsemart, Dagster, orchestration or sensors
(pulsemart.ml_store feeds it data and rules, orchestration/ wraps it in assets), and no MLflow at
import time (only ml.registry / ml.tracking load it, inside their functions). Start with
`ml.evaluate.evaluate_interactions` or docs/ml.md.

    names         the registered models' names
    interactions  canonical interaction frame; purchases from transaction lines
    split         time-based train/test split
    recommenders  popularity baseline, item-kNN (default), truncated SVD
    metrics       ranking and probability metrics
    propensity    purchase-propensity features, training, evaluation
    blend         the session-aware blend the API serves and the session replay measures
    neighbours    item-to-item neighbours of a fitted recommender, published with its scores
    session_replay  invoices revealed item by item: batch_only, session_aware, popularity
                  (inputs in session_inputs, the weight grid in session_tuning)
    evaluate      offline evaluation report (`python -m pulsemart.ml_store.retail PATH`)
    variants      the measured comparison behind the default (`... retail --variants PATH`)
    registry      MLflow registration, the champion alias and the tags behind rollback
    drift         population stability index, hit rate
"""
