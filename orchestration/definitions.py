"""The pulsemart code location: gathers each layer's defs, the sensors and the resources."""

import dagster as dg

from orchestration.defs import datamart, ingest, ml, quality, serving
from orchestration.defs.ingest.assets import INGEST_JOBS
from orchestration.defs.datamart.assets import DATAMART_JOB
from orchestration.defs.ml import ML_BOOTSTRAP_JOB, ML_TRAIN_JOB
from orchestration.defs.serving.assets import DECIDE_AND_SERVE_JOB, REFRESH_SERVING_JOB
from orchestration.resources import build_resources
from sensors.bootstrap import build_bootstrap_sensor
from sensors.drift import build_drift_sensor
from sensors.kafka import build_kafka_sensor
from sensors.quality import build_quality_sensor
from sensors.serving import build_serving_sensor

defs = dg.Definitions.merge(
    ingest.defs,
    quality.defs,
    serving.defs,
    datamart.defs,
    ml.defs,
    dg.Definitions(
        sensors=[
            *(build_kafka_sensor(topic, job) for topic, job in INGEST_JOBS.items()),
            build_quality_sensor(DECIDE_AND_SERVE_JOB),
            build_serving_sensor(REFRESH_SERVING_JOB),
            build_drift_sensor(ML_TRAIN_JOB),
            build_bootstrap_sensor(DATAMART_JOB, ML_BOOTSTRAP_JOB),
        ],
        resources=build_resources(),
    ),
)
