"""Shared test set-up: the embedded stack every test that needs PostgreSQL or the broker shares.

The stack is session-scoped and lives here, at the root, so that the integration, reliability
and security suites start one PostgreSQL and one broker between them (a conftest that re-imports
a session fixture registers a second one, and with it a second stack). Under pytest-xdist each
worker is its own session, so each starts its own stack on its own ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time

import anyio
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from pulsemart.config import TOPIC_PARTITIONS, Environment, load_settings, variable_of
from pulsemart.local import stack
from pulsemart.local.processes import wait_until
from pulsemart.serving.fold import reset_fold
from pulsemart.store.db import connect_migrated
from tests.integration.helpers import free_port

# Settings a developer's shell may carry that would point the tests at another stack.
_FOREIGN_SETTINGS = ("PULSEMART_DATABASE_URL", "PULSEMART_KAFKA_BOOTSTRAP", "DAGSTER_HOME")

# The code locations read the settings their environment sets when they load (their Dagster
# resources show them), and test modules load them at collection, before any fixture runs: a
# PULSEMART_HOME or a database URL exported in the developer's shell must not reach them.
for _name in Environment.model_fields:
    os.environ.pop(variable_of(_name), None)

# anyio imports its submodules on first use (starlette's FileResponse reaches `anyio.open_file`
# in the first static file it serves), and pytest rewrites a plugin's modules, anyio's among
# them, as they are imported. Python 3.11's parser is not safe in two threads at once: a
# server a test runs in a thread that imported one while the main thread parsed another failed
# that response with "SystemError: AST constructor recursion depth mismatch". Import them all
# here, in the main thread, before any server starts.
for _name in dir(anyio):
    if not _name.startswith("_"):
        getattr(anyio, _name)


@pytest.fixture(scope="session")
def settings():
    # A folder of our own rather than pytest's tmp_path: pytest prunes old base folders, which
    # would pull the data folder from under a server still running for another session.
    home = tempfile.mkdtemp(prefix="pulsemart-test-")
    with pytest.MonkeyPatch.context() as env:
        for name in _FOREIGN_SETTINGS:
            env.delenv(name, raising=False)
        env.setenv("PULSEMART_HOME", home)
        env.setenv("PULSEMART_KAFKA_PORT", str(free_port()))
        settings = load_settings()
        stack.up(settings)
        try:
            yield settings
        finally:
            stack.down(settings)
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def fresh_stream(settings):
    """Empty shop topics and an empty raw/ingest store, so a test counts only its own records."""
    return reset_stream(settings)


def reset_stream(settings):
    """What `fresh_stream` does, for fixtures of a wider scope."""
    admin = KafkaAdminClient(**settings.kafka_client_config())
    try:
        existing = set(admin.list_topics())
        doomed = [t for t in TOPIC_PARTITIONS if t in existing]
        if doomed:
            admin.delete_topics(doomed)
        recreate = _Recreate(admin, doomed)
        wait_until(recreate, 60, "the shop topics, created again after deletion")
    finally:
        admin.close()
    with connect_migrated(settings) as conn:
        conn.execute(
            "truncate raw.events, ingest.offsets, ingest.batches, quality.progress, "
            "quality.events_clean, quality.order_lines_clean, quality.quarantine, "
            "quality.quarantine_lines, quality.held, quality.catalog_state, "
            "quality.batches cascade"
        )
        # The serving fold's state derives from the decisions just emptied: an earlier test's
        # newer price would outrank this test's events.
        reset_fold(conn)
        # The datamart's incremental models and snapshot would keep rows of earlier tests.
        conn.execute("drop schema if exists marts, snapshots, staging, intermediate cascade")
        conn.commit()
    return settings


class _Recreate:
    """Create every shop topic once its deletion is through. The broker deletes a topic
    asynchronously: just after `delete_topics` returned, its name may still be listed, or
    still be taken although it is no longer listed. A name stuck either way for a few seconds
    is deleted again (a fresh clone's run once waited out 30 s on one)."""

    RETRY_DELETE_S = 5.0

    def __init__(self, admin: KafkaAdminClient, doomed: list[str]):
        self.admin = admin
        self.deleting = set(doomed)
        self.taken: set[str] = set()
        self.since = time.monotonic()

    def __call__(self) -> bool:
        existing = set(self.admin.list_topics())
        self.deleting &= existing
        stuck = self.deleting | self.taken
        if stuck and time.monotonic() - self.since > self.RETRY_DELETE_S:
            with contextlib.suppress(KafkaError):
                self.admin.delete_topics(sorted(stuck))
            self.deleting |= stuck & existing
            self.taken.clear()
            self.since = time.monotonic()
            return False
        if self.deleting:
            return False
        self.taken.clear()
        for topic in (t for t in TOPIC_PARTITIONS if t not in existing):
            try:
                self.admin.create_topics([NewTopic(topic, TOPIC_PARTITIONS[topic], 1)])
            except TopicAlreadyExistsError:
                self.taken.add(topic)
        return not self.taken


@pytest.fixture
def db(settings):
    with connect_migrated(settings) as conn:
        yield conn


# The longest modules, longest first (measured with `--durations=0`, summed per module). With
# `--dist loadscope` a module runs on one xdist worker from start to end, and the workers take
# modules in collection order: starting these first keeps one of them from starting last and
# running on alone while the other workers sit idle.
LONGEST_FIRST = (
    "tests/integration/test_realtime.py",
    "tests/integration/test_exactly_once_sigkill.py",
    "tests/reliability/test_fault_delivery.py",
    "tests/integration/test_datamart_incremental.py",
    "tests/integration/test_datamart_outcomes.py",
    "tests/integration/test_exposures_faults.py",
    "tests/reliability/test_fault_matrix.py",
    "tests/integration/test_datamart.py",
    "tests/integration/test_ml_platform.py",
    "tests/integration/test_realtime_dagster.py",
    "tests/integration/test_shutdown.py",
    "tests/integration/test_quality_pipeline.py",
    "tests/integration/test_foreign_producer.py",
    "tests/reliability/test_fuzz.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
