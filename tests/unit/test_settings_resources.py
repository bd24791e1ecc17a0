"""Settings as Dagster sees them: one typed model, read in one place, shown in the resources'
fields; secrets as SecretStr and EnvVar."""

import re
import typing
from pathlib import Path

import dagster as dg
import pytest
from pydantic import SecretStr

from orchestration import resources
from pulsemart.config import (
    SECRET_FIELDS,
    Environment,
    SettingsError,
    configured_environment,
    load_settings,
    variable_of,
)

ROOT = Path(__file__).resolve().parents[2]


def test_max_batch_seconds_takes_fractions():
    assert load_settings({"PULSEMART_MAX_BATCH_SECONDS": "0.5"}).max_batch_seconds == 0.5
    with pytest.raises(SettingsError, match="PULSEMART_MAX_BATCH_SECONDS"):
        load_settings({"PULSEMART_MAX_BATCH_SECONDS": "0"})


def test_secrets_are_secret_strings():
    settings = load_settings(
        {
            "PULSEMART_API_KEY": "k-123",
            "PULSEMART_PII_KEY": "p-456",
            "PULSEMART_KAFKA_SASL_MECHANISM": "PLAIN",
            "PULSEMART_KAFKA_SASL_USERNAME": "u",
            "PULSEMART_KAFKA_SASL_PASSWORD": "pw-789",
        }
    )
    for value, secret in (
        (settings.api_key, "k-123"),
        (settings.pii_key, "p-456"),
        (settings.kafka_sasl_password, "pw-789"),
    ):
        assert isinstance(value, SecretStr) and value.get_secret_value() == secret
        assert secret not in repr(settings) and secret not in str(settings)
    assert {"database_url", "kafka_sasl_password", "api_key", "pii_key"} <= SECRET_FIELDS


def test_the_environment_sets_resource_fields_and_secrets_arrive_as_env_vars(monkeypatch):
    monkeypatch.setenv("PULSEMART_MAX_BATCH_EVENTS", "1234")
    monkeypatch.setenv("PULSEMART_S3_BUCKET", "shop-lake")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("PULSEMART_KAFKA_SASL_PASSWORD", "pw-in-env")
    assert configured_environment()["kafka_sasl_password"] == "PULSEMART_KAFKA_SASL_PASSWORD"
    built = resources.build_resources.__wrapped__()  # not the cached set of the code locations
    pulsemart = built["pulsemart"]
    # Non-secret values are the fields' values: what the UI's resource view shows.
    assert pulsemart.batch.max_batch_events == 1234
    assert pulsemart.object_store.s3_bucket == "shop-lake"
    # The secret is the name of its variable, resolved when the resource is used.
    assert isinstance(pulsemart.kafka.kafka_sasl_password, dg.EnvVar)
    assert "pw-in-env" not in repr(pulsemart)
    with dg.build_resources({"pulsemart": pulsemart}) as initialized:
        settings = initialized.pulsemart.get()
    assert settings.max_batch_events == 1234
    assert settings.kafka_sasl_password.get_secret_value() == "pw-in-env"


def test_a_field_set_on_the_resource_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("PULSEMART_MAX_BATCH_EVENTS", "1234")
    parts = {
        "kafka": resources.KafkaSettings(),
        "postgres": resources.PostgresSettings(),
        "object_store": resources.ObjectStoreSettings(),
        "mlflow": resources.MlflowSettings(),
        "batch": resources.BatchSizing(max_batch_events=77, max_batch_seconds=0.25),
    }
    with dg.build_resources({"pulsemart": resources.PulsemartSettings(**parts)}) as initialized:
        settings = initialized.pulsemart.get()
    assert (settings.max_batch_events, settings.max_batch_seconds) == (77, 0.25)
    assert settings.min_batch_events == 1_000  # unset everywhere: the embedded default


PARTS = (
    resources.KafkaSettings,
    resources.PostgresSettings,
    resources.ObjectStoreSettings,
    resources.MlflowSettings,
    resources.BatchSizing,
    resources.PulsemartSettings,
)
NESTED_PARTS = {"kafka", "postgres", "object_store", "mlflow", "batch"}


def test_the_resources_fields_are_the_model_s_fields_each_once():
    fields = [name for part in PARTS for name in part.model_fields if name not in NESTED_PARTS]
    assert sorted(fields) == sorted(Environment.model_fields)
    assert set(resources.PulsemartSettings.model_fields) & NESTED_PARTS == NESTED_PARTS


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.__name__)
def test_each_resource_field_is_typed_and_described_from_the_model(part):
    config_types = {bool, int, float, str}
    for name, field in part.model_fields.items():
        if name in NESTED_PARTS:
            continue
        declared = Environment.model_fields[name]
        assert field.default is None  # "from the environment", where the model's default applies
        assert field.description.startswith(f"{variable_of(name)}: {declared.description}.")
        if declared.default is not None:
            assert "Default: " in field.description, name
        assert ("EnvVar" in field.description) == (name in SECRET_FIELDS), name
        shown = [kind for kind in typing.get_args(field.annotation) if kind is not type(None)]
        kinds = [
            kind
            for kind in typing.get_args(declared.annotation) or (declared.annotation,)
            if kind is not type(None)
        ]
        assert shown == (kinds if kinds[0] in config_types else [str]), name


def test_fields_of_every_type_reach_the_settings(tmp_path):
    parts = {
        "kafka": resources.KafkaSettings(kafka_port=29092),
        "postgres": resources.PostgresSettings(),
        "object_store": resources.ObjectStoreSettings(
            archive_enabled=False, archive_dir=str(tmp_path / "lake")
        ),
        "mlflow": resources.MlflowSettings(),
        "batch": resources.BatchSizing(),
    }
    pulsemart = resources.PulsemartSettings(
        home=str(tmp_path), profile="local", drift_psi_threshold=0.5, realtime_batch_ms=40, **parts
    )
    with dg.build_resources({"pulsemart": pulsemart}) as initialized:
        settings = initialized.pulsemart.get()
    assert (settings.home, settings.kafka_bootstrap, settings.archive_enabled) == (
        tmp_path,
        "127.0.0.1:29092",
        False,
    )
    assert (settings.archive_dir, settings.drift_psi_threshold, settings.realtime_batch_ms) == (
        tmp_path / "lake",
        0.5,
        40,
    )


# Reads of the environment outside pulsemart/config/environment.py, each with its reason.
ALLOWED_ENV_ACCESS = {
    "pulsemart/local/launcher.py": "builds the environment of the processes `pulsemart up` starts",
    "pulsemart/datamart/project.py": "the environment of the dbt process it starts",
    "orchestration/catch_up.py": "DAGSTER_HOME, Dagster's own setting, chooses the instance",
    "ml/tracking.py": "variables MLflow itself reads",
    "pulsemart/cli/serve.py": "hands --insecure-no-auth to the API's worker processes",
}


def test_only_the_settings_module_reads_the_environment():
    offenders = []
    for top in ("pulsemart", "ml", "orchestration", "sensors"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative == "pulsemart/config/environment.py" or relative in ALLOWED_ENV_ACCESS:
                continue
            if re.search(r"os\.environ|os\.getenv|environ\.get", path.read_text()):
                offenders.append(relative)
    assert offenders == []
