"""The Kafka sensor through build_sensor_context, with an ephemeral instance and the real
embedded broker and PostgreSQL behind its resources."""

import json

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun

from orchestration.definitions import defs as DEFS
from orchestration.defs.ingest.assets import INGEST_JOBS
from orchestration.resources import build_resources
from sensors.kafka import build_kafka_sensor
from tests.integration.helpers import produce_raw, read_topic

pytestmark = pytest.mark.integration
TOPIC = "shop.events"


@pytest.fixture
def sensor():
    return build_kafka_sensor(TOPIC, INGEST_JOBS[TOPIC])


def evaluate(sensor, instance, cursor=None):
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=build_resources()
    ) as context:
        return sensor(context)


def partition_of(request) -> str:
    topic, _, partition = request.tags["pulsemart/topic_partition"].rpartition(":")
    assert topic == TOPIC
    return partition


def lagging_partitions(settings):
    return sorted({r.partition for r in read_topic(settings, TOPIC)})


def test_plans_a_batch_per_lagging_partition(fresh_stream, sensor):
    produce_raw(
        fresh_stream, TOPIC, [b"e%d" % i for i in range(400)], keys=[f"c{i}" for i in range(400)]
    )
    with dg.instance_for_test() as instance:
        result = evaluate(sensor, instance)
    partitions = lagging_partitions(fresh_stream)
    assert sorted(int(partition_of(r)) for r in result.run_requests) == partitions
    for request in result.run_requests:
        partition = partition_of(request)
        assert request.run_key == f"{TOPIC}:{partition}:0:0"
        # Two tags (the runs list stays readable): the pool and the one-run-per-partition key.
        assert request.tags == {
            "pulsemart/pool": "ingest",
            "pulsemart/topic_partition": f"{TOPIC}:{partition}",
        }
        config = request.run_config["ops"]["raw__shop_events"]["config"]
        assert config["start_offset"] == 0 and config["partition"] == int(partition)
    cursor = json.loads(result.cursor)
    assert {int(p) for p in cursor} == set(partitions)


def test_skips_with_a_reason_when_nothing_lags(fresh_stream, sensor):
    with dg.instance_for_test() as instance:
        result = evaluate(sensor, instance)
    assert not result.run_requests
    assert "no partition lags" in result.skip_reason.skip_message


def _in_flight_run(instance, partition):
    run = DagsterRun(
        job_name=INGEST_JOBS[TOPIC].name,
        status=dg.DagsterRunStatus.STARTED,
        tags={"pulsemart/topic_partition": f"{TOPIC}:{partition}", "pulsemart/pool": "ingest"},
    )
    instance.add_run(run)


def test_in_flight_runs_are_told_apart_by_topic_and_partition():
    from sensors.kafka import runs_in_flight

    with dg.instance_for_test() as instance:
        for tag in ("shop.events:3", "shop.catalog:0", "shop.events:11"):
            instance.add_run(
                DagsterRun(
                    job_name=INGEST_JOBS[TOPIC].name,
                    status=dg.DagsterRunStatus.STARTED,
                    tags={"pulsemart/topic_partition": tag, "pulsemart/pool": "ingest"},
                )
            )
        instance.add_run(
            DagsterRun(
                job_name=INGEST_JOBS[TOPIC].name,
                status=dg.DagsterRunStatus.SUCCESS,
                tags={"pulsemart/topic_partition": "shop.events:5", "pulsemart/pool": "ingest"},
            )
        )
        assert runs_in_flight(instance, TOPIC) == ({3, 11}, 3)
        assert runs_in_flight(instance, "shop.catalog") == ({0}, 3)


