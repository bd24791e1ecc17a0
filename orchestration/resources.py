"""Dagster resources: pulsemart's settings as Dagster sees them, and the clients built on them.

Each part of the settings is a ConfigurableResource with fields (Kafka, PostgreSQL, object
store, MLflow, batch sizing), so the UI's resource view shows what a deployment set. A field
left empty falls back to the environment when the resource is used (pulsemart.config, the one
place the environment is read): that is how the tests and `pulsemart up` point a code location
at a stack started after it loaded. Secrets are `dg.EnvVar`s, resolved in the run's process and
never written into the definitions.
"""

from contextlib import contextmanager
from functools import cache
from typing import Any

import dagster as dg
from pydantic import Field

from pulsemart.config import SECRET_FIELDS, Settings, configured_environment, load_settings

# The Kafka and PostgreSQL clients are imported where they are used: every process that loads a
# code location (the code server, each run) pays for this module's imports, and most of those
# processes never open a consumer.


class _SettingsPart(dg.ConfigurableResource):
    """Fields named as pulsemart.config.Environment's; None means "from the environment"."""

    def overrides(self) -> dict:
        return {name: value for name, value in self._fields().items() if value is not None}

    def _fields(self) -> dict:
        return {name: getattr(self, name) for name in type(self).model_fields
                if name in _ENVIRONMENT_FIELDS}

    def settings(self) -> Settings:
        return load_settings(overrides=self.overrides())


class KafkaSettings(_SettingsPart):
    """The Kafka cluster: bootstrap servers and security (SASL password as an EnvVar)."""

    kafka_bootstrap: str | None = Field(None, description="PULSEMART_KAFKA_BOOTSTRAP")
    kafka_port: int | None = Field(None, description="PULSEMART_KAFKA_PORT (the embedded broker)")
    kafka_security_protocol: str | None = Field(None, description="PULSEMART_KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: str | None = Field(None, description="PULSEMART_KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = Field(None, description="PULSEMART_KAFKA_SASL_USERNAME")
    kafka_sasl_password: str | None = Field(None, description="PULSEMART_KAFKA_SASL_PASSWORD (secret)")
    kafka_ssl_cafile: str | None = Field(None, description="PULSEMART_KAFKA_SSL_CAFILE")
    eventhubs_connection_string: str | None = Field(
        None, description="PULSEMART_EVENTHUBS_CONNECTION_STRING (secret)")


class PostgresSettings(_SettingsPart):
    """pulsemart's database (the URL, which may hold a password, as an EnvVar)."""

    database_url: str | None = Field(None, description="PULSEMART_DATABASE_URL (secret); "
                                                       "empty: the embedded server under home")


class ObjectStoreSettings(_SettingsPart):
    """Where the raw archive and MLflow artifacts go, per profile."""

    archive_enabled: bool | None = Field(None, description="PULSEMART_ARCHIVE")
    archive_dir: str | None = Field(None, description="PULSEMART_ARCHIVE_DIR (local profile)")
    s3_bucket: str | None = Field(None, description="PULSEMART_S3_BUCKET")
    s3_endpoint_url: str | None = Field(None, description="PULSEMART_S3_ENDPOINT_URL")
    adls_account: str | None = Field(None, description="PULSEMART_ADLS_ACCOUNT")
    adls_container: str | None = Field(None, description="PULSEMART_ADLS_CONTAINER")
    azure_storage_connection_string: str | None = Field(
        None, description="AZURE_STORAGE_CONNECTION_STRING (secret)")
    azure_storage_access_key: str | None = Field(None, description="AZURE_STORAGE_ACCESS_KEY (secret)")
    azure_client_id: str | None = Field(None, description="AZURE_CLIENT_ID")


class MlflowSettings(_SettingsPart):
    mlflow_tracking_uri: str | None = Field(None, description="MLFLOW_TRACKING_URI")


class BatchSizing(_SettingsPart):
    """How the sensors cut the stream into ingest runs (docs/ingestion.md)."""

    sensor_interval_s: int | None = Field(None, description="PULSEMART_SENSOR_INTERVAL_SECONDS")
    min_batch_events: int | None = Field(None, description="PULSEMART_MIN_BATCH_EVENTS")
    max_batch_events: int | None = Field(None, description="PULSEMART_MAX_BATCH_EVENTS")
    max_concurrent_batches: int | None = Field(None, description="PULSEMART_MAX_CONCURRENT_BATCHES")
    max_batch_seconds: float | None = Field(None, description="PULSEMART_MAX_BATCH_SECONDS")


class PulsemartSettings(_SettingsPart):
    """All of pulsemart's settings: home and profile, and the parts above."""

    home: str | None = Field(None, description="PULSEMART_HOME")
    profile: str | None = Field(None, description="PULSEMART_PROFILE (local, aws, azure)")
    pii_key: str | None = Field(None, description="PULSEMART_PII_KEY (secret)")
    drift_psi_threshold: float | None = Field(None, description="PULSEMART_DRIFT_PSI_THRESHOLD")
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
        from pulsemart.store.db import connect_migrated

        conn = connect_migrated(self.settings.get())
        try:
            yield conn
        finally:
            conn.close()


_PARTS = (KafkaSettings, PostgresSettings, ObjectStoreSettings, MlflowSettings, BatchSizing, PulsemartSettings)
_ENVIRONMENT_FIELDS = {name for part in _PARTS for name in part.model_fields} - {
    "kafka", "postgres", "object_store", "mlflow", "batch"}


def _configured(part: type[_SettingsPart], environment: dict) -> dict:
    """The part's fields the code location's environment sets: secrets as EnvVars (resolved
    in each run), the rest as values the UI shows."""
    values = {}
    for name in part.model_fields:
        if name in environment:
            values[name] = (dg.EnvVar(environment[name]) if name in SECRET_FIELDS
                            else environment[name])
    return values


@cache  # one set for both code locations, so their definitions merge (orchestration/definitions.py)
def build_resources() -> dict:
    environment = configured_environment()  # {field: value, or the variable's name for secrets}
    parts: dict[str, Any] = {key: part(**_configured(part, environment)) for key, part in (
        ("kafka", KafkaSettings), ("postgres", PostgresSettings), ("object_store", ObjectStoreSettings),
        ("mlflow", MlflowSettings), ("batch", BatchSizing))}
    settings = PulsemartSettings(**_configured(PulsemartSettings, environment), **parts)
    return {
        "pulsemart": settings,
        "kafka": KafkaResource(settings=settings),
        "postgres": PostgresResource(settings=settings),
        # The parts on their own too, so each is listed in the UI's resource view.
        **{f"{key}_settings": part for key, part in parts.items()},
    }
