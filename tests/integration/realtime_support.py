"""Starting real-time workers as processes, and waiting on what they commit."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from pulsemart.serving.fold import FOLDED_TABLES, refresh_serving

ROOT = Path(__file__).resolve().parents[2]
SERVING_TABLES = tuple(t for t in FOLDED_TABLES if t != "progress")


def spawn_worker(log_path: Path, **env) -> subprocess.Popen:
    environment = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        PULSEMART_ARCHIVE="off",
        PULSEMART_REALTIME_SESSION_TIMEOUT_MS="3000",
        PULSEMART_REALTIME_REPORT_INTERVAL_SECONDS="1",
        **env,
    )
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-c", "from pulsemart.cli.main import cli; cli()", "stream"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def simulate(
    events: int, rate: float | None, seed: int = 5, dirty: float = 0.1
) -> subprocess.Popen:
    args = [
        sys.executable,
        "-c",
        "from pulsemart.cli.main import cli; cli()",
        "simulate",
        "--events",
        str(events),
        "--seed",
        str(seed),
        "--dirty-rate",
        str(dirty),
    ]
    if rate:
        args += ["--rate", str(rate)]
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stored_total(conn: psycopg.Connection) -> tuple[int, int]:
    """(records landed, records decided) by the offsets (contiguous: nothing is transactional)."""
    landed = conn.execute("select coalesce(sum(next_offset), 0) from ingest.offsets").fetchone()[0]
    decided = conn.execute("select coalesce(sum(next_offset), 0) from quality.progress").fetchone()[
        0
    ]
    conn.commit()
    return int(landed), int(decided)


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.3):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(
        f"timed out after {timeout_s}s waiting for {what() if callable(what) else what}"
    )


KEYS = {
    "product_state": ("product_id",),
    "customer_profile": ("customer_id",),
    "trending": ("window", "product_id"),
    "session_funnel": ("session_id",),
    "recent_touches": ("scope", "owner_id"),
}


def _tables(conn: psycopg.Connection) -> dict:
    """Each serving table as {primary key: row}, less write times."""
    query = psycopg.sql.SQL("select to_jsonb(s) - 'updated_at' from {} s")
    return {
        table: {
            tuple(row[k] for k in KEYS[table]): row
            for (row,) in conn.execute(query.format(psycopg.sql.Identifier("serving", table)))
        }
        for table in SERVING_TABLES
    }


def serving_snapshot(conn: psycopg.Connection) -> dict:
    snapshot = _tables(conn)
    conn.commit()
    return snapshot


def same(a, b) -> bool:
    """Equal, floats within rounding (sums added in another order differ in the last bits)."""
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def rebuilt_snapshot(conn: psycopg.Connection) -> dict:
    """The serving tables folded from scratch over every quality batch, in a transaction that
    is rolled back (the worker's tables stay as they were)."""
    with conn.transaction(force_rollback=True):
        conn.execute(
            psycopg.sql.SQL("truncate {}").format(
                psycopg.sql.SQL(", ").join(
                    psycopg.sql.Identifier("serving", t) for t in FOLDED_TABLES
                )
            )
        )
        refresh_serving(conn)
        return _tables(conn)
