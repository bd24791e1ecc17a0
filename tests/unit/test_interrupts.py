"""A stop signal whose exception Python drops (raised inside a garbage-collection callback) is
still seen at the next checkpoint. Each case runs in its own interpreter: the wakeup descriptor
and the signal handlers are process-wide."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

LOST_IN_DEL = """
import gc, signal
from orchestration.interrupts import record_stop_signals, stop_requested, forget_stop_signals

def stop(signo, frame):
    raise KeyboardInterrupt  # what Dagster's handler does, with its own exception class

signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, stop)
{record}

class Finalized:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)  # the handler's exception is raised in __del__

Finalized()
gc.collect()
print("went on")  # the exception was lost: without a checkpoint the run would go on
{forget}
print("stop requested" if stop_requested() else "no stop seen")
"""
ROOT = Path(__file__).resolve().parents[2]


def _run(record: str, forget: str = "") -> subprocess.CompletedProcess:
    script = textwrap.dedent(LOST_IN_DEL).format(record=record, forget=forget)
    return subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def test_a_signal_whose_exception_was_lost_is_seen_at_the_checkpoint():
    result = _run("record_stop_signals()")
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" in result.stderr and "KeyboardInterrupt" in result.stderr
    assert result.stdout.split() == ["went", "on", "stop", "requested"]


@pytest.mark.parametrize(
    "record, forget",
    [("", ""), ("record_stop_signals()", "forget_stop_signals()")],
    ids=["never-recorded", "forgotten-in-a-forked-child"],
)
def test_nothing_is_seen_where_nothing_is_recorded(record, forget):
    result = _run(record, forget)
    assert result.returncode == 0, result.stderr
    assert "Exception ignored" in result.stderr
    assert result.stdout.split() == ["went", "on", "no", "stop", "seen"]


def test_other_signals_are_not_a_stop():
    script = (
        "import signal\n"
        "from orchestration.interrupts import record_stop_signals, stop_requested\n"
        "signal.signal(signal.SIGUSR1, lambda *_: None)\n"
        "record_stop_signals()\n"
        "signal.raise_signal(signal.SIGUSR1)\n"
        "print(stop_requested())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stdout.strip() == "False", result.stderr
