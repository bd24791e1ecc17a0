"""Sensors for layers fed by the layer before them: one cheap SQL question per tick, one run at
a time, each run taking everything that waits when it starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import dagster as dg

from orchestration.defs.common import IN_FLIGHT
from orchestration.resources import PostgresResource
from pulsemart.config import load_settings

if TYPE_CHECKING:  # psycopg loads with the first connection, not with the code location
    import psycopg

# What waits, as run tags ({} when nothing does) and the skip reason to give then.
WaitingCheck = Callable[["psycopg.Connection"], dict[str, str]]


def single_run_sensor(
    name: str,
    job,
    description: str,
    waiting: WaitingCheck,
    nothing_waits: str,
    also_busy_with: tuple[str, ...] = (),
) -> dg.SensorDefinition:
    """`also_busy_with` names other jobs whose runs do this job's work too."""
    interval = load_settings().sensor_interval_s  # not a secret; fixed when the code loads

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
    )
    def sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
        for busy in (job.name, *also_busy_with):
            if context.instance.get_runs(
                filters=dg.RunsFilter(job_name=busy, statuses=IN_FLIGHT), limit=1
            ):
                return dg.SensorResult(
                    skip_reason=f"a {busy} run is in flight", cursor=context.cursor
                )
        with postgres.connection() as conn:
            tags = waiting(conn)
        if not tags:
            return dg.SensorResult(skip_reason=nothing_waits, cursor=context.cursor)
        tick = int(context.cursor or 0) + 1  # run keys only need to be new: one run at a time
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{job.name}:{tick}", job_name=job.name, tags=tags)
            ],
            cursor=str(tick),
        )

    return sensor
