"""Dagster resources: pulsemart's settings as Dagster sees them, and the clients built on them.

Each part of the settings is a ConfigurableResource with fields (Kafka, PostgreSQL, object
store, MLflow, batch sizing, and the rest on `PulsemartSettings`), so the UI's resource view
shows what a deployment set. The fields are pulsemart.config.Environment's, by its groups:
`fields_of` adds them from the model, named, described and typed there. A field
left empty falls back to the environment when the resource is used (pulsemart.config, the one
place the environment is read): that is how the tests and `pulsemart up` point a code location
at a stack started after it loaded. Secrets are `dg.EnvVar`s, resolved in the run's process and
never written into the definitions.
"""

import types
from collections.abc import Callable
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any, TypeVar, get_args

import dagster as dg
from pydantic import Field

from pulsemart.config import (
    SECRET_FIELDS,
    Environment,
    Settings,
    configured_environment,
    load_settings,
)
from pulsemart.config.environment import NO_DEFAULT, group_of, shown_default, variable_of

# The Kafka and PostgreSQL clients are imported where they are used: every process that loads a
# code location (the code server, each run) pays for this module's imports, and most of those
# processes never open a consumer.

# Dagster's config takes these types; a path, a secret or a choice travels as its text.
_CONFIG_TYPES = (bool, int, float, str)


class _SettingsPart(dg.ConfigurableResource):
    """Fields named as pulsemart.config.Environment's; None means "from the environment"."""

    def overrides(self) -> dict:
        return {name: value for name, value in self._fields().items() if value is not None}

    def _fields(self) -> dict:
        return {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name in Environment.model_fields
        }

    def settings(self) -> Settings:
        return load_settings(overrides=self.overrides())


def _config_type(field_name: str) -> type:
    declared = Environment.model_fields[field_name].annotation
    kinds = [kind for kind in (get_args(declared) or (declared,)) if kind is not type(None)]
    return kinds[0] if len(kinds) == 1 and kinds[0] in _CONFIG_TYPES else str


def _description(field_name: str) -> str:
    text = f"{variable_of(field_name)}: {Environment.model_fields[field_name].description}."
    if (default := shown_default(field_name)) != NO_DEFAULT:
        text += f" Default: {default}."
    return text + (" A secret: set it as an EnvVar." if field_name in SECRET_FIELDS else "")


_Part = TypeVar("_Part", bound=_SettingsPart)


def fields_of(*groups: str) -> Callable[[type[_Part]], type[_Part]]:
    """The resource class with a field for each `Environment` field of `groups`, its type
    as Dagster's config takes it, its description from the model, and None ("from the
    environment") as default.

    Dagster reads a resource's fields when its class is created, so the fields go into the
    namespace of a subclass of the same name rather than onto the declared class.
    """
    names = [name for name in Environment.model_fields if group_of(name) in groups]

    def with_fields(declared: type[_Part]) -> type[_Part]:
        def namespace(body: dict[str, Any]) -> None:
            body["__annotations__"] = {name: _config_type(name) | None for name in names}
            body.update({name: Field(None, description=_description(name)) for name in names})
            body.update(
                __doc__=declared.__doc__,
                __module__=declared.__module__,
                __qualname__=declared.__qualname__,
            )

        return types.new_class(declared.__name__, (declared,), exec_body=namespace)

    return with_fields


@fields_of("kafka")
class KafkaSettings(_SettingsPart):
    """The Kafka cluster: bootstrap servers and security (SASL password as an EnvVar)."""


@fields_of("postgres")
class PostgresSettings(_SettingsPart):
    """pulsemart's database (the URL, which may hold a password, as an EnvVar)."""


@fields_of("object_store")
class ObjectStoreSettings(_SettingsPart):
    """Where the raw archive and MLflow artifacts go, per profile."""


@fields_of("mlflow")
class MlflowSettings(_SettingsPart):
    """The MLflow tracking server."""


@fields_of("batch")
class BatchSizing(_SettingsPart):
    """How the sensors cut the stream into ingest runs (docs/ingestion.md)."""


@fields_of("general", "realtime", "serving")
class PulsemartSettings(_SettingsPart):
    """All of pulsemart's settings: home, profile, the real-time lane's and the serving API's,
    and the parts above."""

    kafka: KafkaSettings
    postgres: PostgresSettings
    object_store: ObjectStoreSettings
    mlflow: MlflowSettings
    batch: BatchSizing

    def overrides(self) -> dict:
        merged = {}
        for part in (self.kafka, self.postgres, self.object_store, self.mlflow, self.batch):
            merged.update(part.overrides())
        return {**merged, **super().overrides()}

    def get(self) -> Settings:
        return self.settings()


class KafkaResource(dg.ConfigurableResource):
    """Consumers for the shop topics (assign/seek only; no consumer group)."""

    settings: dg.ResourceDependency[PulsemartSettings]

    @contextmanager
    def consumer(self):
        from pulsemart.stream.reader import make_consumer

        consumer = make_consumer(self.settings.get())
        try:
            yield consumer
        finally:
            consumer.close()

    def end_offsets(self, topic: str) -> dict[int, int]:
        from pulsemart.stream.reader import end_offsets

        with self.consumer() as consumer:
            return end_offsets(consumer, topic)


class PostgresResource(dg.ConfigurableResource):
    """Connections to pulsemart's database, its schema migrated."""

    settings: dg.ResourceDependency[PulsemartSettings]

    @contextmanager
    def connection(self):
        import psycopg

        from pulsemart.store.db import connect_migrated

        conn = connect_migrated(self.settings.get())
        try:
            yield conn
        except BaseException:
            # Dagster interrupts an op with its own error, which psycopg (unlike Ctrl-C) does
            # not answer by cancelling the statement in flight: the server would run it on
            # after this process left, holding its locks against the rerun.
            if conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
                with suppress(psycopg.Error):
                    conn.cancel_safe(timeout=3)
            raise
        finally:
            conn.close()


def _configured(part: type[_SettingsPart], environment: dict) -> dict:
    """The part's fields the code location's environment sets: secrets as EnvVars (resolved
    in each run), the rest as values the UI shows."""
    values = {}
    for name in part.model_fields:
        if name in environment:
            values[name] = (
                dg.EnvVar(environment[name]) if name in SECRET_FIELDS else environment[name]
            )
    return values


@cache  # one set for both code locations, so their definitions merge (orchestration/definitions.py)
def build_resources() -> dict:
    environment = configured_environment()  # {field: value, or the variable's name for secrets}
    parts: dict[str, Any] = {
        key: part(**_configured(part, environment))
        for key, part in (
            ("kafka", KafkaSettings),
            ("postgres", PostgresSettings),
            ("object_store", ObjectStoreSettings),
            ("mlflow", MlflowSettings),
            ("batch", BatchSizing),
        )
    }
    settings = PulsemartSettings(**_configured(PulsemartSettings, environment), **parts)
    return {
        "pulsemart": settings,
        "kafka": KafkaResource(settings=settings),
        "postgres": PostgresResource(settings=settings),
        # The parts on their own too, so each is listed in the UI's resource view.
        **{f"{key}_settings": part for key, part in parts.items()},
    }
