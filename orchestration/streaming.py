"""The streaming code location: ingest, quality and serving, and the sensors that drive them.

It imports neither dbt nor the ML stack, so every sensor-lane run starts in about the time of
a bare `import dagster` (tests/unit/test_code_locations.py checks the imports; the figures are
in benchmarks/BENCHMARKS.md). The datamart and the models live in orchestration/analytics.py;
lineage crosses the two by asset key.
"""

import dagster as dg

from orchestration.defs import ingest, quality, serving
from orchestration.defs.ingest.assets import INGEST_JOBS
from orchestration.defs.serving.assets import DECIDE_AND_SERVE_JOB, REFRESH_SERVING_JOB
from orchestration.resources import build_resources
from sensors.kafka import build_kafka_sensor
from sensors.quality import build_quality_sensor
from sensors.serving import build_serving_sensor

defs = dg.Definitions.merge(
    ingest.defs,
    quality.defs,
    serving.defs,
    dg.Definitions(
        sensors=[
            *(build_kafka_sensor(topic, job) for topic, job in INGEST_JOBS.items()),
            build_quality_sensor(DECIDE_AND_SERVE_JOB),
            build_serving_sensor(REFRESH_SERVING_JOB),
        ],
        resources=build_resources(),
    ),
)
