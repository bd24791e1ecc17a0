"""Ingest layer definitions: topic assets, raw assets and the ingest jobs."""

import dagster as dg

from orchestration.defs.ingest.assets import INGEST_JOBS, RAW_ASSETS, TOPIC_SPECS

defs = dg.Definitions(
    assets=[*TOPIC_SPECS, *RAW_ASSETS.values()],
    jobs=list(INGEST_JOBS.values()),
)
