"""Where the dbt project lives and how dbt reaches pulsemart's database.

dbt reads its connection from environment variables (dbt_project/profiles.yml); `dbt_env`
derives them from the same settings every other part of pulsemart uses, so the datamart
follows PULSEMART_DATABASE_URL or the embedded PostgreSQL without a profile of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from pulsemart.config import Settings
from pulsemart.store.db import database_url

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# dbt scrubs variables with this prefix from its logs and artifacts.
PASSWORD_VARIABLE = "DBT_ENV_SECRET_PULSEMART_PASSWORD"  # noqa: S105 - a variable name, not a password


def dbt_env(settings: Settings, base: dict | None = None, offline: bool = False) -> dict[str, str]:
    """The environment a dbt process needs: `base` (default os.environ) plus the connection.

    `offline` is for commands that never connect (`dbt parse`): it works with no database
    running, as on a fresh machine during `make install`.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        {"DBT_PROFILES_DIR": str(DBT_PROJECT_DIR), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    )
    if offline:
        return env
    parts = conninfo_to_dict(database_url(settings))
    env.update(
        {
            "PULSEMART_DBT_HOST": str(parts.get("host") or "localhost"),
            "PULSEMART_DBT_PORT": str(parts.get("port") or 5432),
            "PULSEMART_DBT_USER": str(parts.get("user") or "postgres"),
            "PULSEMART_DBT_DBNAME": str(parts.get("dbname") or "pulsemart"),
            "PULSEMART_DBT_SSLMODE": str(parts.get("sslmode") or "prefer"),
            PASSWORD_VARIABLE: str(parts.get("password") or ""),
        }
    )
    return env


def incremental_relations(manifest: Path = MANIFEST) -> list[tuple[str, str]]:
    """(schema, table) of every incremental model in the parsed project: the tables that keep
    rows from earlier builds, so a replay of the stream must drop them (pulsemart.stream.rewind).

    Read from the manifest `make install` parses, so the list follows the models."""
    if not manifest.exists():
        raise FileNotFoundError(
            f"{manifest} is missing; run `pulsemart datamart parse` (make install does)"
        )
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return sorted(
        (node["schema"], node.get("alias") or node["name"])
        for node in nodes
        if node["resource_type"] == "model" and node["config"].get("materialized") == "incremental"
    )


@contextmanager
def dbt_connection_env(settings: Settings) -> Iterator[None]:
    """The connection variables in this process's environment for the duration of the block
    only, for a dbt started inside it by a library that copies the environment and takes no
    other (dagster-dbt's DbtCliResource); the previous values come back after it."""
    wanted = {
        k: v
        for k, v in dbt_env(settings, base={}).items()
        if k.startswith(("PULSEMART_DBT_", "DBT_"))
    }
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
