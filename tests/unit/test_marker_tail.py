"""A partition whose end offset is a transaction marker past its last record is caught up."""

from pulsemart.stream.lag import PartitionLag, with_hidden_lag
from pulsemart.stream.planner import PlannerSettings, plan_batches

T = "shop.events"


def test_a_peek_that_stepped_over_markers_only_marks_the_tail_and_clears_the_lag():
    # Committed at 15 (records 0..14 stored), end offset 16: offset 15 is a commit marker.
    observed = with_hidden_lag(
        [PartitionLag(T, 0, 15, 16)], unread=set(), missing=set(), positions={0: 16}
    )
    assert observed[0].marker_tail and observed[0].lag == 0


def test_a_peek_that_stopped_short_of_the_end_leaves_the_lag_for_a_run_to_find():
    observed = with_hidden_lag(
        [PartitionLag(T, 0, 15, 40)], unread=set(), missing=set(), positions={0: 16}
    )
    assert not observed[0].marker_tail and observed[0].lag == 25


def test_unread_records_win_over_a_position_past_the_end():
    observed = with_hidden_lag(
        [PartitionLag(T, 0, 15, 16)], unread={0}, missing=set(), positions={0: 30}
    )
    assert not observed[0].marker_tail and observed[0].lag == 1


def test_the_planner_requests_no_batch_for_a_marker_tail_and_says_so():
    lags = [PartitionLag(T, 0, 15, 16, marker_tail=True), PartitionLag(T, 1, 0, 10)]
    plan = plan_batches(lags, set(), {}, PlannerSettings(min_events=10))
    assert [b.partition for b in plan.batches] == [1]
    assert f"{T}[0]: caught up at offset 15" in plan.skip_reason()
    assert "transaction marker" in plan.skip_reason()


def test_a_marker_tail_alone_is_a_skip_with_the_marker_reason_not_no_lag():
    plan = plan_batches(
        [PartitionLag(T, 0, 15, 16, marker_tail=True)], set(), {}, PlannerSettings()
    )
    assert plan.batches == []
    assert (
        "transaction marker" in plan.skip_reason() and "no partition lags" not in plan.skip_reason()
    )
