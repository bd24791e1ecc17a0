"""The Kafka micro-batch sensor: one per topic, planning offset ranges from lag.

Each tick reads end offsets from Kafka and committed offsets from `ingest.offsets`, looks up
the ingest runs in flight, and lets `pulsemart.stream.planner` decide. It stores and commits
nothing, and reads no more than one fetch per partition (the peek of
`pulsemart.stream.observe`), so a tick stays within a few seconds however far behind the
stream is.
"""

import json

import dagster as dg

from orchestration.defs.common import IN_FLIGHT
from orchestration.defs.ingest.requests import PARTITION_TAG, POOL, POOL_TAG, run_request_for
from orchestration.resources import KafkaResource, PostgresResource, PulsemartSettings
from pulsemart.config import load_settings
from pulsemart.stream.planner import PlannerSettings, plan_batches


def runs_in_flight(instance: dg.DagsterInstance, topic: str) -> tuple[set[int], int]:
    """The topic's partitions with a run in flight, and how many runs the ingest pool has in
    flight across all topics (the pool limit is shared)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={POOL_TAG: POOL}, statuses=IN_FLIGHT))
    partitions = set()
    for run in runs:
        # Topic names may hold dots but not colons (Kafka allows [a-zA-Z0-9._-]).
        run_topic, _, partition = run.tags.get(PARTITION_TAG, "").rpartition(":")
        if run_topic == topic and partition.isdigit():
            partitions.add(int(partition))
    return partitions, len(runs)


def build_kafka_sensor(topic: str, job) -> dg.SensorDefinition:
    interval = load_settings().sensor_interval_s  # not a secret; fixed when the code loads

    @dg.sensor(
        name=f"kafka_{topic.replace('.', '_')}_sensor",
        job=job,
        minimum_interval_seconds=interval,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Plans micro-batches of {topic} from lag; never consumes records itself.",
    )
    def kafka_sensor(
        context: dg.SensorEvaluationContext,
        pulsemart: PulsemartSettings,
        kafka: KafkaResource,
        postgres: PostgresResource,
    ) -> dg.SensorResult:
        # Imported at the tick: the Kafka and PostgreSQL clients need not load with the code
        # location in every run process.
        from pulsemart.realtime.status import live_partitions
        from pulsemart.store.raw import committed_offsets
        from pulsemart.stream.observe import observe_lags
        from pulsemart.stream.reader import ReadError

        settings = pulsemart.get()
        cursor = json.loads(context.cursor) if context.cursor else {}
        with postgres.connection() as conn:
            committed = committed_offsets(conn, topic)
            # Two ticks without a worker's commit and the lag is the sensor lane's again.
            live = live_partitions(conn, topic, 2 * settings.sensor_interval_s)
        try:
            with kafka.consumer() as consumer:
                lags = observe_lags(consumer, topic, committed)
        except ReadError as exc:
            return dg.SensorResult(skip_reason=f"Kafka unreachable: {exc}", cursor=context.cursor)
        partitions_busy, pool_busy = runs_in_flight(context.instance, topic)
        plan = plan_batches(
            lags,
            partitions_busy,
            cursor,
            PlannerSettings(
                settings.min_batch_events,
                settings.max_batch_events,
                settings.max_concurrent_batches,
            ),
            pool_busy,
            live,
        )
        if not plan.batches:
            return dg.SensorResult(skip_reason=plan.skip_reason(), cursor=json.dumps(plan.cursor))
        return dg.SensorResult(
            run_requests=[
                run_request_for(batch, job.name, settings.max_batch_seconds)
                for batch in plan.batches
            ],
            cursor=json.dumps(plan.cursor),
        )

    return kafka_sensor