def test_skips_when_the_pool_is_full(fresh_stream, sensor, monkeypatch):
    monkeypatch.setenv("PULSEMART_MAX_CONCURRENT_BATCHES", "1")
    produce_raw(
        fresh_stream, TOPIC, [b"e%d" % i for i in range(200)], keys=[f"c{i}" for i in range(200)]
    )
    busy = lagging_partitions(fresh_stream)[0]
    with dg.instance_for_test() as instance:
        _in_flight_run(instance, busy)
        result = evaluate(sensor, instance)
    assert not result.run_requests
    assert "pool full (1 batches in flight)" in result.skip_reason.skip_message
    assert f"{TOPIC}[{busy}]: a batch is already in flight" in result.skip_reason.skip_message


def test_a_failed_range_is_requested_again_with_the_next_attempt(fresh_stream, sensor):
    produce_raw(fresh_stream, TOPIC, [b"x"] * 50, keys=["one"] * 50)
    (partition,) = lagging_partitions(fresh_stream)
    with dg.instance_for_test() as instance:
        first = evaluate(sensor, instance)
        # The run failed: nothing stored, the offset did not move. The next tick retries.
        second = evaluate(sensor, instance, cursor=first.cursor)
    assert [r.run_key for r in first.run_requests] == [f"{TOPIC}:{partition}:0:0"]
    assert [r.run_key for r in second.run_requests] == [f"{TOPIC}:{partition}:0:1"]
    assert second.run_requests[0].tags["pulsemart/topic_partition"] == f"{TOPIC}:{partition}"


def test_after_a_successful_run_the_next_range_starts_where_it_ended(fresh_stream, sensor, db):
    produce_raw(fresh_stream, TOPIC, [b"y"] * 30, keys=["one"] * 30)
    with dg.instance_for_test() as instance:
        first = evaluate(sensor, instance)
        request = first.run_requests[0]
        result = DEFS.resolve_job_def(request.job_name).execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert result.success
        produce_raw(fresh_stream, TOPIC, [b"z"] * 5, keys=["one"] * 5)
        second = evaluate(sensor, instance, cursor=first.cursor)
    partition = partition_of(request)
    assert [r.run_key for r in second.run_requests] == [f"{TOPIC}:{partition}:30:0"]


def test_says_so_when_the_broker_lost_the_stored_records(fresh_stream, sensor, db):
    produce_raw(fresh_stream, TOPIC, [b"w"] * 20, keys=["one"] * 20)
    (partition,) = lagging_partitions(fresh_stream)
    # As after a restart of the in-memory broker: the store remembers more than the stream has.
    db.execute(
        'insert into ingest.offsets (topic, "partition", next_offset) values (%s, %s, 5000)',
        (TOPIC, partition),
    )
    db.commit()
    with dg.instance_for_test() as instance:
        result = evaluate(sensor, instance)
    assert not result.run_requests
    assert (
        f"{TOPIC}[{partition}]: the broker no longer holds offset 4999"
        in result.skip_reason.skip_message
    )


def test_quality_sensor_requests_a_run_only_when_records_wait(fresh_stream, db):
    from orchestration.defs.serving.assets import DECIDE_AND_SERVE_JOB
    from sensors.quality import build_quality_sensor

    quality = build_quality_sensor(DECIDE_AND_SERVE_JOB)
    with dg.instance_for_test() as instance:
        idle = evaluate(quality, instance)
        produce_raw(fresh_stream, TOPIC, [b"q"] * 10, keys=["one"] * 10)
        ingest = evaluate(build_kafka_sensor(TOPIC, INGEST_JOBS[TOPIC]), instance).run_requests[0]
        assert (
            DEFS.resolve_job_def(ingest.job_name)
            .execute_in_process(run_config=ingest.run_config, instance=instance)
            .success
        )
        waiting = evaluate(quality, instance)
        assert (
            DEFS.resolve_job_def("decide_and_serve").execute_in_process(instance=instance).success
        )
        done = evaluate(quality, instance, cursor=waiting.cursor)
    assert not idle.run_requests and "no raw record waits" in idle.skip_reason.skip_message
    assert [r.job_name for r in waiting.run_requests] == ["decide_and_serve"]
    assert waiting.run_requests[0].tags["pulsemart/undecided"] == "10"
    assert not done.run_requests
