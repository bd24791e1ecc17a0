"""The real-time batch window: the configured minimum at a trickle, the last batch's duration
(within bounds) while records wait for the worker."""

import pytest

from pulsemart.realtime.window import IDLE_WAIT_S, BatchWindow

WINDOW = BatchWindow(min_s=0.02, max_s=0.25)


def test_the_first_batch_and_a_waiting_worker_get_the_minimum():
    assert WINDOW.next(first_wait_s=0.0, last_batch_s=None) == 0.02
    assert WINDOW.next(first_wait_s=0.3, last_batch_s=0.1) == 0.02  # a trickle: idle before it
    assert WINDOW.next(first_wait_s=IDLE_WAIT_S * 2, last_batch_s=0.2) == 0.02


def test_a_busy_worker_gathers_as_long_as_its_last_batch_took_within_the_bounds():
    assert WINDOW.next(first_wait_s=0.0, last_batch_s=0.08) == 0.08
    assert WINDOW.next(first_wait_s=0.001, last_batch_s=0.005) == 0.02  # never below the minimum
    assert WINDOW.next(first_wait_s=0.0, last_batch_s=3.0) == 0.25  # nor above the maximum


def test_equal_bounds_keep_a_fixed_window():
    fixed = BatchWindow(0.02, 0.02)
    assert {fixed.next(0.0, d) for d in (None, 0.001, 0.08, 5.0)} == {0.02}


@pytest.mark.parametrize("bounds", [(0, 0.1), (0.2, 0.1), (-1, 1)])
def test_bounds_out_of_order_are_refused(bounds):
    with pytest.raises(ValueError, match="0 < min <= max"):
        BatchWindow(*bounds)
