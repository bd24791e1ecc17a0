"""A response cache for the read routes: an answer stays valid until something it depends on
changes.

What changes the serving tables, and how the cache learns of it:
- the fold: each fold logs what it touched in `serving.fold_changes` (products, their lowered
  categories, customers, sessions, and whether any product's attributes changed) in the
  transaction that advances `serving.progress`, and a recomputed trending list moves
  `serving.progress.trending_as_of`;
- batch scoring (new `scored_at` in the score tables), a promotion or rollback
  (`serving.model_deployments`) and an experiment's start or end (`serving.experiments`):
  rare, and they empty the whole cache.

A poller per process reads all of it in one statement every `poll_s`, over a connection of
its own (not the pool's, which requests may hold under load), in a thread of its own (on the
event loop, a saturated loop delayed each round past the bound, and every answer of the
meantime was read and not kept). Each entry carries its dependencies, a set of tags
(`product_tags` and friends below); a fold's change drops the entries whose tags it names,
and the rest stay valid. Where the log cannot tell what changed (the first read, a reset that
rewound the progress, a reader that fell behind the rows the fold keeps), everything is
dropped.

Staleness bound, by construction: a hit is served only if the change log was read at most
`max_staleness_s` ago (otherwise the request goes to the database), and every commit before
that read either is in the log it returned or changed the global version. An answer computed
while a change it depends on was being observed is not kept (`begin` and `put`). So an answer
never misses a change committed more than `max_staleness_s` before the request. The poller's
lag (a slow database) costs hits, never freshness. The requests (on the event loop) and the
poller (on its thread) share the entries under one lock, held only for dictionary work.
`max_staleness_s=0` turns the cache off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from contextlib import suppress
from dataclasses import dataclass

import psycopg

from pulsemart.store.db import DatabaseError
from pulsemart.store.rows import one_row

log = logging.getLogger(__name__)

# `seen` is the progress the cache has applied; far above any batch id, nothing is read.
POLL = """
select (select quality_batch_id from serving.progress),
       (select trending_as_of from serving.progress)::text,
       (select max(deployed_at) from serving.model_deployments)::text,
       (select max(scored_at) from serving.recommendations)::text,
       (select max(scored_at) from serving.propensity_scores)::text,
       (select count(*) || ':' || coalesce(max(coalesce(ended_at, started_at))::text, '')
        from serving.experiments),
       (select coalesce(jsonb_agg(jsonb_build_array(from_batch, to_batch, products, categories,
                                                    customers, sessions, catalog,
                                                    catalog_categories)
                                  order by to_batch), '[]')
        from serving.fold_changes where to_batch > %(seen)s)
"""
NOTHING_SEEN = 2**62
POLL_S = 0.1
MAX_STALENESS_S = 0.25
MAX_ENTRIES = 16384  # answers and rows: a catalog's rows in two views and thousands of answers
INVALIDATIONS_KEPT = 256  # enough for the requests in flight across a few polls

# Tags. An entry that depends on any product (a search without a category) carries
# ANY_PRODUCT, and one that depends on any product's attributes (which products are available,
# at what price) CATALOG; each fold that names a product names ANY_PRODUCT, and CATALOG when an
# attribute changed.
ANY_PRODUCT = ("product",)
CATALOG = ("catalog",)
TRENDING = ("trending",)
EVERYTHING = None  # an invalidation that drops every entry


def product_tag(product_id: str) -> tuple:
    return ("product", product_id)


def category_tag(category: str) -> tuple | None:
    """The tag of a lowered category; None where Python's lower() may differ from
    PostgreSQL's (non-ASCII): such an entry depends on every product instead."""
    return ("category", category.lower()) if category.isascii() else None


def catalog_category_tag(category: str) -> tuple | None:
    """The tag of a lowered category whose products' attributes changed (not their counters);
    None outside ASCII, as `category_tag`."""
    return ("catalog_category", category.lower()) if category.isascii() else None


def customer_tag(customer_id: str) -> tuple:
    return ("customer", customer_id)


def session_tag(session_id: str) -> tuple:
    return ("session", session_id)


def row_key(view: str, product_id: str) -> tuple:
    """The key of a product's row as the answers of one `view` show it (fragments.py): an entry
    of its own, depending on that product alone."""
    return ("row", view, product_id)


