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
    """Stop the embedded services; return the names of those that were running."""
    stopped = []
    if settings.kafka_embedded and broker.stop(settings):
        stopped.append("kafka")
    if settings.postgres_embedded and postgres.stop(settings):
        stopped.append("postgres")
    return stopped


def status(settings: Settings) -> list[dict]:
    rows = []
    rows.append(postgres.status(settings) if settings.postgres_embedded
                else {"service": "postgres", "running": None, "external": True})
    rows.append(broker.status(settings) if settings.kafka_embedded
                else {"service": "kafka", "running": None, "external": True,
                      "bootstrap": settings.kafka_bootstrap})
    return rows

