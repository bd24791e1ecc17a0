"""The one module that reads pulsemart's environment, and the one declaration of every setting.

`Environment` is a frozen pydantic-settings model with a field per variable: its name, type
(secrets as `SecretStr`), default, checks and description. Everything else is derived from
it: `Settings` (pulsemart.config) is this model resolved, the Dagster resources
(orchestration/resources.py) take their fields from it, and the README's settings table is
`settings_table()`. The helpers here read it from the process, from a given mapping (tests),
or with overrides (a Dagster resource's fields).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic.json_schema import JsonDict
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_KAFKA_PORT = 19092
# What each field configures; Dagster shows one resource per group (orchestration/resources.py).
NO_DEFAULT = "—"  # shown for a setting that is simply unset by default
GROUPS = ("general", "postgres", "kafka", "object_store", "mlflow", "batch", "realtime", "serving")


class SettingsError(ValueError):
    """A setting has a value pulsemart cannot use; the message names the setting."""


def reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def setting(
    variable: str,
    default: Any,
    description: str,
    *,
    group: str,
    when_unset: str | None = None,
    secret: bool = False,
    **checks: Any,
) -> Any:
    """A field read from `variable`. `when_unset` says what a None default means (for the
    README and Dagster's UI); `secret` marks a plain string that may hold a secret."""
    if group not in GROUPS:
        raise ValueError(f"{variable}: unknown group {group!r}")
    extra: JsonDict = {"group": group, "when_unset": when_unset, "secret": secret}
    return Field(
        default,
        validation_alias=variable,
        description=description,
        json_schema_extra=extra,
        **checks,
    )


class Environment(BaseSettings):
    """Every variable pulsemart reads, typed. Unset and empty variables take the default."""

    # Variables are named by alias only: matching field names too would read HOME as `home`.
    model_config = SettingsConfigDict(env_ignore_empty=True, extra="ignore", frozen=True)

    home: Path = setting(
        "PULSEMART_HOME",
        Path("./.pulsemart"),
        "state folder: PostgreSQL data, Dagster home, pid files, logs",
        group="general",
    )
    profile: Literal["local", "aws", "azure"] = setting(
        "PULSEMART_PROFILE",
        "local",
        "`local`, `aws` or `azure`: object store, Kafka security and "
        "services by configuration only; a cloud profile missing a setting stops at start-up "
        "naming it (docs/deploy.md)",
        group="general",
    )
    database_url: str | None = setting(
        "PULSEMART_DATABASE_URL",
        None,
        "PostgreSQL URL (it may hold the password)",
        group="postgres",
        when_unset="embedded server",
        secret=True,
    )
    kafka_bootstrap: str | None = setting(
        "PULSEMART_KAFKA_BOOTSTRAP",
        None,
        "Kafka bootstrap servers, comma-separated (Event Hubs: derived from the connection string)",
        group="kafka",
        when_unset="`127.0.0.1:$PULSEMART_KAFKA_PORT`",
    )
    kafka_port: int = setting(
        "PULSEMART_KAFKA_PORT", DEFAULT_KAFKA_PORT, "port of the embedded broker", group="kafka"
    )
    kafka_security_protocol: str | None = setting(
        "PULSEMART_KAFKA_SECURITY_PROTOCOL",
        None,
        "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`",
        group="kafka",
        when_unset="`PLAINTEXT`; `SASL_SSL` with a mechanism",
    )
    kafka_sasl_mechanism: str | None = setting(
        "PULSEMART_KAFKA_SASL_MECHANISM",
        None,
        "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512` or "
        "`AWS_MSK_IAM` (signed with botocore's credentials and region, in both lanes)",
        group="kafka",
    )
    kafka_sasl_username: str | None = setting(
        "PULSEMART_KAFKA_SASL_USERNAME", None, "SASL username (PLAIN, SCRAM)", group="kafka"
    )
    kafka_sasl_password: SecretStr | None = setting(
        "PULSEMART_KAFKA_SASL_PASSWORD", None, "SASL password (PLAIN, SCRAM)", group="kafka"
    )
    kafka_ssl_cafile: str | None = setting(
        "PULSEMART_KAFKA_SSL_CAFILE",
        None,
        "CA certificate file for the brokers' TLS",
        group="kafka",
        when_unset="the system's",
    )
    eventhubs_connection_string: SecretStr | None = setting(
        "PULSEMART_EVENTHUBS_CONNECTION_STRING",
        None,
        "Azure Event Hubs' Kafka endpoint: "
        "`SASL_SSL` + `PLAIN` as `$ConnectionString`, bootstrap derived",
        group="kafka",
    )
    archive_enabled: bool = setting(
        "PULSEMART_ARCHIVE",
        True,
        "`on` or `off`: copy each ingest batch as Parquet to the "
        "object store (`topic=…/date=…/batch-<id>.parquet`)",
        group="object_store",
    )
    archive_dir: Path | None = setting(
        "PULSEMART_ARCHIVE_DIR",
        None,
        "the local profile's object store folder",
        group="object_store",
        when_unset="`$PULSEMART_HOME/archive`",
    )
    s3_bucket: str | None = setting(
        "PULSEMART_S3_BUCKET",
        None,
        "aws: bucket for the archive, MLflow artifacts and step logs (credentials: the AWS chain)",
        group="object_store",
    )
    s3_endpoint_url: str | None = setting(
        "PULSEMART_S3_ENDPOINT_URL",
        None,
        "aws: an S3-compatible endpoint (moto, MinIO)",
        group="object_store",
        when_unset="AWS's own",
    )
    adls_account: str | None = setting(
        "PULSEMART_ADLS_ACCOUNT",
        None,
        "azure: storage account",
        group="object_store",
        when_unset="from the connection string",
    )
    adls_container: str | None = setting(
        "PULSEMART_ADLS_CONTAINER",
        None,
        "azure: container (ADLS Gen2 file system)",
        group="object_store",
    )
    azure_storage_connection_string: SecretStr | None = setting(
        "AZURE_STORAGE_CONNECTION_STRING",
        None,
        "azure: storage credentials, first choice (MLflow reads the same variable)",
        group="object_store",
    )
    azure_storage_access_key: SecretStr | None = setting(
        "AZURE_STORAGE_ACCESS_KEY",
        None,
        "azure: the storage account key, without a connection "
        "string (MLflow reads the same variable)",
        group="object_store",
    )
    azure_client_id: str | None = setting(
        "AZURE_CLIENT_ID",
        None,
        "azure: a managed or workload identity (azure-identity's "
        "`DefaultAzureCredential`), without either of the above",
        group="object_store",
    )
    sensor_interval_s: int = setting(
        "PULSEMART_SENSOR_INTERVAL_SECONDS",
        5,
        "minimum interval between sensor ticks (seconds)",
        group="batch",
        ge=1,
    )
    min_batch_events: int = setting(
        "PULSEMART_MIN_BATCH_EVENTS",
        1_000,
        "smallest batch the sensor lane plans (batches grow with lag)",
        group="batch",
        ge=1,
    )
    max_batch_events: int = setting(
        "PULSEMART_MAX_BATCH_EVENTS",
        50_000,
        "largest batch the sensor lane plans",
        group="batch",
        ge=1,
    )
    max_concurrent_batches: int = setting(
        "PULSEMART_MAX_CONCURRENT_BATCHES", 4, "ingest runs in flight at once", group="batch", ge=1
    )
    max_batch_seconds: float = setting(
        "PULSEMART_MAX_BATCH_SECONDS",
        2.0,
        "longest a batch keeps reading before it commits (seconds, fractions allowed)",
        group="batch",
        gt=0,
    )
    api_key: SecretStr | None = setting(
        "PULSEMART_API_KEY", None, "serving API key", group="serving"
    )
    session_state: bool = setting(
        "PULSEMART_SESSION_STATE",
        True,
        "the fold keeps what each session and customer touched lately, for the blend; "
        "off: recommendations blend the model and trending only",
        group="serving",
    )
    exposures: bool = setting(
        "PULSEMART_EXPOSURES",
        True,
        "the API produces what each recommendations response showed to shop.exposures "
        "(docs/serving.md); off: responses still carry a recommendation_id",
        group="serving",
    )
    exposure_spool_rows: int = setting(
        "PULSEMART_EXPOSURE_SPOOL_ROWS",
        100_000,
        "exposures each API process keeps on disk while Kafka is away; past it they are "
        "dropped and counted",
        group="serving",
        ge=1,
    )
    trending_refresh_s: float = setting(
        "PULSEMART_TRENDING_REFRESH_S",
        60.0,
        "the fold recomputes the trending list once the newest event folded is this many "
        "seconds of event time past the list's; the list, and the blend's recency clock, lag "
        "the stream by at most this; 0: on every fold",
        group="serving",
        ge=0,
    )
    # The session-aware blend's weights (ml/blend.py); the defaults are those the session
    # replay chose (docs/ml.md), so a shop changes them only after measuring its own. They are
    # written out here rather than read from ml.blend, which the streaming code location must
    # not import; tests/unit/test_settings_readme.py holds the two equal.
    blend_model: float = setting(
        "PULSEMART_BLEND_MODEL",
        1.0,
        "weight of the deployed model's batch scores in recommendations",
        group="serving",
        ge=0,
    )
    blend_session: float = setting(
        "PULSEMART_BLEND_SESSION",
        0.3,
        "weight of neighbours of the session's products",
        group="serving",
        ge=0,
    )
    blend_history: float = setting(
        "PULSEMART_BLEND_HISTORY",
        0.003,
        "weight of neighbours of the customer's products from earlier sessions",
        group="serving",
        ge=0,
    )
    blend_trending: float = setting(
        "PULSEMART_BLEND_TRENDING",
        0.05,
        "weight of trending products (the last resort)",
        group="serving",
        ge=0,
    )
    blend_view: float = setting(
        "PULSEMART_BLEND_VIEW",
        1.0,
        "what a view lends its neighbours",
        group="serving",
        ge=0,
    )
    blend_cart: float = setting(
        "PULSEMART_BLEND_CART",
        3.0,
        "what a cart addition lends its neighbours",
        group="serving",
        ge=0,
    )
    blend_purchase: float = setting(
        "PULSEMART_BLEND_PURCHASE",
        5.0,
        "what a purchase lends its neighbours",
        group="serving",
        ge=0,
    )
    blend_half_life_s: float = setting(
        "PULSEMART_BLEND_HALF_LIFE_SECONDS",
        1800.0,
        "event time after which a session touch lends half as much (seconds)",
        group="serving",
        gt=0,
    )
    blend_history_half_life_s: float = setting(
        "PULSEMART_BLEND_HISTORY_HALF_LIFE_SECONDS",
        14 * 86400.0,
        "the same for touches from earlier sessions (seconds)",
        group="serving",
        gt=0,
    )
    blend_session_decay: float = setting(
        "PULSEMART_BLEND_SESSION_DECAY",
        0.7,
        "what each earlier product of the session lends, per step back from the latest",
        group="serving",
        ge=0,
        le=1,
    )
    mlflow_tracking_uri: str | None = setting(
        "MLFLOW_TRACKING_URI",
        None,
        "MLflow tracking server or database",
        group="mlflow",
        when_unset="SQLite under `$PULSEMART_HOME`",
    )
    pii_key: SecretStr | None = setting(
        "PULSEMART_PII_KEY",
        None,
        "key of the marts' customer hashes (HMAC-SHA256)",
        group="general",
        when_unset="random, in the database",
    )
    drift_psi_threshold: float | None = setting(
        "PULSEMART_DRIFT_PSI_THRESHOLD",
        None,
        "PSI above which the drift sensor asks for a retrain",
        group="general",
        when_unset="`0.25`",
        gt=0,
    )
    # Online experiments (docs/ml.md): the names are pulsemart.ml_store.experiment_readout's
    # METRICS, written out because the streaming code location must not import the ML stack;
    # tests/unit/test_experiment_readout.py holds the two equal.
    experiment_metric: Literal["ctr", "conversion", "revenue_per_exposure"] = setting(
        "PULSEMART_EXPERIMENT_METRIC",
        "ctr",
        "what the online gate judges a challenger on: `ctr`, `conversion` or "
        "`revenue_per_exposure`",
        group="general",
    )
    experiment_alpha: float = setting(
        "PULSEMART_EXPERIMENT_ALPHA",
        0.05,
        "significance level (two-sided) of the online gate and of the conversion guardrail",
        group="general",
        gt=0,
        le=0.5,
    )
    experiment_min_exposures: int = setting(
        "PULSEMART_EXPERIMENT_MIN_EXPOSURES",
        200,
        "exposures every arm of an experiment needs before the online gate judges it",
        group="general",
        ge=1,
    )
    experiment_require_evidence: bool = setting(
        "PULSEMART_EXPERIMENT_REQUIRE_EVIDENCE",
        True,
        "concluding an experiment by promotion needs the online gate's pass; off: it may "
        "promote without one (audited)",
        group="general",
    )
    realtime_batch_ms: int = setting(
        "PULSEMART_REALTIME_BATCH_MS",
        20,
        "a real-time micro-batch closes this long after its first record (milliseconds)",
        group="realtime",
        ge=1,
    )
    realtime_max_batch_ms: int = setting(
        "PULSEMART_REALTIME_MAX_BATCH_MS",
        20,
        "above the batch window, a busy worker's window grows to its last batch's duration, up "
        "to this (milliseconds; at most the batch window, the default: a fixed window)",
        group="realtime",
        ge=1,
    )
    realtime_max_records: int = setting(
        "PULSEMART_REALTIME_MAX_RECORDS",
        5_000,
        "a real-time micro-batch closes at this many records at the latest",
        group="realtime",
        ge=1,
    )
    realtime_report_interval_s: int = setting(
        "PULSEMART_REALTIME_REPORT_INTERVAL_SECONDS",
        5,
        "how often a worker reports runless asset events to Dagster, at most (seconds)",
        group="realtime",
        ge=1,
    )
    realtime_session_timeout_ms: int = setting(
        "PULSEMART_REALTIME_SESSION_TIMEOUT_MS",
        10_000,
        "a stopped worker's partitions move to the others after this (milliseconds)",
        group="realtime",
        ge=1,
    )
    realtime_lock_timeout_s: float = setting(
        "PULSEMART_REALTIME_LOCK_TIMEOUT_SECONDS",
        5.0,
        "a worker's batch waiting this long on "
        "a lock fails, names the holder and is read again (seconds)",
        group="realtime",
        gt=0,
    )
    realtime_statement_timeout_s: float = setting(
        "PULSEMART_REALTIME_STATEMENT_TIMEOUT_SECONDS",
        30.0,
        "a worker's statement running "
        "longer is cancelled; bounds how long a killed worker's backend holds its locks "
        "(seconds)",
        group="realtime",
        gt=0,
    )
    dagster_url: str | None = setting(
        "PULSEMART_DAGSTER_URL",
        None,
        "Dagster webserver the real-time workers report to",
        group="realtime",
        when_unset="not reported",
    )


class _MappingEnvironment(Environment):
    """The same model read from the values given only (tests, and `load_settings(env)`)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _extra(field_name: str) -> dict:
    extra = Environment.model_fields[field_name].json_schema_extra
    return extra if isinstance(extra, dict) else {}


def variable_of(field_name: str) -> str:
    """The environment variable behind an `Environment` field."""
    alias = Environment.model_fields[field_name].validation_alias
    if not isinstance(alias, str):  # every field is declared with its variable's name (setting)
        raise TypeError(f"{field_name} names no environment variable")
    return alias


def group_of(field_name: str) -> str:
    return str(_extra(field_name)["group"])


def shown_default(field_name: str) -> str:
    """The default as the README and Dagster's UI show it."""
    default = Environment.model_fields[field_name].default
    if default is None:
        return str(_extra(field_name).get("when_unset") or NO_DEFAULT)
    if isinstance(default, bool):
        return "`on`" if default else "`off`"
    if isinstance(default, Path) and not default.is_absolute():
        return f"`./{default}`"
    return f"`{default}`"


def settings_table() -> str:
    """The README's table of settings (README.md, "Pointing at real Kafka and PostgreSQL")."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    rows += [
        f"| `{variable_of(name)}` | {shown_default(name)} | {info.description} |"
        for name, info in Environment.model_fields.items()
    ]
    return "\n".join(rows) + "\n"


SECRET_FIELDS = frozenset(
    name
    for name, info in Environment.model_fields.items()
    if SecretStr in getattr(info.annotation, "__args__", ()) or _extra(name).get("secret")
)
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
    return {
        name: variable_of(name)
        if name in SECRET_FIELDS
        else str(value)
        if isinstance(value, Path)
        else value
        for name in raw.model_fields_set
        if (value := getattr(raw, name)) is not None
    }
