import pandas as pd
import pytest
from ml_builders import T0, frame

from ml.split import time_split


def test_cutoff_is_the_fraction_of_the_span():
    interactions = frame([("a", "p", 0), ("a", "q", 100), ("b", "p", 10)])
    split = time_split(interactions, 0.75)

    assert split.start == T0
    assert split.end == T0 + pd.Timedelta(days=100)
    assert split.cutoff == T0 + pd.Timedelta(days=75)
    assert split.window["cutoff"] == (T0 + pd.Timedelta(days=75)).isoformat()


def test_no_test_event_before_cutoff_and_test_customers_are_known(groups_frame):
    extra = frame([("newcomer", "g0p1", 89), ("g0c0", "g0p2", 45)])
    interactions = pd.concat([groups_frame, extra], ignore_index=True)
    split = time_split(interactions, 0.75)

    assert (split.train["event_time"] < split.cutoff).all()
    assert (split.test["event_time"] >= split.cutoff).all()
    assert set(split.test["customer_id"]) <= set(split.train["customer_id"])
    assert "newcomer" not in set(split.test["customer_id"])
    # Nothing lost but the newcomer's (test-only) rows.
    assert len(split.train) + len(split.test) == len(interactions) - 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_fraction_must_be_inside_zero_one(groups_frame, fraction):
    with pytest.raises(ValueError, match="train_fraction"):
        time_split(groups_frame, fraction)


def test_a_split_by_interactions_is_not_stretched_by_a_straggler():
    # Eight interactions over days 100..107 and one straggler stamped day 0.
    rows = [("s", "p", 0)] + [(f"c{i % 3}", f"p{i}", 100 + i) for i in range(8)]
    interactions = frame(rows)
    by_span = time_split(interactions, 0.75)
    assert len(by_span.train) == 1  # the span's cutoff (day 80) leaves only the straggler
    by_count = time_split(interactions, 0.75, by="interactions")
    assert by_count.cutoff == T0 + pd.Timedelta(days=105)  # 6 of the 9 lie before it
    assert len(by_count.train) == 6 and by_count.start == T0
    assert set(by_count.test["customer_id"]) <= set(by_count.train["customer_id"])
    with pytest.raises(ValueError, match="by must be"):
        time_split(interactions, 0.75, by="rows")
