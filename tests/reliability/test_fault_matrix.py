"""The fault matrix, process faults: each case injects one fault into a real pipeline run, lets
the pipeline finish as an operator would, and asserts conservation from the topic to the marts.
The delivery faults (a paused broker, duplicates, disorder, a burst) are test_fault_delivery.py.

SIGKILL of ingest batches at random points, sensor-planned, is `tests/integration/
test_exactly_once_sigkill.py` (100,000 events, five kills); here the quality pass is killed.
"""

from __future__ import annotations

import random
import time

import pytest

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.local import postgres
from pulsemart.stream.simulator import generate
from tests.reliability.faults import (
    FIRST_BATCH_LANDED,
    QUALITY_PASS_RUNNING,
    TOPICS,
    assert_conserved,
    catch_up_process,
    finish,
    kill_group,
    produce,
    report,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]


def test_quality_pass_sigkilled_mid_decision_decides_every_record_once(fresh_stream, db):
    produced = produce(fresh_stream, generate(30_000, seed=31, dirty_rate=0.1))
    catch_up(fresh_stream, defs, TOPICS, decide=False)  # landed, not decided
    rng = random.Random(5)
    kills = 0
    for _ in range(3):
        process = catch_up_process()
        wait_for(fresh_stream, QUALITY_PASS_RUNNING)
        time.sleep(rng.uniform(0.1, 1.5))
        if process.poll() is None:
            kill_group(process)
            kills += 1
    assert kills == 3  # every kill landed mid-pass, not after it
    assert (
        db.execute("select count(*) from quality.events_clean").fetchone()[0] == 0
    )  # all rolled back
    finish(fresh_stream)
    counts = assert_conserved(fresh_stream, db)
    assert counts["raw"] == produced
    report("quality pass SIGKILLed", kills=kills, produced=produced, **counts)


def test_postgres_restarted_mid_batch_loses_and_doubles_nothing(fresh_stream, db):
    produced = produce(fresh_stream, generate(60_000, seed=32))
    process = catch_up_process({"PULSEMART_MAX_BATCH_EVENTS": "2000"})
    wait_for(fresh_stream, FIRST_BATCH_LANDED)
    in_flight = process.poll() is None
    db.close()
    postgres.stop(fresh_stream)  # fast shutdown: open transactions are rolled back
    postgres.start(fresh_stream)
    output, _ = process.communicate(timeout=180)
    # The fault hit a run in progress, which failed loudly, naming PostgreSQL; it never
    # reports success on half a batch.
    assert in_flight
    assert process.returncode != 0 and "caught up" not in output
    assert (
        "cannot connect to PostgreSQL" in output or "PostgreSQL" in output.strip().splitlines()[-1]
    )
    finish(fresh_stream)
    from pulsemart.store.db import connect_migrated

    with connect_migrated(fresh_stream) as conn:
        counts = assert_conserved(fresh_stream, conn)
    assert counts["raw"] == produced
    report(
        "PostgreSQL restarted mid-batch",
        faulted_run_exit=process.returncode,
        produced=produced,
        faulted_run_said=output.strip().splitlines()[-1][:120] if output.strip() else "",
        **counts,
    )
