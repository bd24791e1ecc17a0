"""Fault injection and the conservation check every reliability case ends with.

Conservation, end to end: every record the topic holds is in raw.events exactly once; every
raw record has exactly one quality decision (clean, quarantined or held); and the datamart,
built through Dagster, holds every clean order line once with the same total (its dbt
conservation test, run as an asset check, must pass).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from orchestration.catch_up import catch_up
from orchestration.definitions import defs
from pulsemart.local import broker
from pulsemart.store.contract_gate import conservation_gaps
from pulsemart.store.db import connect_migrated
from pulsemart.store.quality import DECIDE_LOCK
from tests.integration.helpers import produce_simulated, read_topic

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["shop.catalog", "shop.events"]


def catch_up_process(extra_env: dict | None = None) -> subprocess.Popen:
    """`pulsemart ingest --until-caught-up` in a process of its own, to be faulted."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "pulsemart"), "ingest", "--until-caught-up"],
        cwd=ROOT,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process and the batch workers it forked."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


@contextmanager
def broker_paused(settings, seconds: float):
    """SIGSTOP the broker (clients see a broker that stops answering), then SIGCONT it."""
    pid = broker.status(settings)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def wait_for(settings, sql: str, timeout_s: float = 60.0) -> None:
    """Poll `sql` (one boolean) on a connection of its own until it holds: the fault must land
    while the work is under way, not before it starts or after it ends."""
    deadline = time.monotonic() + timeout_s
    with connect_migrated(settings) as conn:
        conn.autocommit = True
        while not conn.execute(sql).fetchone()[0]:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {sql}")
            time.sleep(0.05)


FIRST_BATCH_LANDED = "select exists (select 1 from ingest.batches)"
QUALITY_PASS_RUNNING = (
    "select exists (select 1 from pg_locks where locktype = 'advisory' "  # noqa: S608 - a constant
    f"and objid = {DECIDE_LOCK} and granted)"
)


def finish(settings) -> None:
    """What an operator does after a fault: run the pipeline until it is caught up."""
    catch_up(settings, defs, TOPICS)


def assert_conserved(settings, db) -> dict:
    """The three-layer conservation check; returns the counts it compared."""
    db.rollback()
    for topic in TOPICS:
        in_topic = sorted((r.partition, r.offset) for r in read_topic(settings, topic))
        stored = db.execute(
            'select "partition", "offset" from raw.events where topic = %s order by 1, 2', (topic,)
        ).fetchall()
        assert [tuple(row) for row in stored] == in_topic, (
            f"{topic}: raw.events differs from the topic"
        )
    gaps = conservation_gaps(db)
    assert gaps.empty, gaps.to_string()
    undecided = db.execute("""
        select count(*) from raw.events r join quality.progress p using (topic, "partition")
        where r."offset" >= p.next_offset""").fetchone()[0]
    assert undecided == 0
    counts = dict(
        zip(
            ["raw", "clean", "quarantined", "held"],
            db.execute("""
        select (select count(*) from raw.events), (select count(*) from quality.events_clean),
               (select count(*) from quality.quarantine where released_at is null),
               (select count(*) from quality.held)""").fetchone(),
            strict=True,
        )
    )
    assert counts["clean"] + counts["quarantined"] + counts["held"] == counts["raw"]
    db.rollback()  # dbt swaps tables in: no read transaction may be open
    result = defs.resolve_job_def("datamart_build").execute_in_process(
        instance=dg.DagsterInstance.ephemeral()
    )
    failed = [
        e.event_specific_data.check_name
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
    ]
    assert result.success and failed == []
    lines = db.execute(
        "select (select count(*) from quality.order_lines_clean), "
        "(select count(*) from marts.fct_order_lines)"
    ).fetchone()
    assert lines[0] == lines[1]
    db.rollback()
    return {**counts, "order_lines": lines[0]}


def report(case: str, **figures) -> None:
    """One line per case for the closing note (`pytest -s tests/reliability`)."""
    print(f"[fault-matrix] {case}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def produce(settings, events) -> int:
    events = list(events)
    produce_simulated(settings, events)
    return len(events)
