"""Settings: embedded defaults, external services, clear errors."""

import pytest

from pulsemart.config import Environment, Settings, SettingsError, load_settings


def test_defaults_are_embedded(tmp_path):
    settings = load_settings({"PULSEMART_HOME": str(tmp_path)})
    assert settings.postgres_embedded and settings.kafka_embedded
    assert settings.kafka_bootstrap == "127.0.0.1:19092"
    assert settings.pgdata == tmp_path / "postgres"
    assert settings.sensor_interval_s == 5


def test_external_services_are_not_embedded():
    settings = load_settings(
        {
            "PULSEMART_DATABASE_URL": "postgresql://db/x",
            "PULSEMART_KAFKA_BOOTSTRAP": "b1:9092,b2:9092",
        }
    )
    assert not settings.postgres_embedded and not settings.kafka_embedded
    assert settings.kafka_client_config()["bootstrap_servers"] == ["b1:9092", "b2:9092"]


def test_sasl_settings_reach_the_kafka_client_but_not_repr():
    settings = load_settings(
        {
            "PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PULSEMART_KAFKA_SASL_USERNAME": "svc",
            "PULSEMART_KAFKA_SASL_PASSWORD": "s3cret",
        }
    )
    config = settings.kafka_client_config()
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert config["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PULSEMART_PROFILE": "gcp"}, "PULSEMART_PROFILE"),
        ({"PULSEMART_KAFKA_PORT": "nine"}, "PULSEMART_KAFKA_PORT"),
        ({"PULSEMART_MAX_BATCH_EVENTS": "1e5"}, "PULSEMART_MAX_BATCH_EVENTS"),
    ],
)
def test_bad_settings_name_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_sasl_mechanism_without_protocol_means_sasl_ssl():
    settings = load_settings(
        {
            "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PULSEMART_KAFKA_SASL_USERNAME": "svc",
            "PULSEMART_KAFKA_SASL_PASSWORD": "s3cret",
        }
    )
    assert settings.kafka_security_protocol == "SASL_SSL"


def test_archive_defaults_to_a_folder_under_home(tmp_path):
    settings = load_settings({"PULSEMART_HOME": str(tmp_path)})
    assert settings.archive_enabled and settings.archive_dir == tmp_path / "archive"
    other = load_settings(
        {
            "PULSEMART_HOME": str(tmp_path),
            "PULSEMART_ARCHIVE": "off",
            "PULSEMART_ARCHIVE_DIR": str(tmp_path / "lake"),
        }
    )
    assert not other.archive_enabled and other.archive_dir == tmp_path / "lake"


# What a cloud profile needs besides its own settings: managed PostgreSQL and Kafka.
SERVICES = {
    "PULSEMART_DATABASE_URL": "postgresql://pulsemart@db.internal/pulsemart",
    "PULSEMART_KAFKA_BOOTSTRAP": "b-1.msk.internal:9096",
}


def test_a_complete_aws_profile_loads():
    settings = load_settings(
        {**SERVICES, "PULSEMART_PROFILE": "aws", "PULSEMART_S3_BUCKET": "shop-lake"}
    )
    assert (settings.profile, settings.s3_bucket, settings.s3_endpoint_url) == (
        "aws",
        "shop-lake",
        None,
    )


