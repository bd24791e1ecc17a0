"""A bounded, durable queue of encoded exposure events on local disk, for when Kafka is away.

Each API process keeps its exposures in a SQLite file of its own under `<home>/spool/` and
holds an exclusive `flock` on a lock file beside it while it runs. The lock dies with the
process, however it dies (SIGKILL included), so a process starting later can tell a spool
whose owner is gone from one in use: it takes over the first such spool as its own and sends
what it holds, so nothing a dead process accepted is lost. A record leaves the spool only after
Kafka acknowledged it; a crash between the two re-sends it with its event id, and the quality
layer decides a re-sent id once.

Bounded: past `max_rows` pending records, new ones are refused and counted (`dropped`).
SQLite commits in rollback-journal mode with `synchronous=FULL`, so a committed record survives
a crash of the process or of the machine.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path

SCHEMA = """
create table if not exists spool (
    id    integer primary key autoincrement,
    key   blob,
    value blob not null
)
"""


class ExposureSpool:
    """One process's spool: `add` what to send, `oldest` to send it, `remove` once acked."""

    def __init__(self, folder: Path, max_rows: int) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, not {max_rows}")
        folder.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.dropped = 0
        self.path, self._lock = _claim(folder)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("pragma journal_mode=delete")
        self._db.execute("pragma synchronous=full")
        self._db.execute(SCHEMA)
        self.pending = self._count()

    def add(self, records: Sequence[tuple[bytes | None, bytes]]) -> int:
        """Keep `records` (key, value) in order, as many as the bound allows; returns how
        many were refused (also added to `dropped`)."""
        room = max(self.max_rows - self.pending, 0)
        kept, refused = records[:room], len(records) - min(room, len(records))
        if kept:
            with self._db:  # one transaction: all of them or none
                self._db.execute("begin")
                self._db.executemany("insert into spool (key, value) values (?, ?)", kept)
            self.pending += len(kept)
        self.dropped += refused
        return refused

    def oldest(self, limit: int) -> list[tuple[int, bytes | None, bytes]]:
        """Up to `limit` pending records, oldest first: (id, key, value)."""
        cur = self._db.execute("select id, key, value from spool order by id limit ?", (limit,))
        return cur.fetchall()

    def remove(self, ids: Sequence[int]) -> None:
        """Forget records Kafka has acknowledged."""
        if ids:
            with self._db:
                self._db.execute("begin")
                cur = self._db.executemany("delete from spool where id = ?", [(i,) for i in ids])
            self.pending -= cur.rowcount

    def close(self) -> None:
        """Close the file and give up the lock; an empty spool's files are removed."""
        empty = self._count() == 0
        self._db.close()
        if empty:
            self.path.unlink(missing_ok=True)
            Path(f"{self.path}.lock").unlink(missing_ok=True)
        os.close(self._lock)

    def _count(self) -> int:
        return int(self._db.execute("select count(*) from spool").fetchone()[0])


def _claim(folder: Path) -> tuple[Path, int]:
    """The first spool in `folder` whose owner is gone, or a new one; locked for this process."""
    for path in sorted(folder.glob("exposures-*.sqlite")):
        lock = _try_lock(Path(f"{path}.lock"))
        if lock is not None:
            return path, lock
    path = folder / f"exposures-{uuid.uuid4().hex}.sqlite"
    lock = _try_lock(Path(f"{path}.lock"))
    if lock is None:  # a fresh random name: nobody else can hold it
        raise RuntimeError(f"cannot lock the new exposure spool {path}")
    return path, lock


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
