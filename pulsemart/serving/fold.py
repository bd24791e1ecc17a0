"""Fold new clean events into the serving tables, one quality batch range at a time.

`refresh_serving` is the serving layer's unit of work. In one transaction, under an advisory
lock, it reads the quality batches released since `serving.progress`, folds their events into
`serving.product_state`, `serving.customer_profile`, `serving.session_funnel` and
`serving.recent_touches` (what each session and customer touched, for the blend) with set-based
upserts, recomputes `serving.trending` when it is due (every `trending_every_s` of event time:
a scan of the last hour of events, too dear for every micro-batch of a busy shop, and a list
that changes on every fold would leave the API's cache nothing to keep), logs what it touched in
`serving.fold_changes` (the response cache reads it), and advances the progress. A batch is therefore folded
exactly once: running again with no new batch changes nothing, and a killed run leaves nothing
half-folded.

Out-of-order events: each group of product attributes (description and category, price,
availability, customization options) keeps the event time of the event that set it, and an
upsert only overwrites a group with an event at least as recent. Counts, sums and the recent
products lists are order-independent. Every value is a bound parameter or comes from the
database; the statements below are constants.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from pulsemart.serving import statements as q
from pulsemart.store.rows import one_row

_SERVING_LOCK = 7_146_205  # advisory lock id: one serving fold at a time
# What the fold derives from the clean events; `serving.progress` says how far it has read.
FOLDED_TABLES = (
    "product_state",
    "customer_profile",
    "session_funnel",
    "recent_touches",
    "trending",
    "progress",
)
# What the blend may lend from (ml/blend.py): a session's last touches, and a customer's across
# sessions, each bounded in entries and in event-time age before the fold's newest event.
TOUCHES_KEPT = {"session": 20, "customer": 20}
TOUCH_MAX_AGE = {"session": timedelta(hours=2), "customer": timedelta(days=30)}


@dataclass(frozen=True)
class RefreshReport:
    """What one refresh folded. `batches` is 0 when there was nothing new (nothing changed)."""

    from_batch: int
    to_batch: int
    batches: int = 0
    events: int = 0
    order_lines: int = 0
    rows: dict = field(default_factory=dict)  # rows written per serving table
    max_event_time: datetime | None = None
    seconds: float = 0.0

    def event_time_lag_s(self, now: datetime | None = None) -> float | None:
        """Now minus the latest event time folded so far."""
        if self.max_event_time is None:
            return None
        return ((now or datetime.now(UTC)) - self.max_event_time).total_seconds()


def refresh_serving(
    conn: psycopg.Connection,
    max_batches: int | None = None,
    session_state: bool = True,
    trending_every_s: float = 0.0,
) -> RefreshReport:
    """Fold every quality batch released since the last refresh (or the next `max_batches`);
    without `session_state`, `serving.recent_touches` is left as it is. `serving.trending` is
    recomputed once the newest event time folded is `trending_every_s` past the one it was
    computed as of (0: on every fold)."""
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SERVING_LOCK,))
        row = conn.execute(
            "select quality_batch_id, max_event_time, trending_as_of from serving.progress"
        ).fetchone()
        last, max_time, trending_as_of = row if row else (0, None, None)
        # Batch ids are allocated under the quality layer's decide lock, so no batch with a
        # smaller id can commit after this one: folding up to the newest committed id misses none.
        (upper,) = one_row(conn.execute(q.NEXT_BATCH, {"last": last, "limit": max_batches}))
        if upper is None:
            return RefreshReport(
                last, last, max_event_time=max_time, seconds=time.perf_counter() - started
            )
        bounds = {"last": last, "upper": upper}
        conn.execute(q.CREATE_STAGE)
        events = conn.execute(q.STAGE_EVENTS, bounds).rowcount
        lines = conn.execute(q.STAGE_LINES).rowcount
        conn.execute("analyze fold_events, fold_lines")  # temporary tables have no statistics
        (batches,) = one_row(conn.execute(q.COUNT_BATCHES, bounds))
        categories_before, catalog_before = one_row(conn.execute(q.FOLD_CATEGORIES))
        attributes = changed_attributes = 0
        for statement in q.PRODUCT_ATTRIBUTE_UPSERTS:
            written = conn.execute(statement).fetchall()
            attributes += len(written)
            changed_attributes += sum(1 for (changed,) in written if changed)
        rows = {"product_state": attributes + conn.execute(q.PRODUCT_COUNTERS).rowcount}
        rows["customer_profile"] = conn.execute(q.CUSTOMER_UPSERT).rowcount
        rows["session_funnel"] = conn.execute(q.SESSION_UPSERT).rowcount
        (max_time,) = one_row(conn.execute(q.MAX_EVENT_TIME, {"previous": max_time}))
        expired: dict[str, set[str]] = {"session": set(), "customer": set()}
        if session_state:
            rows["recent_touches"] = _fold_touches(conn, max_time, expired)
        trending = _trending_due(max_time, trending_as_of, trending_every_s)
        if trending:
            rows["trending"] = _recompute_trending(conn, max_time)
            trending_as_of = max_time
        categories_after, catalog_after = one_row(conn.execute(q.FOLD_CATEGORIES))
        conn.execute(q.FORGET_LATER_FOLDS, bounds)
        conn.execute(
            q.LOG_FOLD_CHANGES,
            {
                **bounds,
                "categories_before": categories_before,
                "categories_after": categories_after,
                "catalog_before": catalog_before,
                "catalog_after": catalog_after,
                "expired_customers": sorted(expired["customer"]),
                "expired_sessions": sorted(expired["session"]),
                "catalog": changed_attributes > 0,
            },
        )
        conn.execute(q.PRUNE_FOLD_CHANGES)
        conn.execute(
            q.ADVANCE,
            {
                "upper": upper,
                "max_event_time": max_time,
                "trending_as_of": trending_as_of,
                "events": events,
            },
        )
    return RefreshReport(
        last, upper, int(batches), events, lines, rows, max_time, time.perf_counter() - started
    )


def _trending_due(newest: datetime | None, as_of: datetime | None, every_s: float) -> bool:
    """Whether the fold recomputes trending: on every fold with `every_s` 0; otherwise once the
    newest event time is `every_s` past the last computation's (or before it: a rewind)."""
    if newest is None:
        return False
    if as_of is None or every_s <= 0:
        return True
    elapsed = (newest - as_of).total_seconds()
    return elapsed >= every_s or elapsed < 0


