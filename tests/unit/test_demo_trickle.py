"""`pulsemart up`'s trickle: dated now, a little dirty, and valid `pulsemart simulate` arguments."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from pulsemart.cli.simulate import simulate
from pulsemart.local.launcher import TRICKLE_DIRTY_RATE, trickle_args
from pulsemart.stream.simulator import generate


class TickingClock:
    """A wall clock that moves one second per reading, so times must come from it, in order."""

    def __init__(self, start: datetime):
        self.now = start
        self.readings = 0

    def __call__(self) -> datetime:
        self.readings += 1
        self.now += timedelta(seconds=1)
        return self.now


def event_time(record) -> datetime | None:
    try:
        value = json.loads(record.value)
        return datetime.fromisoformat(value["event_time"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a corrupted record may have no readable time


def test_a_live_trickle_dates_each_event_by_the_clock_when_it_is_generated():
    start = datetime.now(UTC).replace(microsecond=0)  # events carry milliseconds
    clock = TickingClock(start)
    records = generate(2_000, seed=5, clock=clock)
    first = next(records)  # lazily: the clock is read as records are drawn, not up front
    assert clock.readings == 1 and event_time(first) == start + timedelta(seconds=1)
    times = [event_time(r) for r in records]
    assert all(start < t <= clock.now for t in times)
    activity = times[199:]  # after the catalog bootstrap, each event reads the clock anew
    assert activity == sorted(activity) and len(set(activity)) == len(activity)
    assert clock.now - start < timedelta(seconds=2_100)  # no simulated hours ahead of the clock


def test_the_default_trickle_is_dirty_at_its_rate_and_today():
    now = datetime.now(UTC)
    records = list(generate(20_000, seed=9, dirty_rate=TRICKLE_DIRTY_RATE, clock=lambda: now))
    dirty = [r for r in records[200:] if r.truth is not None]
    assert 0.015 < len(dirty) / len(records[200:]) < 0.025
    assert len({r.truth["corruption"] for r in dirty}) >= 5  # fixes and quarantine both show
    clean_days = {event_time(r).date() for r in records if r.truth is None}
    assert clean_days == {now.date()}


def test_the_launcher_starts_simulate_live_and_dirty():
    args = trickle_args(rate=5.0, dirty_rate=TRICKLE_DIRTY_RATE, seed=42)
    assert args[0] == "simulate"
    params = simulate.make_context("simulate", args[1:]).params
    assert params["live"] is True and params["start_time"] is None
    assert params["dirty_rate"] == TRICKLE_DIRTY_RATE == 0.02 and params["rate"] == 5.0


def test_live_and_a_start_time_are_refused_together():
    from click.testing import CliRunner

    result = CliRunner().invoke(simulate, ["--live", "--start-time", "2024-03-01T00:00:00Z"])
    assert result.exit_code == 2 and "--live dates events now" in result.output


@pytest.mark.parametrize("rate", ["-0.1", "1.5"])
def test_up_refuses_a_dirty_rate_outside_zero_to_one(rate):
    from click.testing import CliRunner

    from pulsemart.cli.up import up

    result = CliRunner().invoke(up, ["--dirty-rate", rate])
    assert result.exit_code == 2 and "--dirty-rate" in result.output
