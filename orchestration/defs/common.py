"""What every layer's definitions share: the owner on every asset, and the run statuses that
count as "in flight" for the sensors that launch one run at a time."""

import dagster as dg

OWNER = "team:data-platform"

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
