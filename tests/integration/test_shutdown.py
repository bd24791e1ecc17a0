"""Runs stop when told: SIGTERM or SIGINT to `pulsemart ingest --until-caught-up` in mid-read
ends it within seconds, leaves no process behind (its forked workers included), and a rerun
lands the rest with nothing lost or doubled."""

import contextlib
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from pulsemart.config import EVENTS_TOPIC
from tests.integration.conftest import read_topic
from tests.integration.foreign import ROOT, cli_command, cli_env, living, run_cli, started_in
from tests.integration.helpers import produce_raw, stored_triples, topic_triples

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = 60_000


def stopped_within(process: subprocess.Popen, seconds: float, stderr_path) -> None:
    """Wait for `process` to exit; past `seconds`, fail with where each of its threads was
    (the CLI prints them on SIGUSR1) and the end of its stderr."""
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)
        pytest.fail(
            f"still running {seconds:g} s after the signal; its stacks and log:\n"
            + stderr_path.read_text()[-6000:]
        )


def start_ingest(stderr_path) -> subprocess.Popen:
    # Small batches, so the run is still reading when the signal comes.
    env = cli_env(PULSEMART_MAX_BATCH_EVENTS="3000")
    with open(stderr_path, "w") as stderr:
        return subprocess.Popen(
            cli_command("ingest", "--until-caught-up", "--no-decide", "--topic", EVENTS_TOPIC),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def wait_for_landing(process: subprocess.Popen, stderr_path, timeout_s: float = 120) -> None:
    """Until the first batch is reported: the workers are forked and reading."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, stderr_path.read_text()[-3000:]
        if " records" in stderr_path.read_text():
            return
        time.sleep(0.1)
    pytest.fail("no batch landed in time")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_read_ends_the_run_leaves_nothing_and_a_rerun_completes(
    fresh_stream, db, tmp_path, signum
):
    values = [json.dumps({"event_id": f"s{i}", "pad": "x" * 200}).encode() for i in range(EVENTS)]
    produce_raw(fresh_stream, EVENTS_TOPIC, values)
    log = tmp_path / "ingest.err"
    process = start_ingest(log)
    family = [process.pid]
    try:
        wait_for_landing(process, log)
        family += [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        assert len(family) > 1  # the forked batch workers: they must go too
        process.send_signal(signum)
        stopped_within(process, 10, log)  # the liveness bound, not a speed claim
        assert process.returncode == 130, log.read_text()[-3000:]
        assert "interrupted" in log.read_text()
        assert living(family) == []
    finally:
        for pid in living(family):  # only after a failure: do not leak into the next tests
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
    landed_before = len(stored_triples(db, EVENTS_TOPIC))
    db.rollback()
    assert landed_before < EVENTS  # it was stopped mid-read, not after

    rerun = run_cli(
        "ingest", "--until-caught-up", "--no-decide", "--topic", EVENTS_TOPIC, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert stored_triples(db, EVENTS_TOPIC) == topic_triples(read_topic(fresh_stream, EVENTS_TOPIC))
    (batches_overlapping,) = db.execute(
        "select count(*) from ingest.batches a join ingest.batches b on a.topic = b.topic "
        'and a."partition" = b."partition" and a.batch_id < b.batch_id '
        "and a.start_offset < b.next_offset and b.start_offset < a.next_offset"
    ).fetchone()
    assert batches_overlapping == 0  # no partial batch was left to be landed again


def started_run(dagster_home, job_name: str) -> bool:
    """Whether the runs `pulsemart ingest` records under `dagster_home` include a started
    run of `job_name` (read through Dagster's own storage, as the UI would)."""
    import dagster as dg

    if not (dagster_home / "storage").exists():
        return False
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return bool(
            instance.get_run_records(
                dg.RunsFilter(job_name=job_name, statuses=[dg.DagsterRunStatus.STARTED])
            )
        )


def test_a_signal_while_deciding_ends_the_quality_run_and_a_rerun_decides_each_record_once(
    fresh_stream, db, tmp_path
):
    from pulsemart.stream.producer import ProducedEvent, make_producer, produce_events
    from pulsemart.stream.simulator import generate

    producer = make_producer(fresh_stream)
    try:
        produce_events(
            producer, (ProducedEvent(e.topic, e.key, e.value) for e in generate(40_000, 3, 0.05))
        )
    finally:
        producer.close(timeout=10)
    landing = run_cli("ingest", "--until-caught-up", "--no-decide", timeout=300)
    assert landing.returncode == 0, landing.stderr[-3000:]

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    log = tmp_path / "decide.err"
    with open(log, "w") as stderr:
        process = subprocess.Popen(
            cli_command("ingest", "--until-caught-up"),
            cwd=ROOT,
            env=cli_env(DAGSTER_HOME=str(dagster_home)),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    family = [process.pid]
    try:
        deadline = time.monotonic() + 120
        while not started_run(dagster_home, "decide_quality"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        family += [child.pid for child in psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        stopped_within(process, 10, log)
        assert process.returncode == 130, log.read_text()[-3000:]
        assert living(family) == []
        # Nor a statement of it left running in the server, holding its locks.
        (running,) = db.execute(
            "select count(*) from pg_stat_activity where datname = current_database() "
            "and pid <> pg_backend_pid() and state = 'active' and backend_type = 'client backend'"
        ).fetchone()
        db.rollback()
        assert running == 0
    finally:
        for pid in living(family):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
    (decided_before,) = db.execute("select count(*) from quality.events_clean").fetchone()
    db.rollback()

    rerun = run_cli("ingest", "--until-caught-up", timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    raw = Counter(db.execute('select topic, "partition", "offset" from raw.events').fetchall())
    decided = Counter(
        db.execute(
            'select topic, "partition", "offset" from quality.events_clean '
            'union all select topic, "partition", "offset" from quality.quarantine '
            'union all select topic, "partition", "offset" from quality.held'
        ).fetchall()
    )
    assert decided == raw and len(raw) == 40_000
    assert decided_before < len(raw)  # the interrupted run had not finished deciding


def test_a_benchmark_told_to_stop_stops_the_stack_it_started(tmp_path):
    # By default SIGTERM ends a process at once: `pulsemart bench` left its PostgreSQL and
    # broker running. It now stops them, as on Ctrl-C.
    log_path = tmp_path / "bench.log"
    # The bench's temporary home goes here: short, for PostgreSQL's socket path (pytest's
    # tmp_path is too long for it).
    temp = Path(tempfile.mkdtemp(prefix="pmb-"))
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            cli_command(
                "bench",
                "produce",
                "--produce-events",
                "5000000",
                "--output",
                str(tmp_path / "B.md"),
            ),
            cwd=ROOT,
            env=cli_env(TMPDIR=str(temp)),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "bench produce:" not in log_path.read_text():  # the stack is up
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        homes = list(temp.glob("pulsemart-bench-*"))
        assert len(homes) == 1
        stack = started_in(homes[0], but=process.pid)
        assert len(stack) >= 2  # PostgreSQL and the broker at least
        process.send_signal(signal.SIGTERM)
        stopped_within(process, 60, log_path)
        deadline = time.monotonic() + 10
        while living(stack) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert living(stack) == [], log_path.read_text()[-3000:]
        assert not homes[0].exists()
    finally:
        if process.poll() is None:
            process.kill()
        shutil.rmtree(temp, ignore_errors=True)
