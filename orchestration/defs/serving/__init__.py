"""Serving layer definitions: the real-time tables folded from the clean events, their job."""

import dagster as dg

from orchestration.defs.serving.assets import (
    DECIDE_AND_SERVE_JOB,
    REFRESH_SERVING_JOB,
    serving_tables,
)

defs = dg.Definitions(assets=[serving_tables], jobs=[REFRESH_SERVING_JOB, DECIDE_AND_SERVE_JOB])
