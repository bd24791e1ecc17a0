"""The API's connection pool: psycopg_pool's AsyncConnectionPool, set up for short reads.

Connections are autocommit (every read is one statement, or one explicit transaction) and
prepare every statement on first use (`prepare_threshold=0`): the API runs a handful of
constant statements thousands of times, so parsing and planning them once per connection pays
at once. The first connection applies the schema migrations, in a thread (they use the sync
driver), so the serving tables exist before the first query; the app itself can start while the
database is down, and `/health` says so.
"""

from __future__ import annotations

import asyncio

import orjson
from psycopg import AsyncConnection, Connection
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from pulsemart.config import Settings
from pulsemart.store.db import connect_migrated, database_url

# Per process. Requests are served concurrently on one event loop; a connection is held only
# for the query, so a few suffice, and N worker processes x this stay far below PostgreSQL's
# default max_connections (100).
MIN_SIZE, MAX_SIZE = 2, 8
WAIT_TIMEOUT_S = 5.0  # a request waits this long for a connection, then answers 503
# How long the pool keeps retrying one failed connect before it gives up on it. Its retries
# back off from 1 s, doubling: left at the library's 300 s, the next retry after an outage of
# D seconds could come up to about D seconds after the database was back, every request 503
# meanwhile (5-6 s after an 8 s outage, measured). Given up this soon, the next request that
# waits starts a new attempt at once, so the API is back within about this long of the
# database (tests/reliability/test_serving_outage.py).
RECONNECT_TIMEOUT_S = 2.0


class _Configure:
    """Each new connection parses json and jsonb with orjson, several times faster than the
    standard library's parser (the personal read returns all its candidates as json); the
    first also applies the migrations."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._done = False
        self._lock = asyncio.Lock()

    async def __call__(self, conn: AsyncConnection) -> None:
        set_json_loads(orjson.loads, conn)
        if self._done:
            return
        async with self._lock:
            if not self._done:
                await asyncio.to_thread(lambda: connect_migrated(self._settings).close())
                self._done = True


def make_pool(
    settings: Settings, min_size: int = MIN_SIZE, max_size: int = MAX_SIZE
) -> AsyncConnectionPool:
    """A closed pool; the app opens it at start-up (`await pool.open()`) and closes it on exit.

    The URL is resolved when the pool opens its first connection, so building the app needs no
    database."""

    async def conninfo() -> str:
        return database_url(settings)

    return AsyncConnectionPool(
        conninfo,
        open=False,
        min_size=min_size,
        max_size=max_size,
        timeout=WAIT_TIMEOUT_S,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
        name="pulsemart-serving",
        kwargs={"autocommit": True, "prepare_threshold": 0, "connect_timeout": 10},
        configure=_Configure(settings),
    )


def own_connection(settings: Settings):
    """A callable opening one sync connection outside the pool, for the response cache's
    poller thread: requests queueing for the pool under load cannot starve it (a starved
    poller leaves the cache too stale to answer, and every request then queues too)."""

    def connect() -> Connection:
        conn = Connection.connect(
            database_url(settings), autocommit=True, prepare_threshold=0, connect_timeout=10
        )
        set_json_loads(orjson.loads, conn)
        return conn

    return connect