@dataclass(frozen=True)
class Composed:
    """An answer kept as its parts: `head`, then the body of each row entry in `rows`, joined
    by commas (a row with extra fields, `{...}` bytes, has them spliced in before its closing
    brace), then `tail`.

    Why: every view moves a product's counters, and an answer that shows them would go with
    every view of any product it lists. Kept apart, the answer's shape (which products, in
    what order) depends only on what decides it, and each row is replaced on its own."""

    head: bytes
    rows: tuple[tuple[Hashable, bytes], ...]
    tail: bytes

    def render(self, bodies: Iterable[bytes]) -> bytes:
        parts = [
            body if extra == b"{}" else body[:-1] + b"," + extra[1:]
            for body, (_, extra) in zip(bodies, self.rows, strict=True)
        ]
        return self.head + b",".join(parts) + self.tail


# The poller's way to read row entries again: (connection, row keys) -> (key, body, tags).
Refresh = Callable[
    [psycopg.Connection, list[tuple]], Iterable[tuple[Hashable, bytes | Composed, Iterable]]
]


@dataclass(frozen=True)
class FoldChange:
    from_batch: int
    to_batch: int
    tags: frozenset


def fold_change(row: list) -> FoldChange:
    """One row of the poll's change list as a FoldChange."""
    from_batch, to_batch, products, categories, customers, sessions, catalog, catalog_categories = (
        row
    )
    tags = {product_tag(p) for p in products} | {("category", c) for c in categories}
    tags |= {("catalog_category", c) for c in catalog_categories}
    tags |= {customer_tag(c) for c in customers} | {session_tag(s) for s in sessions}
    if products:
        tags.add(ANY_PRODUCT)
    if catalog:
        tags.add(CATALOG)
    return FoldChange(int(from_batch), int(to_batch), frozenset(tags))