def _recompute_trending(conn: psycopg.Connection, as_of: datetime) -> int:
    conn.execute("delete from serving.trending")
    return conn.execute(q.TRENDING, {"as_of": as_of}).rowcount


def refresh_trending(conn: psycopg.Connection) -> None:
    """Recompute `serving.trending` as of the newest event time folded, now: what a fold with
    the trending interval 0 would have left. (The response cache sees `trending_as_of` move.)"""
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_SERVING_LOCK,))
        row = conn.execute(
            "select quality_batch_id, max_event_time from serving.progress"
        ).fetchone()
        if row is None or row[1] is None:
            return
        _recompute_trending(conn, row[1])
        conn.execute(
            "update serving.progress set trending_as_of = max_event_time, updated_at = now()"
        )


def _fold_touches(
    conn: psycopg.Connection, newest: datetime | None, expired: dict[str, set[str]]
) -> int:
    """Merge the batch's touches into `serving.recent_touches`, then age out the rest; the
    owners whose touches aged out go to `expired` by scope."""
    since = {
        scope: newest - age if newest is not None else None for scope, age in TOUCH_MAX_AGE.items()
    }
    written = conn.execute(
        q.RECENT_TOUCHES_UPSERT,
        {
            "session_n": TOUCHES_KEPT["session"],
            "customer_n": TOUCHES_KEPT["customer"],
            "session_since": since["session"],
            "customer_since": since["customer"],
        },
    ).rowcount
    for scope, bound in since.items():
        if bound is not None:
            aged, emptied = q.RECENT_TOUCHES_EXPIRE
            cur = conn.execute(aged, {"scope": scope, "since": bound})
            expired[scope].update(owner for (owner,) in cur.fetchall())
            conn.execute(emptied, {"scope": scope})
    return written


def reset_fold(conn: psycopg.Connection) -> None:
    """Empty the folded tables and rewind the progress, so the next refresh folds every clean
    event still stored from scratch. A Kappa reset calls it in its own transaction: the
    replayed records get new quality batch ids, which a fold that kept its state would count
    a second time."""
    conn.execute("select pg_advisory_xact_lock(%s)", (_SERVING_LOCK,))
    for table in (*FOLDED_TABLES, "fold_changes"):
        conn.execute(
            psycopg.sql.SQL("delete from {}").format(psycopg.sql.Identifier("serving", table))
        )
