"""Bounds on the worker's PostgreSQL transactions, and what it says when one waits.

A worker that is SIGKILLed leaves its backend running: PostgreSQL notices the dead client only
when the statement in flight ends and it writes the result. Until then the backend holds the
offset rows and the decide lock, and the worker that takes over waits on them without a word.
So every worker session carries a `statement_timeout` (a killed worker's statement ends by
it, and so does its hold on the locks) and a `lock_timeout` (a worker that waits gives up, says
who held the lock, and reads the batch again), and a watchdog thread logs a batch that runs
longer than a few seconds while it runs.
"""

from __future__ import annotations

import logging
import threading
import time

import psycopg

log = logging.getLogger(__name__)

# Backends holding locks on the offset rows, other than our own: who a worker waited on.
_HOLDERS = """
select a.pid, coalesce(a.application_name, ''), coalesce(a.state, ''),
       coalesce(extract(epoch from now() - a.xact_start), 0)::float8, left(coalesce(a.query, ''), 120)
from pg_locks l join pg_stat_activity a on a.pid = l.pid
where l.granted and l.relation = 'ingest.offsets'::regclass and a.pid <> pg_backend_pid()
order by a.xact_start
"""


def bound_session(
    conn: psycopg.Connection,
    application_name: str,
    lock_timeout_s: float,
    statement_timeout_s: float,
) -> None:
    """Name the session (pg_stat_activity shows which worker a backend serves) and bound its
    waits; session-wide, so they hold for every transaction on `conn`."""
    conn.execute(
        "select set_config('application_name', %s, false), "
        "set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
        (
            application_name[:63],
            f"{int(lock_timeout_s * 1000)}ms",
            f"{int(statement_timeout_s * 1000)}ms",
        ),
    )
    conn.commit()


def describe_lock_holders(conn: psycopg.Connection) -> str:
    """One line per backend holding the offset rows (after a rollback, on the same connection)."""
    try:
        rows = conn.execute(_HOLDERS).fetchall()
        conn.commit()
    except psycopg.Error as exc:
        conn.rollback()
        return f"(could not list the holders: {exc})"
    if not rows:
        return "no backend holds the offset rows now"
    return "; ".join(
        f"pid {pid} {name or '?'} {state} for {age:.0f}s: {query!r}"
        for pid, name, state, age, query in rows
    )


class SlowBatchWatchdog:
    """A daemon thread that logs, once per batch, a batch still running after `after_s`."""

    def __init__(self, after_s: float, describe=lambda: ""):
        self.after_s = after_s
        self.describe = describe
        self._started_at: float | None = None
        self._warned = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="slow-batch-watchdog", daemon=True)
        self._thread.start()

    def started(self) -> None:
        self._warned = False
        self._started_at = time.monotonic()

    def finished(self) -> None:
        self._started_at = None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _watch(self) -> None:
        while not self._stop.wait(min(1.0, self.after_s / 2)):
            started = self._started_at
            if started is None or self._warned:
                continue
            running = time.monotonic() - started
            if running >= self.after_s:
                self._warned = True
                log.warning(
                    "batch still running after %.1fs: waiting on PostgreSQL (%s)",
                    running,
                    self.describe(),
                )
