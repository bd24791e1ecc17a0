"""The sensor's planning rules, on plain values."""

from pulsemart.stream.lag import PartitionLag, batch_size_for, partition_lags, with_hidden_lag
from pulsemart.stream.planner import PlannerSettings, plan_batches

T = "shop.events"
SETTINGS = PlannerSettings(min_events=100, max_events=1_000, max_concurrent=2, max_attempts=3)


def lags(*pairs):
    return [PartitionLag(T, p, committed, end) for p, (committed, end) in enumerate(pairs)]


def test_plans_one_batch_per_lagging_partition_from_its_committed_offset():
    plan = plan_batches(lags((0, 50), (10, 10), (5, 5000)), set(), {}, SETTINGS)
    assert [(b.partition, b.start_offset, b.max_events) for b in plan.batches] == [
        (2, 5, 1000),
        (0, 0, 100),
    ]
    assert [b.run_key for b in plan.batches] == [f"{T}:2:5:0", f"{T}:0:0:0"]
    assert plan.cursor == {"2": {"start": 5, "attempt": 0}, "0": {"start": 0, "attempt": 0}}


def test_no_lag_plans_nothing_and_says_why():
    plan = plan_batches(lags((10, 10), (3, 3)), set(), {}, SETTINGS)
    assert plan.batches == [] and plan.skip_reason() == "no partition lags"


def test_stale_end_offset_below_committed_is_not_lag():
    # The development broker reports the last batch's base offset + 1, below what was stored.
    plan = plan_batches(lags((102, 1)), set(), {}, SETTINGS)
    assert plan.batches == []


def test_pool_full_and_in_flight_partitions_are_skipped_with_reasons():
    plan = plan_batches(lags((0, 10), (0, 20), (0, 30)), {2}, {}, PlannerSettings(max_concurrent=2))
    assert [b.partition for b in plan.batches] == [1]
    assert f"{T}[2]: a batch is already in flight" in plan.skipped
    assert f"{T}[0]: pool full (2 batches in flight)" in plan.skipped


def test_a_range_that_did_not_move_is_retried_with_the_next_attempt():
    cursor = {"0": {"start": 7, "attempt": 0}}
    plan = plan_batches(lags((7, 90)), set(), cursor, SETTINGS)
    assert plan.batches[0].run_key == f"{T}:0:7:1"
    assert plan.cursor["0"] == {"start": 7, "attempt": 1}


def test_a_range_that_moved_starts_again_at_attempt_zero():
    cursor = {"0": {"start": 7, "attempt": 2}}
    plan = plan_batches(lags((57, 90)), set(), cursor, SETTINGS)
    assert plan.batches[0].run_key == f"{T}:0:57:0"


def test_gives_up_after_max_attempts_and_names_the_offset():
    cursor = {"0": {"start": 7, "attempt": 2}}
    plan = plan_batches(lags((7, 90)), set(), cursor, SETTINGS)
    assert plan.batches == []
    assert "stuck at offset 7 after 3 attempts" in plan.skip_reason()


def test_batches_grow_with_lag_between_floor_and_ceiling():
    assert [batch_size_for(lag, 100, 1000) for lag in (1, 100, 550, 10**6)] == [100, 100, 550, 1000]


def test_uncommitted_partitions_start_at_the_topic_beginning():
    result = partition_lags(T, {0: 4}, {0: 9, 1: 12}, {0: 0, 1: 3})
    assert [(lag.partition, lag.committed, lag.lag) for lag in result] == [(0, 4, 5), (1, 3, 9)]


def test_a_partition_whose_stored_records_the_broker_lost_is_not_read_on():
    lost = [PartitionLag(T, 0, 500, 40, missing=True), PartitionLag(T, 1, 0, 10)]
    plan = plan_batches(lost, set(), {}, SETTINGS)
    assert [b.partition for b in plan.batches] == [1]
    assert "no longer holds offset 499" in plan.skip_reason()


def test_a_peek_reveals_lag_hidden_by_a_stale_end_offset():
    observed = with_hidden_lag([PartitionLag(T, 0, 102, 1), PartitionLag(T, 1, 5, 5)], {0}, set())
    assert [(lag.partition, lag.lag) for lag in observed] == [(0, 1), (1, 0)]


def test_runs_of_other_topics_count_against_the_shared_pool():
    plan = plan_batches(
        lags((0, 10), (0, 20)), set(), {}, PlannerSettings(max_concurrent=3), pool_busy=2
    )
    assert [b.partition for b in plan.batches] == [1]
    assert f"{T}[0]: pool full (3 batches in flight)" in plan.skipped


def test_partitions_a_realtime_worker_keeps_are_left_to_it():
    from pulsemart.stream.lag import PartitionLag
    from pulsemart.stream.planner import PlannerSettings, plan_batches

    lags = [PartitionLag("shop.events", 0, 10, 50), PartitionLag("shop.events", 1, 10, 50)]
    plan = plan_batches(lags, set(), {}, PlannerSettings(), live={0})
    assert [b.partition for b in plan.batches] == [1]
    assert plan.skip_reason() == "shop.events[0]: a real-time worker is landing it"
