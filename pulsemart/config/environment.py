"""The one module that reads pulsemart's environment: `Environment`, a pydantic-settings model
with a typed field per variable (secrets as `SecretStr`), and the helpers that read it from the
process, from a given mapping (tests), or with overrides (a Dagster resource's fields).
pulsemart.config resolves what it reads into `Settings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_KAFKA_PORT = 19092


class SettingsError(ValueError):
    """A setting has a value pulsemart cannot use; the message names the setting."""


def reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _env(name: str, *more: str):
    return Field(default=None, validation_alias=AliasChoices(name, *more))


class Environment(BaseSettings):
    """Every variable pulsemart reads, typed. Unset and empty variables take the default."""

    # Variables are named by alias only: matching field names too would read HOME as `home`.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = Field(Path("./.pulsemart"), validation_alias="PULSEMART_HOME")
    profile: Literal["local", "aws", "azure"] = Field("local", validation_alias="PULSEMART_PROFILE")
    database_url: str | None = _env("PULSEMART_DATABASE_URL")
    kafka_bootstrap: str | None = _env("PULSEMART_KAFKA_BOOTSTRAP")
    kafka_port: int = Field(DEFAULT_KAFKA_PORT, validation_alias="PULSEMART_KAFKA_PORT")
    kafka_security_protocol: str | None = _env("PULSEMART_KAFKA_SECURITY_PROTOCOL")
    kafka_sasl_mechanism: str | None = _env("PULSEMART_KAFKA_SASL_MECHANISM")
    kafka_sasl_username: str | None = _env("PULSEMART_KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr | None = _env("PULSEMART_KAFKA_SASL_PASSWORD")
    kafka_ssl_cafile: str | None = _env("PULSEMART_KAFKA_SSL_CAFILE")
    eventhubs_connection_string: SecretStr | None = _env("PULSEMART_EVENTHUBS_CONNECTION_STRING")
    api_key: SecretStr | None = _env("PULSEMART_API_KEY")
    mlflow_tracking_uri: str | None = _env("MLFLOW_TRACKING_URI")
    sensor_interval_s: int = Field(5, ge=1, validation_alias="PULSEMART_SENSOR_INTERVAL_SECONDS")
    min_batch_events: int = Field(1_000, ge=1, validation_alias="PULSEMART_MIN_BATCH_EVENTS")
    max_batch_events: int = Field(50_000, ge=1, validation_alias="PULSEMART_MAX_BATCH_EVENTS")
    max_concurrent_batches: int = Field(4, ge=1, validation_alias="PULSEMART_MAX_CONCURRENT_BATCHES")
    max_batch_seconds: float = Field(2.0, gt=0, validation_alias="PULSEMART_MAX_BATCH_SECONDS")
    archive_enabled: bool = Field(True, validation_alias="PULSEMART_ARCHIVE")
    archive_dir: Path | None = _env("PULSEMART_ARCHIVE_DIR")
    s3_bucket: str | None = _env("PULSEMART_S3_BUCKET")
    s3_endpoint_url: str | None = _env("PULSEMART_S3_ENDPOINT_URL")
    adls_account: str | None = _env("PULSEMART_ADLS_ACCOUNT")
    adls_container: str | None = _env("PULSEMART_ADLS_CONTAINER")
    azure_storage_connection_string: SecretStr | None = _env("AZURE_STORAGE_CONNECTION_STRING")
    azure_storage_access_key: SecretStr | None = _env("AZURE_STORAGE_ACCESS_KEY")
    azure_client_id: str | None = _env("AZURE_CLIENT_ID")
    pii_key: SecretStr | None = _env("PULSEMART_PII_KEY")
    drift_psi_threshold: float | None = Field(None, gt=0, validation_alias="PULSEMART_DRIFT_PSI_THRESHOLD")
    realtime_batch_ms: int = Field(20, ge=1, validation_alias="PULSEMART_REALTIME_BATCH_MS")
    realtime_max_records: int = Field(5_000, ge=1, validation_alias="PULSEMART_REALTIME_MAX_RECORDS")
    realtime_report_interval_s: int = Field(5, ge=1, validation_alias="PULSEMART_REALTIME_REPORT_INTERVAL_SECONDS")
    realtime_session_timeout_ms: int = Field(10_000, ge=1, validation_alias="PULSEMART_REALTIME_SESSION_TIMEOUT_MS")
    dagster_url: str | None = _env("PULSEMART_DAGSTER_URL")


class _MappingEnvironment(Environment):
    """The same model read from a given mapping only (tests, and `load_settings(env)`)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def variable_of(field_name: str) -> str:
    """The environment variable behind an `Environment` field."""
    alias = Environment.model_fields[field_name].validation_alias
    name = alias.choices[0] if isinstance(alias, AliasChoices) else alias
    if not isinstance(name, str):  # every field is declared with its variable's name (_env)
        raise TypeError(f"{field_name} names no environment variable")
    return name


# Fields whose values are secrets: the database URL may hold a password.
SECRET_FIELDS = frozenset({"database_url", *(name for name, info in Environment.model_fields.items()
                                             if SecretStr in getattr(info.annotation, "__args__", ()))})
_FIELD_OF = {variable_of(name): name for name in Environment.model_fields}


def read_environment(env: dict | None, overrides: dict | None = None) -> Environment:
    given = {variable_of(name): value for name, value in (overrides or {}).items()}
    try:
        if env is None:
            return Environment(**given)
        from_env = {k: v for k, v in env.items() if k in _FIELD_OF and v not in (None, "")}
        return _MappingEnvironment(**{**from_env, **given})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            if name in Environment.model_fields:
                name = variable_of(name)
            problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
        raise SettingsError("; ".join(problems)) from None


def configured_environment() -> dict:
    """The settings this process's environment sets explicitly, by field name: values, except
    secrets, given as the name of their variable (for Dagster's `EnvVar`)."""
    raw = read_environment(None)
    return {name: variable_of(name) if name in SECRET_FIELDS
            else str(value) if isinstance(value, Path) else value
            for name in raw.model_fields_set if (value := getattr(raw, name)) is not None}