def test_a_complete_azure_profile_loads_with_the_account_from_the_connection_string():
    connection = (
        "DefaultEndpointsProtocol=https;AccountName=shoplake;AccountKey=c2VjcmV0a2V5;"
        "EndpointSuffix=core.windows.net"
    )
    settings = load_settings(
        {
            **SERVICES,
            "PULSEMART_PROFILE": "azure",
            "PULSEMART_ADLS_CONTAINER": "lake",
            "AZURE_STORAGE_CONNECTION_STRING": connection,
        }
    )
    assert (settings.adls_account, settings.adls_container) == ("shoplake", "lake")
    assert "c2VjcmV0a2V5" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {**SERVICES, "PULSEMART_PROFILE": "aws"},
            "PULSEMART_PROFILE=aws needs PULSEMART_S3_BUCKET",
        ),
        (
            {"PULSEMART_PROFILE": "aws", "PULSEMART_S3_BUCKET": "b"},
            "PULSEMART_PROFILE=aws needs PULSEMART_DATABASE_URL .*PULSEMART_KAFKA_BOOTSTRAP",
        ),
        (
            {
                **SERVICES,
                "PULSEMART_PROFILE": "azure",
                "AZURE_STORAGE_ACCESS_KEY": "k3y-value",
                "PULSEMART_ADLS_ACCOUNT": "shoplake",
            },
            "PULSEMART_PROFILE=azure needs PULSEMART_ADLS_CONTAINER",
        ),
        (
            {
                **SERVICES,
                "PULSEMART_PROFILE": "azure",
                "PULSEMART_ADLS_CONTAINER": "lake",
                "PULSEMART_ADLS_ACCOUNT": "shoplake",
            },
            (
                "PULSEMART_PROFILE=azure needs AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCESS_KEY "
                "or AZURE_CLIENT_ID"
            ),
        ),
        (
            {
                **SERVICES,
                "PULSEMART_PROFILE": "azure",
                "PULSEMART_ADLS_CONTAINER": "lake",
                "AZURE_CLIENT_ID": "id",
            },
            "PULSEMART_PROFILE=azure needs PULSEMART_ADLS_ACCOUNT",
        ),
        (
            {
                "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                "PULSEMART_KAFKA_SASL_USERNAME": "svc",
            },
            "SCRAM-SHA-512 needs PULSEMART_KAFKA_SASL_PASSWORD",
        ),
        ({"PULSEMART_KAFKA_SASL_MECHANISM": "GSSAPI"}, "PULSEMART_KAFKA_SASL_MECHANISM='GSSAPI'"),
        ({"PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs PULSEMART_KAFKA_SASL_MECHANISM"),
        (
            {
                "PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "PULSEMART_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
            },
            "AWS_MSK_IAM needs SASL_SSL",
        ),
        ({"PULSEMART_ARCHIVE": "maybe"}, "PULSEMART_ARCHIVE"),
    ],
)
def test_a_profile_missing_a_setting_fails_naming_it(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_settings_repr_masks_every_secret_and_the_database_password():
    settings = load_settings(
        {
            **SERVICES,
            "PULSEMART_PROFILE": "azure",
            "PULSEMART_ADLS_CONTAINER": "lake",
            "PULSEMART_DATABASE_URL": "postgresql://pulsemart:db-pa55word@db.internal/pulsemart",
            "PULSEMART_ADLS_ACCOUNT": "shoplake",
            "AZURE_STORAGE_ACCESS_KEY": "account-key-value",
            "PULSEMART_API_KEY": "api-key-value",
            "PULSEMART_KAFKA_SASL_MECHANISM": "PLAIN",
            "PULSEMART_KAFKA_SASL_USERNAME": "svc",
            "PULSEMART_KAFKA_SASL_PASSWORD": "sasl-pa55word",
        }
    )
    text = repr(settings) + str(settings)
    for secret in ("db-pa55word", "account-key-value", "api-key-value", "sasl-pa55word"):
        assert secret not in text
    assert "azure_storage_access_key='***'" in text and "postgresql://pulsemart:***@" in text


# Settings fields whose value load_settings derives rather than takes as read.
RESOLVED = {"home", "kafka_bootstrap", "kafka_security_protocol", "archive_dir"}


def test_settings_declare_no_setting_of_their_own():
    """Every setting is declared once, in Environment: Settings inherits them all and adds
    only what resolution derives."""
    assert issubclass(Settings, Environment)
    assert set(Settings.model_fields) - set(Environment.model_fields) == {"kafka_embedded"}
    for name, info in Environment.model_fields.items():
        assert info.description, f"{name} has no description"
        inherited = Settings.model_fields[name]
        assert name in RESOLVED or (
            inherited.annotation,
            inherited.default,
            inherited.description,
        ) == (info.annotation, info.default, info.description), name


def test_unset_settings_are_the_model_s_defaults(tmp_path):
    settings = load_settings({"PULSEMART_HOME": str(tmp_path)})
    for name, info in Environment.model_fields.items():
        if name not in RESOLVED:
            assert getattr(settings, name) == info.default, name
    assert (settings.kafka_bootstrap, settings.kafka_security_protocol) == (
        "127.0.0.1:19092",
        "PLAINTEXT",
    )


def test_a_changed_copy_keeps_the_rest():
    settings = load_settings(
        {"PULSEMART_API_KEY": "api-key-value", "PULSEMART_MAX_BATCH_EVENTS": "77"}
    )
    copy = settings.model_copy(update={"api_key": None})
    assert (copy.api_key, copy.max_batch_events, settings.api_key is not None) == (None, 77, True)
