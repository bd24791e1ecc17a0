"""The bootstrap decision: the first datamart build, then the first model, each requested once."""

from __future__ import annotations

import pytest

from pulsemart.ml_store.bootstrap import (
    DATAMART,
    MODEL,
    BootstrapState,
    BootstrapThresholds,
    next_step,
)

LOW = BootstrapThresholds(min_clean_events=100, min_purchases=10)


def state(clean=0, purchases=0, mart=False, evaluated=False, building=False) -> BootstrapState:
    return BootstrapState(clean, purchases, mart, evaluated, building)


def test_waits_for_enough_clean_events_before_the_first_datamart_build():
    waiting = next_step(state(clean=99, purchases=50), set(), LOW)
    assert waiting.step is None and "99 clean events" in waiting.reason and "100" in waiting.reason
    assert next_step(state(clean=100), set(), LOW).step == DATAMART


def test_the_model_waits_for_the_mart_and_for_purchases():
    # Purchases enough but no mart: the datamart comes first, the model is not asked for.
    assert next_step(state(clean=500, purchases=500), set(), LOW).step == DATAMART
    few = next_step(state(purchases=9, mart=True), {DATAMART}, LOW)
    assert few.step is None and "9 purchases in the mart" in few.reason
    assert next_step(state(purchases=10, mart=True), {DATAMART}, LOW).step == MODEL


def test_the_model_waits_while_a_datamart_build_is_in_flight():
    # The build creates the mart's table before the models the training read joins.
    busy = next_step(state(purchases=10**6, mart=True, building=True), {DATAMART}, LOW)
    assert busy.step is None and "in flight" in busy.reason
    assert next_step(state(purchases=10**6, mart=True), {DATAMART}, LOW).step == MODEL


def test_an_existing_mart_or_model_is_never_bootstrapped_again():
    assert next_step(state(clean=10**6, purchases=10**6, mart=True), set(), LOW).step == MODEL
    done = next_step(state(clean=10**6, purchases=10**6, mart=False, evaluated=True), set(), LOW)
    assert done.step is None and done.reason.startswith("done")


def test_each_step_is_requested_once_even_when_its_run_fails():
    # The datamart run failed: no mart appears, and the sensor does not ask again.
    failed = next_step(state(clean=10**6, purchases=10**6), {DATAMART}, LOW)
    assert failed.step is None and "datamart_build" in failed.reason
    again = next_step(state(purchases=10**6, mart=True), {DATAMART, MODEL}, LOW)
    assert again.step is None and "ml_train" in again.reason


def test_a_stream_growing_tick_by_tick_requests_each_step_exactly_once():
    requested: set[str] = set()
    asked = []
    mart = evaluated = False
    for tick in range(40):
        decision = next_step(
            state(clean=tick * 20, purchases=tick, mart=mart, evaluated=evaluated), requested, LOW
        )
        if decision.step:
            asked.append((tick, decision.step))
            requested.add(decision.step)
        # The runs finish two ticks after they are asked for.
        mart = mart or any(step == DATAMART and tick - t >= 2 for t, step in asked)
        evaluated = evaluated or any(step == MODEL and tick - t >= 2 for t, step in asked)
    assert asked == [(5, DATAMART), (10, MODEL)]


def test_an_unknown_step_in_the_cursor_is_an_error():
    with pytest.raises(ValueError, match="unknown bootstrap step"):
        next_step(state(), {"warehouse"}, LOW)
