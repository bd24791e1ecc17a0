"""The real-time worker: a long-lived member of the consumer group `pulsemart-realtime`.

Loop: wait for a record, gather more for the batch window (`realtime_batch_ms`; with a larger
`realtime_max_batch_ms`, longer while the stream keeps the worker busy: `window.py`), or up to
`realtime_max_records`, apply them in one transaction (`pipeline.apply_batch`), copy the
new offsets to the group, and every `realtime_report_interval_s` report to Dagster, write
the status file and copy owed batches to the archive.

PostgreSQL holds the truth. Whatever goes wrong between consuming and committing (a
compare-and-set conflict, PostgreSQL away, a bug) ends the same way: the batch is dropped,
the owned partitions are sought back to their stored offsets, and the records are read
again. SIGTERM and SIGINT finish the batch in flight, then leave the group.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import uuid
from typing import Any

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from pulsemart.config import CATALOG_TOPIC, TOPIC_PARTITIONS, Settings
from pulsemart.realtime import consumer as kafka
from pulsemart.realtime.checks import conservation_gaps_in
from pulsemart.realtime.guard import SlowBatchWatchdog, bound_session, describe_lock_holders
from pulsemart.realtime.pipeline import apply_batch, group_by_partition
from pulsemart.realtime.report import DagsterReporter, Window
from pulsemart.realtime.status import remove_status, write_status
from pulsemart.realtime.window import BatchWindow
from pulsemart.store import raw
from pulsemart.store.db import DatabaseError, connect_migrated

log = logging.getLogger(__name__)
BACKOFF_S = (0.5, 1, 2, 5, 10)
IDLE_POLL_S = 0.5  # how long a poll waits when nothing arrives (and how soon a stop is seen)
# Held records wait for products: deciding them again only pays when catalog records came, or
# now and then so that hold timeouts expire. Every batch would re-decide them all.
HELD_RECHECK_S = 5.0
# A batch commits in well under a second at any rate the lane sustains; one still running
# after this is logged while it runs (it fails at the lock or statement timeout, settings).
SLOW_BATCH_LOG_S = 3.0


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None):
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.run_id = f"realtime:{self.worker_id}"
        self.positions: dict[tuple[str, int], int | None] = {}  # owned partitions -> next offset
        self.unpositioned: set[tuple[str, int]] = set()  # owned, stored offset not read yet
        self.stopping = False
        self.conn: psycopg.Connection | None = None
        self.consumer: Consumer | None = None
        self.window = Window()
        self.reporter = DagsterReporter(settings.dagster_url) if settings.dagster_url else None
        self.stats: dict[str, Any] = {
            "batches": 0,
            "records": 0,
            "last_commit_at": None,
            "state": "starting",
        }
        self.watchdog: SlowBatchWatchdog | None = None
        self._kafka_down = False
        self._held_checked_at = 0.0
        self.batch_window = BatchWindow(
            settings.realtime_batch_ms / 1000,
            max(settings.realtime_batch_ms, settings.realtime_max_batch_ms) / 1000,
        )
        self._last_batch_s: float | None = None

    @property
    def db(self) -> psycopg.Connection:
        if self.conn is None:
            raise RuntimeError("the worker has no PostgreSQL connection")
        return self.conn

    @property
    def kafka(self) -> Consumer:
        if self.consumer is None:
            raise RuntimeError("the worker has not joined the group")
        return self.consumer

    # -- lifecycle ---------------------------------------------------------------------------
    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.watchdog = SlowBatchWatchdog(
            SLOW_BATCH_LOG_S,
            lambda: (
                f"lock_timeout {self.settings.realtime_lock_timeout_s:g}s, "
                f"statement_timeout {self.settings.realtime_statement_timeout_s:g}s"
            ),
        )
        self._connect_until_up()
        self.consumer = kafka.make_group_consumer(
            self.settings,
            self.worker_id,
            self.settings.realtime_session_timeout_ms,
            error_cb=self._kafka_error,
        )
        self.consumer.subscribe(
            list(TOPIC_PARTITIONS),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self._set_state("running")
        log.info("worker %s joined group %s", self.worker_id, kafka.GROUP_ID)
        next_report = time.monotonic() + self.settings.realtime_report_interval_s
        try:
            while not self.stopping:
                if self.unpositioned:
                    self._position()
                records = self._collect()
                if records:
                    self._process(records)
                if time.monotonic() >= next_report:
                    self._periodic()
                    next_report = time.monotonic() + self.settings.realtime_report_interval_s
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        log.info("worker %s stopping: leaving the group", self.worker_id)
        try:
            self._report()
        except Exception:  # the last report must not keep a stopping worker alive
            log.exception("last report failed")
        if self.consumer is not None:
            self.consumer.close()  # revokes the partitions and leaves the group now
        if self.conn is not None:
            self.conn.close()
        if self.reporter:
            self.reporter.close()
        if self.watchdog is not None:
            self.watchdog.close()
        remove_status(self.settings, self.worker_id)

    # -- Kafka -------------------------------------------------------------------------------
    def _kafka_error(self, error: KafkaError) -> None:
        if (
            error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT)
            and not self._kafka_down
        ):
            self._kafka_down = True
            self._set_state("waiting for Kafka")
            log.warning(
                "Kafka unreachable at %s (%s); retrying, nothing is lost",
                self.settings.kafka_bootstrap,
                error.str(),
            )

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        try:
            stored = self._stored_offsets() if self.conn is not None else None
        except (psycopg.Error, DatabaseError):
            stored = None
        if stored is None:  # PostgreSQL away: hold the partitions until their offsets are known
            consumer.incremental_assign(partitions)
            consumer.pause(partitions)
            self.unpositioned.update(keys)
        else:
            consumer.incremental_assign(kafka.positioned(partitions, stored))
            self.positions.update({key: stored.get(key) for key in keys})
        log.info("assigned %s", ", ".join(f"{t}[{p}]" for t, p in keys))
        self._write_status()

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            self.unpositioned.discard((tp.topic, tp.partition))
        if partitions:
            log.info("revoked %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions))
        if not self.stopping:
            self._write_status()

    def _collect(self) -> list:
        """Wait for one record, then gather what arrives within the batch window."""
        asked = time.monotonic()
        first = self.kafka.poll(IDLE_POLL_S)
        if first is None:
            return []
        messages = [first]
        got = time.monotonic()
        window = self.batch_window.next(got - asked, self._last_batch_s)
        self.stats["window_ms"] = round(window * 1000)
        deadline = got + window
        while len(messages) < self.settings.realtime_max_records and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            messages += self.kafka.consume(self.settings.realtime_max_records - len(messages), left)
        records = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("Kafka: %s", error.str())
                continue
            records.append(kafka.as_record(message))
        if records and self._kafka_down:
            self._kafka_back()
        return records

    def _kafka_back(self) -> None:
        self._kafka_down = False
        self._set_state("running")
        log.warning("Kafka reachable again")

    # -- PostgreSQL --------------------------------------------------------------------------
    def _stored_offsets(self) -> dict[tuple[str, int], int]:
        rows = self.db.execute(
            'select topic, "partition", next_offset from ingest.offsets'
        ).fetchall()
        self.db.commit()
        return {(t, p): o for t, p, o in rows}

    def _connect_until_up(self) -> None:
        attempt = 0
        while not self.stopping:
            try:
                self.conn = connect_migrated(self.settings)
                bound_session(
                    self.conn,
                    f"pulsemart-worker {self.worker_id}",
                    self.settings.realtime_lock_timeout_s,
                    self.settings.realtime_statement_timeout_s,
                )
                if attempt:
                    log.warning("PostgreSQL reachable again")
                return
            except (DatabaseError, psycopg.OperationalError) as exc:
                if attempt == 0:
                    self._set_state("waiting for PostgreSQL")
                    log.warning(
                        "PostgreSQL unreachable (%s); retrying with backoff, nothing is lost", exc
                    )
                time.sleep(BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
                attempt += 1

    def _position(self) -> None:
        """Seek every owned partition to its stored offset (after a conflict or an outage)."""
        try:
            stored = self._stored_offsets()
        except (psycopg.Error, DatabaseError):
            self._recover_database()
            return
        owned = set(self.positions) | self.unpositioned
        for key in owned:
            offset = stored.get(key)
            self.positions[key] = offset
            try:
                self.kafka.seek(
                    TopicPartition(*key, OFFSET_BEGINNING if offset is None else offset)
                )
            except KafkaException as exc:  # revoked meanwhile: its next owner seeks it
                log.info("could not seek %s[%s]: %s", *key, exc)
        paused = [TopicPartition(*key) for key in self.unpositioned]
        self.unpositioned.clear()
        if paused:
            self.kafka.resume(paused)

    def _recover_database(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.kafka.pause(self.kafka.assignment())
        self._connect_until_up()
        if self.conn is not None:
            self._set_state("running")
            self.unpositioned.update(self.positions)  # resumed after the seek in _position
            self._position()

    # -- the batch ---------------------------------------------------------------------------
    def _process(self, records: list) -> None:
        parts = group_by_partition(
            [r for r in records if (r.topic, r.partition) in self.positions], self.positions
        )
        if not parts:
            return
        include_held = (
            any(topic == CATALOG_TOPIC for topic, _ in parts)
            or time.monotonic() - self._held_checked_at >= HELD_RECHECK_S
        )
        conn = self.db
        if self.watchdog is not None:
            self.watchdog.started()
        try:
            outcome = apply_batch(
                conn,
                parts,
                self.positions,
                self.run_id,
                include_held=include_held,
                session_state=self.settings.session_state,
                trending_every_s=self.settings.trending_refresh_s,
            )
        except raw.OffsetConflict as conflict:
            log.info(
                "offsets moved under this worker (%s); seeking to the stored offsets", conflict
            )
            self._read_again(conn)
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
            conn.rollback()
            log.warning(
                "batch gave up waiting (%s); lock holders: %s; reading it again",
                str(exc).strip().splitlines()[0],
                describe_lock_holders(conn),
            )
            self._read_again(conn)
            return
        except psycopg.OperationalError as exc:
            log.warning(
                "PostgreSQL unreachable (%s); the batch is read again after it returns", exc
            )
            self._recover_database()
            return
        except psycopg.Error as exc:  # deadlock or serialization: harmless, read again
            log.warning("batch rolled back (%s); reading it again", exc)
            self._read_again(conn)
            return
        except Exception:  # a defect: keep the lane alive, and do not spin on it
            log.exception("batch failed and rolled back; reading it again in %s s", BACKOFF_S[-1])
            conn.rollback()
            time.sleep(BACKOFF_S[-1])
            self._read_again(conn)
            return
        finally:
            if self.watchdog is not None:
                self.watchdog.finished()
        conn.commit()
        if include_held:
            self._held_checked_at = time.monotonic()
        committed = []
        for part in outcome.landed:
            self.positions[(part.topic, part.partition)] = part.next_offset
            committed.append(TopicPartition(part.topic, part.partition, part.next_offset))
        self._mirror(committed)
        # Freshness of the batch is that of its oldest record: the one that waited longest.
        oldest = min(
            (r.timestamp for chunk in parts.values() for r in chunk if r.timestamp), default=None
        )
        self.window.add(outcome, time.time() - oldest / 1000 if oldest else None)
        self._last_batch_s = outcome.seconds
        self.stats["batches"] += 1
        self.stats["records"] += outcome.records
        self.stats["last_commit_at"] = time.time()

    def _read_again(self, conn: psycopg.Connection) -> None:
        conn.rollback()
        self.unpositioned.update(self.positions)
        self._position()

    def _mirror(self, offsets: list[TopicPartition]) -> None:
        """Copy committed offsets to the group, for lag tools only (PostgreSQL is the truth)."""
        try:
            self.kafka.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            log.debug("offsets not mirrored to the group: %s", exc)

    # -- every few seconds -------------------------------------------------------------------
    def _periodic(self) -> None:
        if self._kafka_down:
            try:
                self.kafka.list_topics(timeout=2)
                self._kafka_back()
            except KafkaException:
                pass
        try:
            self._report()
            self._archive()
        except psycopg.OperationalError:
            self._recover_database()
        self._write_status()

    def _lag(self) -> dict[tuple[str, int], int]:
        lag: dict[tuple[str, int], int] = {}
        for key, position in self.positions.items():
            try:
                _, high = self.kafka.get_watermark_offsets(TopicPartition(*key), cached=True)
            except KafkaException:
                continue
            if high >= 0 and position is not None:
                lag[key] = max(0, high - position)
        return lag

    def _report(self) -> None:
        if self.window.empty:
            return
        latency = self.window.latency_metadata()
        log.info(
            "%d batches, %d records; batch p95 %ss, produce to commit p95 %ss",
            self.window.batches,
            sum(self.window.records.values()),
            latency["batch_seconds_p95"],
            latency["freshness_seconds_p95"],
        )
        window, self.window = self.window, Window()
        if self.reporter is None:
            return
        window.lag = self._lag()
        self.reporter.submit(window, conservation_gaps_in(self.db, window.ranges))

    def _archive(self) -> None:
        if not self.settings.archive_enabled:
            return
        from pulsemart.stream.archive import archive_after_ingest

        # Owed batches older than a minute; one Parquet object per landed batch (see docs/lanes.md).
        archive_after_ingest(self.settings, self.db, None, retries=20)
        self.db.commit()

    def _set_state(self, state: str) -> None:
        self.stats["state"] = state
        self._write_status()

    def _write_status(self) -> None:
        lag = self._lag() if self.consumer is not None else {}
        write_status(
            self.settings,
            self.worker_id,
            {
                "worker_id": self.worker_id,
                "pid": os.getpid(),
                **self.stats,
                "partitions": [f"{t}[{p}]" for t, p in sorted(self.positions)],
                "lag": sum(lag.values()),
            },
        )
