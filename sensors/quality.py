"""The quality sensor: launches a quality run when landed raw records wait for a decision.

It asks PostgreSQL two cheap questions (how many raw records are past `quality.progress`, and
how many held records are past their timeout) and never runs the engine itself. One quality run
at a time: each one decides everything landed before it started.
"""

import dagster as dg

from orchestration.resources import PostgresResource
from pulsemart.quality import load_rules
from pulsemart.store.quality import waiting_for_decision
from sensors.kafka import IN_FLIGHT


def build_quality_sensor(job) -> dg.SensorDefinition:
    from pulsemart.config import load_settings

    interval = load_settings().sensor_interval_s  # not a secret; fixed when the code loads

    @dg.sensor(
        name="quality_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Requests a quality run when landed raw records wait for their decision.",
    )
    def quality_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
        if context.instance.get_runs(filters=dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT), limit=1):
            return dg.SensorResult(skip_reason="a quality run is in flight", cursor=context.cursor)
        timeout = load_rules().settings.hold_timeout_seconds
        with postgres.connection() as conn:
            undecided, expired = waiting_for_decision(conn, timeout)
        if not undecided and not expired:
            return dg.SensorResult(skip_reason="no raw record waits for a decision", cursor=context.cursor)
        tick = int(context.cursor or 0) + 1
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"quality:{tick}", job_name=job.name,
                                        tags={"pulsemart/undecided": str(undecided),
                                              "pulsemart/held_expired": str(expired)})],
            cursor=str(tick),
        )

    return quality_sensor
