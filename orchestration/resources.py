"""Dagster resources: the one place Kafka and PostgreSQL are handed to assets and sensors.

Local and cloud differ only in configuration. Settings, secrets included, are read from the
environment when a resource is used (never at import), by pulsemart.config.
"""


from contextlib import contextmanager
from functools import cache

import dagster as dg

from pulsemart.config import Settings, load_settings
from pulsemart.store.db import connect_migrated
from pulsemart.stream.reader import end_offsets, make_consumer


class PulsemartSettings(dg.ConfigurableResource):
    """Resolves pulsemart's settings at run time from the environment."""

    def get(self) -> Settings:
        return load_settings()


class KafkaResource(dg.ConfigurableResource):
    """Consumers for the shop topics (assign/seek only; no consumer group)."""

    settings: dg.ResourceDependency[PulsemartSettings]

    @contextmanager
    def consumer(self):
        consumer = make_consumer(self.settings.get())
        try:
            yield consumer
        finally:
            consumer.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        with self.consumer() as consumer:
            return end_offsets(consumer, topic)


class PostgresResource(dg.ConfigurableResource):
    """Connections to pulsemart's database, its schema migrated."""

    settings: dg.ResourceDependency[PulsemartSettings]

    @contextmanager
    def connection(self):
        conn = connect_migrated(self.settings.get())
        try:
            yield conn
        finally:
            conn.close()


@cache  # one set for both code locations, so their definitions merge (orchestration/definitions.py)
def build_resources() -> dict:
    settings = PulsemartSettings()
    return {
        "pulsemart": settings,
        "kafka": KafkaResource(settings=settings),
        "postgres": PostgresResource(settings=settings),
    }
