"""The serving sensor: launches a serving refresh when quality released a batch not yet folded.

One cheap question to PostgreSQL per tick (quality batches past `serving.progress`); the fold
itself runs in the job. One serving run at a time: each folds everything released before it.
"""

import dagster as dg

from orchestration.resources import PostgresResource
from sensors.kafka import IN_FLIGHT

PENDING_SQL = """
select count(*), max(quality_batch_id) from quality.batches
where quality_batch_id > coalesce((select quality_batch_id from serving.progress), 0)
"""


def build_serving_sensor(job) -> dg.SensorDefinition:
    from pulsemart.config import load_settings

    interval = load_settings().sensor_interval_s  # not a secret; fixed when the code loads

    @dg.sensor(
        name="serving_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a serving refresh when quality released batches the serving tables "
                    "have not folded yet.",
    )
    def serving_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
        if context.instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1):
            return dg.SensorResult(skip_reason="a serving run is in flight", cursor=context.cursor)
        with postgres.connection() as conn:
            pending, newest = conn.execute(PENDING_SQL).fetchone()
        if not pending:
            return dg.SensorResult(skip_reason="no quality batch waits to be folded", cursor=context.cursor)
        tick = int(context.cursor or 0) + 1
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"serving:{tick}", job_name=job.name,
                                        tags={"pulsemart/quality_batches_waiting": str(pending),
                                              "pulsemart/up_to_quality_batch": str(newest)})],
            cursor=str(tick),
        )

    return serving_sensor
