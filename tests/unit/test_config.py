"""Settings: embedded defaults, external services, clear errors."""

import pytest

from pulsemart.config import SettingsError, load_settings


def test_defaults_are_embedded(tmp_path):
    settings = load_settings({"PULSEMART_HOME": str(tmp_path)})
    assert settings.postgres_embedded and settings.kafka_embedded
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.pgdata == tmp_path / "postgres"
    assert settings.sensor_interval_s == 5


def test_external_services_are_not_embedded():
    settings = load_settings({"PULSEMART_DATABASE_URL": "postgresql://db/x",
                              "PULSEMART_KAFKA_BOOTSTRAP": "b1:9092,b2:9092"})
    assert not settings.postgres_embedded and not settings.kafka_embedded
    assert settings.kafka_client_config()["bootstrap_servers"] == ["b1:9092", "b2:9092"]


def test_sasl_settings_reach_the_kafka_client_but_not_repr():
    settings = load_settings({"PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                              "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                              "PULSEMART_KAFKA_SASL_USERNAME": "svc",
                              "PULSEMART_KAFKA_SASL_PASSWORD": "s3cret"})
    config = settings.kafka_client_config()
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert config["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(("env", "named"), [
    ({"PULSEMART_PROFILE": "gcp"}, "PULSEMART_PROFILE"),
    ({"PULSEMART_KAFKA_PORT": "nine"}, "PULSEMART_KAFKA_PORT"),
    ({"PULSEMART_MAX_BATCH_EVENTS": "1e5"}, "PULSEMART_MAX_BATCH_EVENTS"),
])
def test_bad_settings_name_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env)
