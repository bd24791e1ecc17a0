"""Governance records of the ML platform: evaluations, training profiles and the audit log.

Each function writes inside the caller's transaction (it never commits), so a gate decision
and the promotion it causes land together or not at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

ROLES = ("champion", "challenger", "baseline")


def audit(
    conn: psycopg.Connection, actor: str, action: str, subject: str, details: dict[str, Any]
) -> None:
    conn.execute(
        "insert into governance.audit_log (actor, action, subject, details) "
        "values (%s, %s, %s, %s)",
        (actor, action, subject, Jsonb(_plain(details))),
    )


def write_evaluations(
    conn: psycopg.Connection,
    model_name: str,
    results: Iterable[tuple[str, str, dict[str, float]]],
    dagster_run_id: str | None = None,
    data_window: dict | None = None,
) -> int:
    """One row per (role, version, metric) of `results` ((role, version, metrics) triples),
    all with the same evaluated_at; returns the rows written. Non-finite values become NULL."""
    rows = [
        (
            model_name,
            str(version),
            role,
            metric,
            _finite(value),
            dagster_run_id,
            Jsonb(data_window) if data_window else None,
        )
        for role, version, metrics in results
        for metric, value in sorted(metrics.items())
    ]
    bad = sorted({row[2] for row in rows} - set(ROLES))
    if bad:
        raise ValueError(f"unknown evaluation role(s) {bad}; expected {ROLES}")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into governance.model_evaluations (evaluated_at, model_name, model_version, "
            "role, metric, value, dagster_run_id, data_window) "
            "values (now(), %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    return len(rows)


def latest_metric(
    conn: psycopg.Connection, model_name: str, version: str, metric: str
) -> float | None:
    """The newest evaluated value of `metric` for a version (as challenger or champion)."""
    row = conn.execute(
        "select value from governance.model_evaluations where model_name = %s "
        "and model_version = %s and metric = %s and role <> 'baseline' "
        "order by evaluated_at desc limit 1",
        (model_name, str(version), metric),
    ).fetchone()
    return None if row is None else row[0]


def save_profile(
    conn: psycopg.Connection, model_name: str, version: str, data_window: dict, profile: dict
) -> None:
    conn.execute(
        "insert into governance.training_profiles (model_name, model_version, data_window, profile) "
        "values (%s, %s, %s, %s) on conflict (model_name, model_version) do update "
        "set data_window = excluded.data_window, profile = excluded.profile, created_at = now()",
        (model_name, str(version), Jsonb(data_window), Jsonb(profile)),
    )


def load_profile(
    conn: psycopg.Connection, model_name: str, version: str
) -> tuple[dict, dict] | None:
    """(data_window, profile) of a version, or None when it was never profiled."""
    return conn.execute(
        "select data_window, profile from governance.training_profiles "
        "where model_name = %s and model_version = %s",
        (model_name, str(version)),
    ).fetchone()


def recent_audit(conn: psycopg.Connection, model_name: str, limit: int = 10) -> list[tuple]:
    """The newest audit rows about a model (subjects `<name>` or `<name>/<version>`)."""
    return conn.execute(
        "select at, actor, action, subject, details from governance.audit_log "
        "where split_part(subject, '/', 1) = %s order by audit_id desc limit %s",
        (model_name, limit),
    ).fetchall()


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _plain(value):
    """JSON-safe: NaN and infinity become None (jsonb rejects them), numpy scalars floats."""
    return json.loads(json.dumps(value, default=_default), parse_constant=lambda _: None)


def _default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)
