"""Datamart definitions: dbt models as assets with their tests as checks, docs, jobs, schedule."""

import dagster as dg

from orchestration.defs.datamart.assets import (
    AUTOMATION,
    DAILY_FULL_BUILD,
    DATAMART_FULL_JOB,
    DATAMART_JOB,
    datamart_dbt,
    datamart_docs,
    dbt_resource,
)

defs = dg.Definitions(
    assets=[datamart_dbt, datamart_docs],
    jobs=[DATAMART_JOB, DATAMART_FULL_JOB],
    schedules=[DAILY_FULL_BUILD],
    sensors=[AUTOMATION],
    resources={"dbt": dbt_resource()},
)
