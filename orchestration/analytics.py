"""The analytics code location: the dbt datamart, the ML assets, drift, the first-build
bootstrap and the schedules.

Its upstream assets (the quality layer the datamart's dbt sources name) belong to the streaming
location (orchestration/streaming.py). They are named by asset key only: the UI draws one
graph across both locations, and the datamart's automation conditions see their updates.
"""

import dagster as dg

from orchestration.defs import datamart, ml
from orchestration.defs.datamart.assets import DATAMART_JOB
from orchestration.defs.ml import ML_TRAIN_JOB
from orchestration.resources import build_resources
from sensors.bootstrap import build_bootstrap_sensor
from sensors.drift import build_drift_sensor

defs = dg.Definitions.merge(
    datamart.defs,
    ml.defs,
    dg.Definitions(
        sensors=[
            build_drift_sensor(ML_TRAIN_JOB),
            build_bootstrap_sensor(DATAMART_JOB, ML_TRAIN_JOB),
        ],
        resources=build_resources(),
    ),
)
