"""Settings: the one module that reads pulsemart's environment.

Every setting has an embedded default, so a fresh clone runs with no configuration at all.
A setting that points elsewhere (an external Kafka or PostgreSQL) tells the embedded stack
not to start that service.

PULSEMART_PROFILE (`local`, `aws`, `azure`) chooses the object store and names what a cloud
deployment must provide; `load_settings` stops with a SettingsError naming each missing
setting (docs/deploy.md). Secrets are masked in `repr(settings)` and registered with
pulsemart.cloud.redact, which keeps them out of logs and error messages.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from pulsemart.cloud.kafka import (
    KafkaSecurityError,
    eventhubs_bootstrap,
    kafka_client_config,
    resolve_security,
)
from pulsemart.cloud.redact import MASK, redact_url, register_secret

PROFILES = ("local", "aws", "azure")

EVENTS_TOPIC = "shop.events"
CATALOG_TOPIC = "shop.catalog"
# Partition counts that `pulsemart services up` creates on the embedded broker.
TOPIC_PARTITIONS = {EVENTS_TOPIC: 4, CATALOG_TOPIC: 2}

DEFAULT_KAFKA_PORT = 19092


class SettingsError(ValueError):
    """A setting has a value pulsemart cannot use; the message names the setting."""


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
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    api_key: str | None = field(default=None, repr=False)
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
    azure_storage_connection_string: str | None = field(default=None, repr=False)
    azure_storage_access_key: str | None = field(default=None, repr=False)
    azure_client_id: str | None = None  # workload or managed identity (DefaultAzureCredential)
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
                                   self.kafka_sasl_password, self.kafka_ssl_cafile)


def _int_setting(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _bool_setting(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: use on or off")


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


def load_settings(env: dict | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment).

    Raises SettingsError, naming the setting, when a value is unusable or the chosen profile
    lacks what it needs: commands and the Dagster code location call this first, so a
    misconfigured deployment stops at start-up rather than at its first batch.
    """
    env = dict(os.environ if env is None else env)
    home = Path(env.get("PULSEMART_HOME") or "./.pulsemart").expanduser().resolve()
    profile = env.get("PULSEMART_PROFILE") or "local"
    if profile not in PROFILES:
        raise SettingsError(f"PULSEMART_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
    kafka_port = _int_setting(env, "PULSEMART_KAFKA_PORT", DEFAULT_KAFKA_PORT)
    eventhubs = env.get("PULSEMART_EVENTHUBS_CONNECTION_STRING") or None
    try:
        protocol, mechanism, username, password = resolve_security(
            env.get("PULSEMART_KAFKA_SECURITY_PROTOCOL") or None,
            env.get("PULSEMART_KAFKA_SASL_MECHANISM") or None,
            env.get("PULSEMART_KAFKA_SASL_USERNAME") or None,
            env.get("PULSEMART_KAFKA_SASL_PASSWORD") or None,
            eventhubs,
        )
        bootstrap = env.get("PULSEMART_KAFKA_BOOTSTRAP") or (
            eventhubs_bootstrap(eventhubs) if eventhubs else "")
    except KafkaSecurityError as exc:
        raise SettingsError(str(exc)) from None
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING") or None
    access_key = env.get("AZURE_STORAGE_ACCESS_KEY") or None
    for secret in (connection_string, access_key, env.get("PULSEMART_API_KEY")):
        register_secret(secret)
    archive_dir = env.get("PULSEMART_ARCHIVE_DIR")
    settings = Settings(
        home=home,
        profile=profile,
        database_url=env.get("PULSEMART_DATABASE_URL") or None,
        kafka_bootstrap=bootstrap or f"127.0.0.1:{kafka_port}",
        kafka_embedded=not bootstrap,
        kafka_port=kafka_port,
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=username,
        kafka_sasl_password=password,
        kafka_ssl_cafile=env.get("PULSEMART_KAFKA_SSL_CAFILE") or None,
        api_key=env.get("PULSEMART_API_KEY") or None,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
        sensor_interval_s=_int_setting(env, "PULSEMART_SENSOR_INTERVAL_SECONDS", 5),
        min_batch_events=_int_setting(env, "PULSEMART_MIN_BATCH_EVENTS", 1_000),
        max_batch_events=_int_setting(env, "PULSEMART_MAX_BATCH_EVENTS", 50_000),
        max_concurrent_batches=_int_setting(env, "PULSEMART_MAX_CONCURRENT_BATCHES", 4),
        max_batch_seconds=_int_setting(env, "PULSEMART_MAX_BATCH_SECONDS", 2),
        archive_enabled=_bool_setting(env, "PULSEMART_ARCHIVE", True),
        archive_dir=Path(archive_dir).expanduser().resolve() if archive_dir else home / "archive",
        s3_bucket=env.get("PULSEMART_S3_BUCKET") or None,
        s3_endpoint_url=env.get("PULSEMART_S3_ENDPOINT_URL") or None,
        adls_account=(env.get("PULSEMART_ADLS_ACCOUNT")
                      or _account_from_connection_string(connection_string)),
        adls_container=env.get("PULSEMART_ADLS_CONTAINER") or None,
        azure_storage_connection_string=connection_string,
        azure_storage_access_key=access_key,
        azure_client_id=env.get("AZURE_CLIENT_ID") or None,
        realtime_batch_ms=_int_setting(env, "PULSEMART_REALTIME_BATCH_MS", 20),
        realtime_max_records=_int_setting(env, "PULSEMART_REALTIME_MAX_RECORDS", 5_000),
        realtime_report_interval_s=_int_setting(env, "PULSEMART_REALTIME_REPORT_INTERVAL_SECONDS", 5),
        realtime_session_timeout_ms=_int_setting(env, "PULSEMART_REALTIME_SESSION_TIMEOUT_MS", 10_000),
        dagster_url=(env.get("PULSEMART_DAGSTER_URL") or "").rstrip("/") or None,
    )
    _check_profile(settings)
    return settings
