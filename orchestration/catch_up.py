"""Run the sensors' jobs in-process: land batches until every partition is caught up, then
decide what landed.

Used by `pulsemart ingest --until-caught-up` for CI, demos and backfills: the same jobs and
the same exactly-once batches as under the daemon, without the daemon.
"""

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

import dagster as dg

from orchestration.batch_workers import BatchWorkers
from orchestration.defs.ingest.assets import INGEST_JOBS, raw_op_name
from orchestration.defs.ingest.requests import run_request_for
from orchestration.defs.quality.assets import DECIDE_QUALITY_JOB, EVENTS_CLEAN
from orchestration.defs.serving.assets import REFRESH_SERVING_JOB, SERVING_KEYS
from orchestration.interrupts import stop_requested
from pulsemart.config import CATALOG_TOPIC, Settings
from pulsemart.store.db import connect_migrated
from pulsemart.store.raw import committed_offsets
from pulsemart.stream.observe import observe_lags
from pulsemart.stream.planner import PlannedBatch
from pulsemart.stream.reader import ReadError, make_consumer

# Dagster's console logger would print every event of every run; the CLI reports batches.
_QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class CatchUpReport:
    batches: int = 0
    records: int = 0
    bytes: int = 0
    ingest_seconds: float = 0.0
    quality: dict = field(default_factory=dict)  # the quality run's decisions, when it ran
    serving: dict = field(default_factory=dict)  # the serving refresh's metadata, when it ran


@cache
def _instance() -> dg.DagsterInstance:
    """One instance per process, made where it is used: a forked worker must not inherit the
    parent's (its SQLite connections belong to the parent's threads). With DAGSTER_HOME set
    (as under `pulsemart up`) the runs show in the UI."""
    return (
        dg.DagsterInstance.get()
        if os.environ.get("DAGSTER_HOME")
        else dg.DagsterInstance.ephemeral()
    )


def _lags(settings: Settings, topic: str):
    with connect_migrated(settings) as conn:
        committed = committed_offsets(conn, topic)
    consumer = make_consumer(settings)
    try:
        return observe_lags(consumer, topic, committed)
    finally:
        consumer.close()


def run_batch(
    defs: dg.Definitions, instance: dg.DagsterInstance, batch: PlannedBatch, max_seconds: float
) -> dict:
    job_name = INGEST_JOBS[batch.topic].name
    request = run_request_for(batch, job_name, max_seconds)
    run_config = {**request.run_config, **_QUIET}
    result = defs.resolve_job_def(job_name).execute_in_process(
        run_config=run_config, instance=instance, tags=request.tags, raise_on_error=True
    )
    materialization = result.asset_materializations_for_node(raw_op_name(batch.topic))[0]
    return {key: value.value for key, value in materialization.metadata.items()}


def run_quality(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    """The quality job, in-process: decides everything landed; returns its decision counts."""
    result = defs.resolve_job_def(DECIDE_QUALITY_JOB.name).execute_in_process(
        instance=instance, raise_on_error=True, run_config=_QUIET
    )
    materialization = next(
        m
        for m in result.asset_materializations_for_node("quality_decisions")
        if m.asset_key == EVENTS_CLEAN
    )
    return {key: value.value for key, value in materialization.metadata.items()}


def run_serving(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict:
    """The serving job, in-process: folds what quality released; returns its metadata."""
    result = defs.resolve_job_def(REFRESH_SERVING_JOB.name).execute_in_process(
        instance=instance, raise_on_error=True, run_config=_QUIET
    )
    materialization = next(
        m
        for m in result.asset_materializations_for_node("serving_tables")
        if m.asset_key == SERVING_KEYS["product_state"]
    )
    return {key: value.value for key, value in materialization.metadata.items()}


def _batch_in_worker(batch: PlannedBatch, max_seconds: float) -> dict:
    # Runs in a forked worker: the parent's imports and definitions are already loaded.
    from orchestration.streaming import defs

    return run_batch(defs, _instance(), batch, max_seconds)


def catch_up(
    settings: Settings,
    defs: dg.Definitions,
    topics: list[str],
    on_batch: Callable[[dict], None] | None = None,
    decide: bool = True,
    workers: int | None = None,
    serve: bool = False,
) -> CatchUpReport:
    """Ingest every partition of `topics` until none lags (end offsets plus a peek, see
    pulsemart.stream.observe), then, with `decide`, run the quality job once over it all.

    Each round lands one batch of every lagging partition, `workers` batches at a time in
    forked processes (default: one per core, at most the ingest pool's limit), as the daemon
    runs them side by side; each batch is its own exactly-once transaction. With `serve` (and
    `decide`), the serving job then folds the decisions into the serving tables.
    """
    workers = workers or min(os.cpu_count() or 1, settings.max_concurrent_batches)
    pool = BatchWorkers(workers) if workers > 1 else None
    try:
        report = _catch_up(settings, defs, topics, on_batch, decide, pool)
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM, Dagster's interruption) or failed: no worker may
        # outlive this call, nor be waited on without end.
        if pool:
            pool.stop()
        raise
    if pool:
        pool.close()
    _raise_if_stopped()
    if decide and serve:
        report.serving = run_serving(defs, _instance())
    return report


def _catch_up(settings, defs, topics, on_batch, decide, pool) -> CatchUpReport:
    report = CatchUpReport()
    started = time.perf_counter()
    # Batches that read nothing and moved nothing, per lag (topic, partition, committed, end).
    # A tail of transaction markers is found by the peek or stepped over by the batch; this is
    # the backstop for anything else that shows lag no read can take (an open transaction on
    # a broker whose end offsets run past it). One empty read may be a slow first fetch, so
    # the partition counts as caught up after the second.
    fruitless: Counter[tuple] = Counter()
    while True:
        _raise_if_stopped()
        lags = [lag for topic in topics for lag in _lags(settings, topic)]
        lost = [f"{lag.topic}[{lag.partition}]" for lag in lags if lag.missing]
        if lost:
            raise ReadError(
                f"the broker no longer holds the last stored records of {', '.join(lost)} "
                "(was the in-memory broker restarted?); see docs/ingestion.md"
            )
        # Catalog partitions first: orders then find the products they name instead of being
        # held until a later pass.
        lagging = sorted(
            (lag for lag in lags if lag.lag > 0 and fruitless[_key(lag)] < 2),
            key=lambda lag: lag.topic != CATALOG_TOPIC,
        )
        if not lagging:
            report.ingest_seconds = time.perf_counter() - started
            if decide:
                _raise_if_stopped()
                report.quality = run_quality(defs, _instance())
            return report
        batches = [
            PlannedBatch(lag.topic, lag.partition, lag.committed, settings.max_batch_events, 0)
            for lag in lagging
        ]
        if pool:
            landed = pool.map(
                _batch_in_worker, batches, [settings.max_batch_seconds] * len(batches)
            )
        else:
            landed = (
                run_batch(defs, _instance(), batch, settings.max_batch_seconds) for batch in batches
            )
        for lag, metadata in zip(lagging, landed, strict=True):
            if metadata["status"] == "empty":
                fruitless[_key(lag)] += 1
            report.batches += 1
            report.records += metadata["records"]
            report.bytes += metadata["bytes"]
            if on_batch:
                on_batch({"topic": lag.topic, **metadata})


def _raise_if_stopped() -> None:
    # A stop signal whose exception was lost inside a run (see orchestration.interrupts) ends
    # the catch-up here, between runs, as Ctrl-C would.
    if stop_requested():
        raise KeyboardInterrupt


def _key(lag) -> tuple:
    return lag.topic, lag.partition, lag.committed, lag.end
