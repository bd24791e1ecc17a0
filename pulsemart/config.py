"""Settings: the one module that reads pulsemart's environment.

Every setting has an embedded default, so a fresh clone runs with no configuration at all.
A setting that points elsewhere (an external Kafka or PostgreSQL) tells the embedded stack
not to start that service.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

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
        """Connection keywords shared by kafka-python producers, consumers and admin clients."""
        config: dict = {
            "bootstrap_servers": self.kafka_bootstrap.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            config["sasl_mechanism"] = self.kafka_sasl_mechanism
            config["sasl_plain_username"] = self.kafka_sasl_username
            config["sasl_plain_password"] = self.kafka_sasl_password
        if self.kafka_ssl_cafile:
            config["ssl_cafile"] = self.kafka_ssl_cafile
        return config


def _int_setting(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def load_settings(env: dict | None = None) -> Settings:
    """Read the settings from `env` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("PULSEMART_HOME") or "./.pulsemart").expanduser().resolve()
    profile = env.get("PULSEMART_PROFILE") or "local"
    if profile not in PROFILES:
        raise SettingsError(f"PULSEMART_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
    kafka_port = _int_setting(env, "PULSEMART_KAFKA_PORT", DEFAULT_KAFKA_PORT)
    bootstrap = env.get("PULSEMART_KAFKA_BOOTSTRAP") or ""
    return Settings(
        home=home,
        profile=profile,
        database_url=env.get("PULSEMART_DATABASE_URL") or None,
        kafka_bootstrap=bootstrap or f"127.0.0.1:{kafka_port}",
        kafka_embedded=not bootstrap,
        kafka_port=kafka_port,
        kafka_security_protocol=env.get("PULSEMART_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT",
        kafka_sasl_mechanism=env.get("PULSEMART_KAFKA_SASL_MECHANISM") or None,
        kafka_sasl_username=env.get("PULSEMART_KAFKA_SASL_USERNAME") or None,
        kafka_sasl_password=env.get("PULSEMART_KAFKA_SASL_PASSWORD") or None,
        kafka_ssl_cafile=env.get("PULSEMART_KAFKA_SSL_CAFILE") or None,
        api_key=env.get("PULSEMART_API_KEY") or None,
        mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
        sensor_interval_s=_int_setting(env, "PULSEMART_SENSOR_INTERVAL_SECONDS", 5),
        min_batch_events=_int_setting(env, "PULSEMART_MIN_BATCH_EVENTS", 1_000),
        max_batch_events=_int_setting(env, "PULSEMART_MAX_BATCH_EVENTS", 50_000),
        max_concurrent_batches=_int_setting(env, "PULSEMART_MAX_CONCURRENT_BATCHES", 4),
        max_batch_seconds=_int_setting(env, "PULSEMART_MAX_BATCH_SECONDS", 2),
    )
