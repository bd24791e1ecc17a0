"""Settings: pulsemart's configuration, read from the environment in one place.

`Environment` (pulsemart/config/environment.py, the one module that reads the environment) is
the typed model (pydantic-settings) of every variable pulsemart reads, secrets as `SecretStr`,
and the only place a setting is declared. `load_settings` reads it once and resolves it into
`Settings`, the model's subclass that every command, worker and Dagster resource passes
around (orchestration/resources.py shows the settings in Dagster's UI, with the secrets
handed over as `dg.EnvVar`).

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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import Field

if TYPE_CHECKING:
    from ml.blend import BlendWeights
from pulsemart.cloud.kafka import (
    KafkaSecurity,
    KafkaSecurityError,
    eventhubs_bootstrap,
    kafka_python_config,
    resolve_security,
)
from pulsemart.cloud.redact import MASK, RedactedConfig, redact_url, register_secret
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
    "CATALOG_TOPIC",
    "DEFAULT_KAFKA_PORT",
    "EVENTS_TOPIC",
    "EXPOSURES_TOPIC",
    "PROFILES",
    "SECRET_FIELDS",
    "TOPIC_PARTITIONS",
    "Environment",
    "Settings",
    "SettingsError",
    "configured_environment",
    "load_settings",
    "variable_of",
]

PROFILES: tuple[str, ...] = get_args(Environment.model_fields["profile"].annotation)

EVENTS_TOPIC = "shop.events"
CATALOG_TOPIC = "shop.catalog"
# What the serving API showed: one event per recommendations response (serving/exposures.py).
EXPOSURES_TOPIC = "shop.exposures"
# Partition counts that `pulsemart services up` creates on the embedded broker.
TOPIC_PARTITIONS = {EVENTS_TOPIC: 4, CATALOG_TOPIC: 2, EXPOSURES_TOPIC: 2}


class Settings(Environment):
    """The settings resolved: every field of `Environment` (declared there once), with the
    values pulsemart derives filled in. `load_settings` builds it; nothing else should.

    Resolved here: `home` and `archive_dir` as absolute paths, the Kafka bootstrap (given,
    Event Hubs' or the embedded broker's) and security (`kafka_security`), the ADLS account
    from the connection string, and the Dagster URL without a trailing slash.
    """

    # Narrower than what was read: after resolution these always have a value.
    kafka_bootstrap: str = Field(description="the bootstrap servers clients connect to")
    kafka_security_protocol: str = Field(description="the security protocol clients use")
    archive_dir: Path = Field(description="the local object store's folder")
    kafka_embedded: bool = Field(
        description="True when no bootstrap was given: the embedded "
        "broker's, which `pulsemart services up` starts"
    )

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Secrets show as masked (never absent: a reader should see they are set), URLs
        # without their password.
        for name, value in super().__repr_args__():
            if name == "database_url":
                value = redact_url(value)
            elif name in SECRET_FIELDS and value is not None:
                value = MASK
            yield name, value

    @property
    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username,
            self.kafka_sasl_password,
            self.kafka_ssl_cafile,
        )

    @property
    def blend_weights(self) -> BlendWeights:
        """The blend's weights as ml.blend takes them (docs/ml.md says how they were chosen)."""
        from ml.blend import BlendWeights  # not at import: the streaming location loads no ml

        return BlendWeights(
            model=self.blend_model,
            session=self.blend_session,
            history=self.blend_history,
            trending=self.blend_trending,
            view=self.blend_view,
            cart=self.blend_cart,
            purchase=self.blend_purchase,
            half_life_s=self.blend_half_life_s,
            history_half_life_s=self.blend_history_half_life_s,
            session_decay=self.blend_session_decay,
        )

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

    def kafka_client_config(self) -> RedactedConfig:
        """Connection keywords shared by kafka-python producers, consumers and admin clients
        (pulsemart.cloud.kafka; the dict's printable forms mask the password)."""
        return kafka_python_config(self.kafka_bootstrap, self.kafka_security)


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
        hint = (
            "Amazon MSK's bootstrap brokers"
            if settings.profile == "aws"
            else "or PULSEMART_EVENTHUBS_CONNECTION_STRING for Event Hubs"
        )
        missing.append(f"PULSEMART_KAFKA_BOOTSTRAP ({hint})")
    if settings.profile == "aws" and not settings.s3_bucket:
        missing.append(
            "PULSEMART_S3_BUCKET (the bucket for the raw archive and MLflow "
            "artifacts; credentials come from the AWS chain: task role, AWS_PROFILE "
            "or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
        )
    if settings.profile == "azure":
        if not settings.adls_container:
            missing.append(
                "PULSEMART_ADLS_CONTAINER (the container or ADLS2 file system for "
                "the raw archive and MLflow artifacts)"
            )
        if not settings.adls_account:
            missing.append(
                "PULSEMART_ADLS_ACCOUNT (the storage account; or give "
                "AZURE_STORAGE_CONNECTION_STRING)"
            )
        if not (
            settings.azure_storage_connection_string
            or settings.azure_storage_access_key
            or settings.azure_client_id
        ):
            missing.append(
                "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY or "
                "AZURE_CLIENT_ID (a managed or workload identity)"
            )
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
        security = resolve_security(
            raw.kafka_security_protocol,
            raw.kafka_sasl_mechanism,
            raw.kafka_sasl_username,
            reveal(raw.kafka_sasl_password),
            eventhubs,
            raw.kafka_ssl_cafile,
        )
        bootstrap = raw.kafka_bootstrap or (eventhubs_bootstrap(eventhubs) if eventhubs else "")
    except KafkaSecurityError as exc:
        raise SettingsError(str(exc)) from None
    for secret in (
        raw.azure_storage_connection_string,
        raw.azure_storage_access_key,
        raw.api_key,
        raw.pii_key,
    ):
        register_secret(reveal(secret))
    connection_string = reveal(raw.azure_storage_connection_string)
    resolved = {
        "home": home,
        "kafka_bootstrap": bootstrap or f"127.0.0.1:{raw.kafka_port}",
        "kafka_embedded": not bootstrap,
        "kafka_security_protocol": security.protocol,
        "kafka_sasl_mechanism": security.mechanism,
        "kafka_sasl_username": security.username,
        "kafka_sasl_password": security.password,
        "archive_dir": raw.archive_dir.expanduser().resolve()
        if raw.archive_dir
        else home / "archive",
        "adls_account": raw.adls_account or _account_from_connection_string(connection_string),
        "dagster_url": (raw.dagster_url or "").rstrip("/") or None,
    }
    # Validated already (as read); the resolved values are pulsemart's own.
    settings = Settings.model_construct(**{**dict(raw), **resolved})
    _check_profile(settings)
    return settings