class ResponseCache:
    """Bodies keyed by request, each with the tags of what it depends on."""

    def __init__(
        self,
        max_staleness_s: float = MAX_STALENESS_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_staleness_s = max_staleness_s
        self.max_entries = max_entries
        self._clock = clock
        self._global: Hashable | None = None  # deployments and scoring
        self._batch: int | None = None  # the fold progress the entries reflect
        self._trending: Hashable | None = None  # the trending list's as_of
        self._read_at = float("-inf")  # when the statement that read them was sent
        self._entries: OrderedDict[Hashable, tuple[bytes | Composed, frozenset]] = OrderedDict()
        self._by_tag: dict[Hashable, set[Hashable]] = {}
        self._generation = 0  # counts invalidations
        self._invalidations: deque[tuple[int, frozenset | None]] = deque(maxlen=INVALIDATIONS_KEPT)
        self.hits = self.misses = 0
        self._dropped_rows: list[tuple] = []  # by the call in progress, under the lock
        self._lock = threading.Lock()

    # --- what the poller observes ---------------------------------------------------------------

    @property
    def seen(self) -> int:
        return NOTHING_SEEN if self._batch is None else self._batch

    def observe(
        self,
        global_version: Hashable,
        batch: int | None,
        changes: Iterable[FoldChange],
        read_at: float,
        trending: Hashable | None = None,
    ) -> list[tuple]:
        """Apply what a poll sent at `read_at` (the clock's time) read: the global version,
        the fold progress, the folds logged after the progress this cache had applied, and
        the trending list's as_of. Returns the row entries (`row_key`) it dropped, for the
        poller to read again."""
        changes = list(changes)
        with self._lock:
            self._dropped_rows = []
            self._observe(global_version, batch, changes, read_at, trending)
            return self._dropped_rows

    def _observe(
        self,
        global_version: Hashable,
        batch: int | None,
        changes: list[FoldChange],
        read_at: float,
        trending: Hashable | None,
    ) -> None:
        if global_version != self._global or batch is None or self._batch is None:
            if self._entries or self._global is not None:
                self._invalidate(EVERYTHING)
        else:
            chain, expected = [], self._batch
            for change in changes:
                if change.from_batch != expected or change.to_batch > batch:
                    break
                chain.append(change)
                expected = change.to_batch
            tags = frozenset().union(*(c.tags for c in chain))
            if trending != self._trending:
                tags |= {TRENDING}
            if expected != batch:  # rewound (a reset) or past what the fold keeps
                self._invalidate(EVERYTHING)
            elif tags:
                self._invalidate(tags)
        self._global, self._batch, self._read_at = global_version, batch, read_at
        self._trending = trending

    def _invalidate(self, tags: frozenset | None) -> None:
        self._generation += 1
        self._invalidations.append((self._generation, tags))
        if tags is EVERYTHING:
            self._entries.clear()
            self._by_tag.clear()
            return
        for tag in tags:
            for key in self._by_tag.pop(tag, ()):
                self._drop(key)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        if isinstance(key, tuple) and key[:1] == ("row",):
            self._dropped_rows.append(key)
        for tag in entry[1]:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    # --- what a request does --------------------------------------------------------------------

    def fresh(self) -> bool:
        """Whether the last poll is recent enough to answer from memory."""
        return self._clock() - self._read_at <= self.max_staleness_s

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key) if self.fresh() else None
            body = entry[0] if entry is not None else None
            if isinstance(body, Composed):
                body = self._render(body)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)  # the oldest unread goes first when full
            self.hits += 1
            return body

    def _render(self, composed: Composed) -> bytes | None:
        """A composed answer from its row entries; None if one of them is gone."""
        bodies = []
        for key, _ in composed.rows:
            entry = self._entries.get(key)
            if entry is None or not isinstance(entry[0], bytes):
                return None
            self._entries.move_to_end(key)
            bodies.append(entry[0])
        return composed.render(bodies)

    def begin(self) -> int | None:
        """A token to take before reading the database for an answer to keep (None: the
        cache is too stale to keep one)."""
        with self._lock:
            return self._generation if self.fresh() else None

    def put(self, key: Hashable, token: int | None, body: bytes | Composed, tags: Iterable) -> None:
        """Keep `body`, read after `begin` returned `token`, depending on `tags`; not kept if
        an invalidation since then may have hit it."""
        self.put_many(token, [(key, body, tags)])

    def put_many(
        self, token: int | None, entries: Iterable[tuple[Hashable, bytes | Composed, Iterable]]
    ) -> None:
        """`put` for each (key, body, tags), all read after `begin` returned `token`."""
        if token is None:
            return
        kept = [(key, body, frozenset(tags)) for key, body, tags in entries]
        with self._lock:
            self._dropped_rows = []
            for key, body, tags in kept:
                self._put(key, token, body, tags)

    def _put(self, key: Hashable, token: int, body: bytes | Composed, tags: frozenset) -> None:
        if token < self._generation:
            oldest = self._invalidations[0][0] if self._invalidations else self._generation + 1
            if token + 1 < oldest:
                return  # invalidations since the token are no longer known
            for generation, dropped in self._invalidations:
                if generation > token and (dropped is EVERYTHING or dropped & tags):
                    return
        self._drop(key)
        self._entries[key] = (body, tags)
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        if len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def __len__(self) -> int:
        return len(self._entries)

    # --- the poller -----------------------------------------------------------------------------

    def poll(
        self, connect, stop: threading.Event, poll_s: float = POLL_S, refresh: Refresh | None = None
    ) -> None:
        """Read the change log every `poll_s` until `stop` is set, over a connection of its
        own from `connect()` (a psycopg Connection), opened again after an error. Meant for a
        thread of its own (`start_poller`). With `refresh`, the row entries a round dropped
        are read again at once (`refresh(conn, keys)` gives their entries), so that the
        answers composed of them stay whole."""
        conn = None
        try:
            while not stop.is_set():
                sent = self._clock()
                try:
                    if conn is None:
                        conn = connect()
                    cur = conn.execute(POLL, {"seen": self.seen})
                    batch, trending, *global_version, changes = one_row(cur)
                    dropped = self.observe(
                        tuple(global_version), batch, map(fold_change, changes), sent, trending
                    )
                    if refresh is not None and dropped:
                        token = self.begin()
                        self.put_many(token, refresh(conn, dropped))
                except (psycopg.Error, OSError, DatabaseError) as exc:
                    # The database is away (or not started; the embedded server's address is
                    # then unknown, a DatabaseError): entries age out, requests go through, and
                    # the next round connects again.
                    log.debug("serving cache: cannot read the change log: %s", exc)
                    if conn is not None:
                        with suppress(Exception):
                            conn.close()
                        conn = None
                stop.wait(poll_s)
        finally:
            if conn is not None:
                with suppress(Exception):
                    conn.close()


def start_poller(
    cache: ResponseCache, connect, poll_s: float = POLL_S, refresh: Refresh | None = None
) -> tuple[threading.Thread, threading.Event]:
    """`cache.poll` started on a daemon thread; set the event to stop it, then join it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=cache.poll,
        args=(connect, stop, poll_s, refresh),
        name="serving-cache-poller",
        daemon=True,
    )
    thread.start()
    return thread, stop
