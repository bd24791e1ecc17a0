"""The bootstrap sensor: the first datamart build and the first training run, each asked for
once, when the stream has brought data enough (pulsemart.ml_store.bootstrap decides).

The cursor remembers the steps requested, and each run key names its step, so neither step
is requested twice, even after a failed run: from then on the datamart's automation, the
weekly retrain and the drift sensor take over, or a person re-runs the job.
"""

import json

import dagster as dg

from orchestration.defs.common import IN_FLIGHT
from orchestration.resources import PostgresResource
from pulsemart.ml_store.bootstrap import (
    DATAMART,
    BootstrapThresholds,
    next_step,
    read_state,
)

INTERVAL_S = 20  # the demo waits on it: a first build a few seconds after the threshold


def build_bootstrap_sensor(
    datamart_job, model_job, thresholds: BootstrapThresholds | None = None
) -> dg.SensorDefinition:
    thresholds = thresholds or BootstrapThresholds()

    @dg.sensor(
        name="bootstrap_sensor",
        jobs=[datamart_job, model_job],
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Once each: the first datamart build (at {thresholds.min_clean_events} "
        f"clean events) and the first training run (at "
        f"{thresholds.min_purchases} clean order lines), then stops asking.",
    )
    def bootstrap_sensor(
        context: dg.SensorEvaluationContext, postgres: PostgresResource
    ) -> dg.SensorResult:
        requested = set(json.loads(context.cursor)) if context.cursor else set()
        building = bool(
            context.instance.get_runs(
                filters=dg.RunsFilter(tags={"pulsemart/pool": "datamart"}, statuses=IN_FLIGHT),
                limit=1,
            )
        )
        with postgres.connection() as conn:
            state = read_state(conn, thresholds, datamart_building=building)
        decision = next_step(state, requested, thresholds)
        if decision.step is None:
            return dg.SensorResult(skip_reason=decision.reason, cursor=context.cursor)
        job = datamart_job if decision.step == DATAMART else model_job
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"bootstrap:{decision.step}",
                    job_name=job.name,
                    tags={"pulsemart/trigger": "bootstrap"},
                )
            ],
            cursor=json.dumps(sorted(requested | {decision.step})),
        )

    return bootstrap_sensor
