"""The serving sensor: launches a serving refresh when quality released a batch not yet folded.

One cheap question to PostgreSQL per tick (quality batches past `serving.progress`); the fold
itself runs in the job. One serving run at a time: each folds everything released before it.
"""

import dagster as dg

from sensors.downstream import single_run_sensor

PENDING_SQL = """
select count(*), max(quality_batch_id) from quality.batches
where quality_batch_id > coalesce((select quality_batch_id from serving.progress), 0)
"""


def _waiting(conn) -> dict[str, str]:
    pending, newest = conn.execute(PENDING_SQL).fetchone()
    if not pending:
        return {}
    return {
        "pulsemart/quality_batches_waiting": str(pending),
        "pulsemart/up_to_quality_batch": str(newest),
    }


def build_serving_sensor(job) -> dg.SensorDefinition:
    return single_run_sensor(
        "serving_sensor",
        job,
        "Requests a serving refresh when quality released batches the serving tables have not folded yet.",
        _waiting,
        "no quality batch waits to be folded",
        also_busy_with=("decide_and_serve",),
    )
