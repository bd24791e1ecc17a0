"""A small pool of autocommit connections for the API's request threads.

Opening a PostgreSQL connection per request costs more than the queries themselves; the pool
keeps up to `size` idle connections and opens more only under a burst. A connection that saw
an error is closed rather than returned.
"""

from __future__ import annotations

import queue
import threading
from contextlib import contextmanager

import psycopg

from pulsemart.config import Settings
from pulsemart.store.db import connect, migrate


class ConnectionPool:
    # 40 matches the thread pool FastAPI runs sync routes on: fewer idle connections than
    # threads meant opening and closing connections on every burst.
    def __init__(self, settings: Settings, size: int = 40):
        self._settings = settings
        self._idle: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=size)
        self._migrated = False
        self._lock = threading.Lock()

    def _open(self) -> psycopg.Connection:
        conn = connect(self._settings, autocommit=True)
        with self._lock:
            if not self._migrated:  # the serving tables exist before the first query
                migrate(conn)
                self._migrated = True
        return conn

    @contextmanager
    def connection(self):
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        if conn.closed or conn.broken:
            return
        try:
            self._idle.put_nowait(conn)
        except queue.Full:
            conn.close()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
