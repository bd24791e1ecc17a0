"""A response cache for the read routes, valid while the served data has not changed.

The serving tables change only when something commits a new state: the fold (which advances
`serving.progress`), batch scoring (new `scored_at` in the score tables) and a promotion or
rollback (`serving.model_deployments`). `VERSION` reads all of that in one cheap statement; a
poller per process runs it every `poll_s`, and an entry is served only while the version it was
computed under is still the current one.

Staleness bound, by construction: a hit is served only if the version was read at most
`max_staleness_s` ago (otherwise the request goes to the database), and every commit before
that read changed the version. So an answer never misses a change committed more than
`max_staleness_s` before the request. The poller's lag (a starved event loop, a slow database)
costs hits, never freshness. `max_staleness_s=0` turns the cache off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextlib import suppress

import psycopg
from psycopg_pool import AsyncConnectionPool

from pulsemart.store.rows import one_row_async

log = logging.getLogger(__name__)

VERSION = """
select (select jsonb_agg(p) from serving.progress p)::text,
       (select max(deployed_at) from serving.model_deployments)::text,
       (select max(scored_at) from serving.recommendations)::text,
       (select max(scored_at) from serving.propensity_scores)::text
"""
POLL_S = 0.1
MAX_STALENESS_S = 0.25
MAX_ENTRIES = 4096


class ResponseCache:
    """Bodies keyed by request, each tagged with the data version it was read under."""

    def __init__(
        self,
        max_staleness_s: float = MAX_STALENESS_S,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_staleness_s = max_staleness_s
        self.max_entries = max_entries
        self._clock = clock
        self._version: Hashable | None = None
        self._read_at = float("-inf")  # when the statement that read `_version` was sent
        self._entries: OrderedDict[Hashable, tuple[Hashable, bytes]] = OrderedDict()
        self.hits = self.misses = 0

    def observe(self, version: Hashable, read_at: float) -> None:
        """Record the version read by a statement sent at `read_at` (the clock's time)."""
        if version != self._version:
            self._entries.clear()
        self._version, self._read_at = version, read_at

    def current(self) -> Hashable | None:
        """The version to tag a new entry with, or None when it is too old to trust."""
        if self._clock() - self._read_at > self.max_staleness_s:
            return None
        return self._version

    def get(self, key: Hashable) -> bytes | None:
        version = self.current()
        entry = self._entries.get(key) if version is not None else None
        if entry is None or entry[0] != version:
            self.misses += 1
            return None
        self.hits += 1
        return entry[1]

    def put(self, key: Hashable, version: Hashable | None, body: bytes) -> None:
        """Keep `body`, read after `version` was current (None: not cacheable)."""
        if version is None or version != self._version:
            return
        self._entries[key] = (version, body)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def poll(
        self, pool: AsyncConnectionPool, stop: asyncio.Event, poll_s: float = POLL_S
    ) -> None:
        """Read the data version every `poll_s` until `stop` is set.

        An event rather than a task cancel ends it: psycopg_pool's wait for a connection can
        absorb a cancel that races with the connection it hands over (asyncio.wait_for before
        Python 3.12), and a loop that lost its one cancel would keep the app's shutdown waiting
        for ever."""
        while not stop.is_set():
            sent = self._clock()
            try:
                async with pool.connection() as conn:
                    row = await one_row_async(await conn.execute(VERSION))
                self.observe(tuple(row), sent)
            except (psycopg.Error, RuntimeError, OSError) as exc:
                # The database is away (or not started): entries age out, requests go through.
                log.debug("serving cache: cannot read the data version: %s", exc)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)
