"""pulsemart's machine learning: recommenders, purchase propensity, evaluation, registry, drift.

The pure library layer: no Dagster here (orchestration/ wraps it in assets) and no MLflow at
import time (only ml.registry / ml.tracking load it, inside their functions). Start with
`ml.evaluate.evaluate_file` or docs/ml.md.

    interactions  canonical interaction frame; Online Retail loader
    split         time-based train/test split
    recommenders  popularity baseline, item-kNN (default), truncated SVD
    metrics       ranking and probability metrics
    propensity    purchase-propensity features, training, evaluation
    evaluate      offline evaluation report (`python -m ml.evaluate PATH`)
    variants      the measured comparison behind the default (`python -m ml.variants PATH`)
    registry      MLflow logging, registration, gate, promotion, rollback
    drift         population stability index, hit rate
"""
