"""Brings the embedded services up and down together, skipping those configured elsewhere."""

from __future__ import annotations

from pulsemart.config import Settings
from pulsemart.local import broker, postgres
from pulsemart.store.db import database_url

__all__ = ["database_url", "down", "status", "up"]


def up(settings: Settings) -> dict[str, str]:
    """Start what is embedded, ensure the topics exist; return the settings clients need."""
    endpoints = {}
    if settings.postgres_embedded:
        endpoints["PULSEMART_DATABASE_URL"] = postgres.start(settings)
    if settings.kafka_embedded:
        endpoints["PULSEMART_KAFKA_BOOTSTRAP"] = broker.start(settings)
    else:
        broker.ensure_topics(settings)
    return endpoints


def down(settings: Settings) -> list[str]:
    """Stop the embedded services running under $PULSEMART_HOME; return the names of those
    that were running.

    What runs is read from the home (the broker's pid file, PostgreSQL's data folder), never
    from the URLs in the environment: after `eval "$(pulsemart services env)"` those name the
    embedded services themselves, which would make them look external. A service that is
    truly external has no pid file or data folder here, so it is never touched.
    """
    stopped = []
    if broker.stop(settings):
        stopped.append("kafka")
    if postgres.stop(settings):
        stopped.append("postgres")
    return stopped


def status(settings: Settings) -> list[dict]:
    """One row per service: the embedded one when it runs under $PULSEMART_HOME (whatever the
    URLs in the environment say, as for `down`), else external when configured elsewhere."""
    pg, kafka = postgres.status(settings), broker.status(settings)
    if not pg["running"] and not settings.postgres_embedded:
        pg = {"service": "postgres", "running": None, "external": True}
    if not kafka["running"] and not settings.kafka_embedded:
        kafka = {
            "service": "kafka",
            "running": None,
            "external": True,
            "bootstrap": settings.kafka_bootstrap,
        }
    return [pg, kafka]
