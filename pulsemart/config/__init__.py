"""Settings: pulsemart's configuration, read from the environment in one place.

`Environment` (pulsemart/config/environment.py, the one module that reads the environment) is
the typed model (pydantic-settings) of every variable pulsemart reads, secrets as `SecretStr`;
`load_settings` reads it once and resolves it into `Settings`, the value every
command, worker and Dagster resource passes around (orchestration/resources.py shows the
non-secret ones in Dagster's UI and hands the secrets over as `dg.EnvVar`).

Every setting has an embedded default, so a fresh clone runs with no configuration at all.
A setting that points elsewhere (an external Kafka or PostgreSQL) tells the embedded stack
not to start that service.

PULSEMART_PROFILE (`local`, `aws`, `azure`) chooses the object store and names what a cloud
deployment must provide; `load_settings` stops with a SettingsError naming each missing
setting (docs/deploy.md). Secrets are masked in `repr(settings)` and registered with
pulsemart.cloud.redact, which keeps them out of logs and error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from pydantic import SecretStr

from pulsemart.cloud.kafka import (
    KafkaSecurityError,
    eventhubs_bootstrap,
    kafka_client_config,
    resolve_security,
)
from pulsemart.cloud.redact import MASK, redact_url, register_secret
from pulsemart.config.environment import (
    DEFAULT_KAFKA_PORT,
    SECRET_FIELDS,
    Environment,
    SettingsError,
    configured_environment,
    read_environment,
    reveal,
    variable_of,
)

__all__ = [
    "CATALOG_TOPIC", "DEFAULT_KAFKA_PORT", "EVENTS_TOPIC", "PROFILES", "SECRET_FIELDS",
    "TOPIC_PARTITIONS", "Environment", "Settings", "SettingsError", "configured_environment",
    "load_settings", "variable_of",
]

PROFILES = ("local", "aws", "azure")

EVENTS_TOPIC = "shop.events"
CATALOG_TOPIC = "shop.catalog"
# Partition counts that `pulsemart services up` creates on the embedded broker.
TOPIC_PARTITIONS = {EVENTS_TOPIC: 4, CATALOG_TOPIC: 2}


@dataclass(frozen=True)
class Settings:
    home: Path
    profile: str
    database_url: str | None  # None: use the embedded PostgreSQL under `home`
    kafka_bootstrap: str
    kafka_embedded: bool  # True when the bootstrap is the embedded broker's default
    kafka_port: int
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    api_key: SecretStr | None = field(default=None, repr=False)
    mlflow_tracking_uri: str | None = None
    # Ingest planning (see docs/ingestion.md): how often the sensors look, how big a batch
    # may be, and how many batches may run at once.
    sensor_interval_s: int = 5
    min_batch_events: int = 1_000
    max_batch_events: int = 50_000
    max_concurrent_batches: int = 4
    max_batch_seconds: float = 2.0
    # The raw archive and MLflow artifacts (see docs/deploy.md). Locally a folder; the cloud
    # profiles name a bucket or container, and their credentials come from the cloud's own
    # variables (boto3's chain; AZURE_STORAGE_* as MLflow reads them too).
    archive_enabled: bool = True
    archive_dir: Path | None = None  # local profile; default <home>/archive
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None  # an S3-compatible endpoint (moto, MinIO); None: AWS
    adls_account: str | None = None
    adls_container: str | None = None
    azure_storage_connection_string: SecretStr | None = field(default=None, repr=False)
    azure_storage_access_key: SecretStr | None = field(default=None, repr=False)
    azure_client_id: str | None = None  # workload or managed identity (DefaultAzureCredential)
    # The key of the marts' customer hashes (pulsemart.datamart.pii); None: the database's own.
    pii_key: SecretStr | None = field(default=None, repr=False)
    # The drift sensor's PSI threshold (sensors/drift.py); None: its default.
    drift_psi_threshold: float | None = None
    # The real-time lane (docs/lanes.md): a micro-batch closes `realtime_batch_ms` after its
    # first record or at `realtime_max_records`; runless events go to the Dagster webserver
    # at `dagster_url` (None: not reported) at most every `realtime_report_interval_s`.
    realtime_batch_ms: int = 20
    realtime_max_records: int = 5_000
    realtime_report_interval_s: int = 5
    realtime_session_timeout_ms: int = 10_000  # a killed worker's partitions move after this
    dagster_url: str | None = None

    def __repr__(self) -> str:
        # Secrets show as masked (never absent: a reader should see they are set), URLs
        # without their password.
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.repr and value is not None:
                value = MASK
            elif f.name == "database_url":
                value = redact_url(value)
            parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"

    @property
    def postgres_embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "postgres"

    @property
    def run_dir(self) -> Path:
        """Pid files and logs of the processes pulsemart starts."""
        return self.home / "run"

    def kafka_client_config(self) -> dict:
        """Connection keywords shared by kafka-python producers, consumers and admin clients
        (pulsemart.cloud.kafka; the dict's printable forms mask the password)."""
        return kafka_client_config(self.kafka_bootstrap, self.kafka_security_protocol,
                                   self.kafka_sasl_mechanism, self.kafka_sasl_username,
                                   reveal(self.kafka_sasl_password), self.kafka_ssl_cafile)


def _account_from_connection_string(connection_string: str | None) -> str | None:
    match = re.search(r"(?i)(?:^|;)\s*AccountName\s*=\s*([^;]+)", connection_string or "")
    return match.group(1).strip() if match else None


def _check_profile(settings: Settings) -> None:
    """A cloud profile names its services and its object store, or start-up stops here."""
    if settings.profile == "local":
        return
    profile = f"PULSEMART_PROFILE={settings.profile}"
    missing = []
    if settings.database_url is None:
        missing.append("PULSEMART_DATABASE_URL (the managed PostgreSQL: RDS, Azure Database)")
    if settings.kafka_embedded:
        hint = ("Amazon MSK's bootstrap brokers" if settings.profile == "aws"
                else "or PULSEMART_EVENTHUBS_CONNECTION_STRING for Event Hubs")
        missing.append(f"PULSEMART_KAFKA_BOOTSTRAP ({hint})")
    if settings.profile == "aws" and not settings.s3_bucket:
        missing.append("PULSEMART_S3_BUCKET (the bucket for the raw archive and MLflow "
                       "artifacts; credentials come from the AWS chain: task role, AWS_PROFILE "
                       "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    if settings.profile == "azure":
        if not settings.adls_container:
            missing.append("PULSEMART_ADLS_CONTAINER (the container or ADLS2 file system for "
                           "the raw archive and MLflow artifacts)")
        if not settings.adls_account:
            missing.append("PULSEMART_ADLS_ACCOUNT (the storage account; or give "
                           "AZURE_STORAGE_CONNECTION_STRING)")
        if not (settings.azure_storage_connection_string or settings.azure_storage_access_key
                or settings.azure_client_id):
            missing.append("AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY or "
                           "AZURE_CLIENT_ID (a managed or workload identity)")
    if missing:
        raise SettingsError(f"{profile} needs " + "; ".join(missing))


def load_settings(env: dict | None = None, overrides: dict | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment) and resolve them;
    `overrides` (by field name of `Environment`) win over both, as a Dagster resource's
    configured fields do (orchestration/resources.py).

    Raises SettingsError, naming the setting, when a value is unusable or the chosen profile
    lacks what it needs: commands and the Dagster code locations call this first, so a
    misconfigured deployment stops at start-up rather than at its first batch.
    """
    raw = read_environment(env, overrides)
    home = raw.home.expanduser().resolve()
    eventhubs = reveal(raw.eventhubs_connection_string)
    try:
        protocol, mechanism, username, password = resolve_security(
            raw.kafka_security_protocol, raw.kafka_sasl_mechanism, raw.kafka_sasl_username,
            reveal(raw.kafka_sasl_password), eventhubs)
        bootstrap = raw.kafka_bootstrap or (eventhubs_bootstrap(eventhubs) if eventhubs else "")
    except KafkaSecurityError as exc:
        raise SettingsError(str(exc)) from None
    for secret in (raw.azure_storage_connection_string, raw.azure_storage_access_key, raw.api_key,
                   raw.pii_key):
        register_secret(reveal(secret))
    connection_string = reveal(raw.azure_storage_connection_string)
    settings = Settings(
        home=home,
        profile=raw.profile,
        database_url=raw.database_url,
        kafka_bootstrap=bootstrap or f"127.0.0.1:{raw.kafka_port}",
        kafka_embedded=not bootstrap,
        kafka_port=raw.kafka_port,
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=username,
        kafka_sasl_password=SecretStr(password) if password else None,
        kafka_ssl_cafile=raw.kafka_ssl_cafile,
        api_key=raw.api_key,
        mlflow_tracking_uri=raw.mlflow_tracking_uri,
        sensor_interval_s=raw.sensor_interval_s,
        min_batch_events=raw.min_batch_events,
        max_batch_events=raw.max_batch_events,
        max_concurrent_batches=raw.max_concurrent_batches,
        max_batch_seconds=raw.max_batch_seconds,
        archive_enabled=raw.archive_enabled,
        archive_dir=raw.archive_dir.expanduser().resolve() if raw.archive_dir else home / "archive",
        s3_bucket=raw.s3_bucket,
        s3_endpoint_url=raw.s3_endpoint_url,
        adls_account=raw.adls_account or _account_from_connection_string(connection_string),
        adls_container=raw.adls_container,
        azure_storage_connection_string=raw.azure_storage_connection_string,
        azure_storage_access_key=raw.azure_storage_access_key,
        azure_client_id=raw.azure_client_id,
        pii_key=raw.pii_key,
        drift_psi_threshold=raw.drift_psi_threshold,
        realtime_batch_ms=raw.realtime_batch_ms,
        realtime_max_records=raw.realtime_max_records,
        realtime_report_interval_s=raw.realtime_report_interval_s,
        realtime_session_timeout_ms=raw.realtime_session_timeout_ms,
        dagster_url=(raw.dagster_url or "").rstrip("/") or None,
    )
    _check_profile(settings)
    return settings
