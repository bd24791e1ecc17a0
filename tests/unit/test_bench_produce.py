"""`pulsemart bench` replays the committed Online Retail extract by default, from any directory."""

from __future__ import annotations

import os
import subprocess
import sys

from pulsemart_bench.produce import DEFAULT_REPLAY_PATH

from tests.data import RETAIL_SAMPLE


def test_the_default_replay_is_the_committed_extract():
    assert DEFAULT_REPLAY_PATH == RETAIL_SAMPLE and DEFAULT_REPLAY_PATH.is_file()


def test_the_default_is_found_from_another_working_directory(tmp_path):
    script = "from pulsemart_bench.produce import DEFAULT_REPLAY_PATH as p; print(p.is_file(), p)"
    benchmarks = RETAIL_SAMPLE.parents[2] / "benchmarks"
    found = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(benchmarks)},
    )
    assert found.stdout.split() == ["True", str(RETAIL_SAMPLE)]
