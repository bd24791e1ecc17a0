"""Kafka security per profile: the one resolved security, the kafka-python keywords and the
librdkafka properties it renders to, and the secret kept out of every printable form and log
line."""

import logging
import pprint
import time

import certifi
import pytest
from confluent_kafka import Consumer
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.net.sasl import get_sasl_mechanism

from pulsemart.cloud import kafka
from pulsemart.config import load_settings
from pulsemart.realtime.consumer import librdkafka_config

SERVICES = {"PULSEMART_DATABASE_URL": "postgresql://pulsemart@db.internal/pulsemart"}
EVENTHUBS = (
    "Endpoint=sb://shop-ns.servicebus.windows.net/;SharedAccessKeyName=pulsemart;"
    "SharedAccessKey=eh-Key-0123456789abcdef=;EntityPath=shop.events"
)
CAFILE = certifi.where()  # a real bundle: librdkafka opens the file when a client is created
# profile: (settings, kafka-python keywords, librdkafka properties)
PROFILES = {
    "local": (
        {},
        {"bootstrap_servers": ["127.0.0.1:19092"], "security_protocol": "PLAINTEXT"},
        {"bootstrap.servers": "127.0.0.1:19092", "security.protocol": "PLAINTEXT"},
    ),
    "tls-with-ca-file": (
        {
            "PULSEMART_KAFKA_BOOTSTRAP": "kafka.internal:9093",
            "PULSEMART_KAFKA_SECURITY_PROTOCOL": "SSL",
            "PULSEMART_KAFKA_SSL_CAFILE": CAFILE,
        },
        {
            "bootstrap_servers": ["kafka.internal:9093"],
            "security_protocol": "SSL",
            "ssl_cafile": CAFILE,
        },
        {
            "bootstrap.servers": "kafka.internal:9093",
            "security.protocol": "SSL",
            "ssl.ca.location": CAFILE,
        },
    ),
    "aws-msk-scram": (
        {
            **SERVICES,
            "PULSEMART_PROFILE": "aws",
            "PULSEMART_S3_BUCKET": "lake",
            "PULSEMART_KAFKA_BOOTSTRAP": "b-1.msk.internal:9096,b-2.msk.internal:9096",
            "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PULSEMART_KAFKA_SASL_USERNAME": "pulsemart",
            "PULSEMART_KAFKA_SASL_PASSWORD": "msk-Pa55word",
        },
        {
            "bootstrap_servers": ["b-1.msk.internal:9096", "b-2.msk.internal:9096"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "pulsemart",
            "sasl_plain_password": "msk-Pa55word",
        },
        {
            "bootstrap.servers": "b-1.msk.internal:9096,b-2.msk.internal:9096",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "pulsemart",
            "sasl.password": "msk-Pa55word",
        },
    ),
    "aws-msk-iam": (
        {
            **SERVICES,
            "PULSEMART_PROFILE": "aws",
            "PULSEMART_S3_BUCKET": "lake",
            "PULSEMART_KAFKA_BOOTSTRAP": "b-1.msk.internal:9098",
            "PULSEMART_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM",
        },
        {
            "bootstrap_servers": ["b-1.msk.internal:9098"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "AWS_MSK_IAM",
        },
        {
            "bootstrap.servers": "b-1.msk.internal:9098",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "OAUTHBEARER",
            "oauth_cb": kafka.msk_iam_token,
        },
    ),
    "azure-event-hubs": (
        {
            **SERVICES,
            "PULSEMART_PROFILE": "azure",
            "PULSEMART_ADLS_CONTAINER": "lake",
            "PULSEMART_ADLS_ACCOUNT": "shoplake",
            "AZURE_CLIENT_ID": "workload-identity",
            "PULSEMART_EVENTHUBS_CONNECTION_STRING": EVENTHUBS,
        },
        {
            "bootstrap_servers": ["shop-ns.servicebus.windows.net:9093"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "$ConnectionString",
            "sasl_plain_password": EVENTHUBS,
        },
        {
            "bootstrap.servers": "shop-ns.servicebus.windows.net:9093",
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "$ConnectionString",
            "sasl.password": EVENTHUBS,
        },
    ),
}
SECRETS = ("msk-Pa55word", EVENTHUBS, "eh-Key-0123456789abcdef=")


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_yields_the_expected_kafka_python_config(profile):
    env, expected, _ = PROFILES[profile]
    assert dict(load_settings(env).kafka_client_config()) == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_yields_the_expected_librdkafka_config(profile):
    env, _, expected = PROFILES[profile]
    assert dict(librdkafka_config(load_settings(env))) == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_both_clients_render_one_resolved_security(profile):
    settings = load_settings(PROFILES[profile][0])
    security = settings.kafka_security
    assert (
        kafka.kafka_python_config(settings.kafka_bootstrap, security)
        == settings.kafka_client_config()
    )
    assert kafka.librdkafka_config(settings.kafka_bootstrap, security) == librdkafka_config(
        settings
    )
    assert security == kafka.resolve_security(
        settings.kafka_security_protocol,
        settings.kafka_sasl_mechanism,
        settings.kafka_sasl_username,
        security.plain_password(),
        cafile=settings.kafka_ssl_cafile,
    )


@pytest.mark.parametrize("profile", PROFILES)
def test_no_printable_form_shows_the_secret(profile):
    env, _, _ = PROFILES[profile]
    settings = load_settings(env)
    config, properties = settings.kafka_client_config(), librdkafka_config(settings)
    printable = [
        form
        for shown in (config, properties, settings.kafka_security, settings)
        for form in (
            repr(shown),
            str(shown),
            f"{shown}",
            "%s" % (shown,),  # noqa: UP031
            pprint.pformat(shown),
        )
    ]
    for text in printable:
        assert not any(secret in text for secret in SECRETS), text
    if "sasl_plain_password" in config:
        assert "'sasl_plain_password': '***'" in repr(config)
        assert "'sasl.password': '***'" in repr(properties)


def test_kafka_python_accepts_the_msk_iam_mechanism():
    """kafka-python 3 has AWS_MSK_IAM built in (signed with botocore's credential chain)."""
    config = dict(load_settings(PROFILES["aws-msk-iam"][0]).kafka_client_config())
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "AWS_MSK_IAM")
    mechanism = get_sasl_mechanism(config["sasl_mechanism"])
    handshake = mechanism(security_protocol=config["security_protocol"], host="b-1.msk.internal")
    assert not handshake.is_done() and not handshake.is_authenticated()


def test_kafka_debug_logs_show_no_password(caplog):
    """kafka-python's admin client logs its keywords, password included, at DEBUG."""
    settings = load_settings(
        {
            "PULSEMART_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "PULSEMART_KAFKA_SASL_USERNAME": "svc",
            "PULSEMART_KAFKA_SASL_PASSWORD": "msk-Pa55word",
        }
    )
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaError):
        KafkaAdminClient(
            **settings.kafka_client_config(), bootstrap_timeout_ms=300, request_timeout_ms=300
        )
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Starting KafkaAdminClient with configuration" in logged  # the line that would leak
    assert "msk-Pa55word" not in logged and "'sasl_plain_password': '***'" in logged


def test_event_hubs_with_sasl_settings_too_is_refused():
    from pulsemart.config import SettingsError

    env = {**PROFILES["azure-event-hubs"][0], "PULSEMART_KAFKA_SASL_PASSWORD": "other"}
    with pytest.raises(
        SettingsError,
        match="PULSEMART_KAFKA_SASL_PASSWORD and PULSEMART_EVENTHUBS_CONNECTION_STRING",
    ):
        load_settings(env)


class Signer:
    """What aws_msk_iam_sasl_signer's `generate_auth_token` was asked, and its answer."""

    def __init__(self, expiry_ms):
        self.regions, self.expiry_ms = [], expiry_ms

    def generate_auth_token(self, region):
        self.regions.append(region)
        return "signed-token", self.expiry_ms  # the signer's expiry is in milliseconds


@pytest.fixture
def signer(monkeypatch):
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider

    fake = Signer(expiry_ms=int((time.time() + 900) * 1000))
    monkeypatch.setattr(MSKAuthTokenProvider, "generate_auth_token", fake.generate_auth_token)
    for name in ("AWS_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")  # no region from a profile
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return fake


def test_msk_iam_token_comes_from_the_signer_with_botocore_region(signer):
    oauth_cb = librdkafka_config(load_settings(PROFILES["aws-msk-iam"][0]))["oauth_cb"]
    assert oauth_cb("ignored sasl.oauthbearer.config") == ("signed-token", signer.expiry_ms / 1000)
    assert signer.regions == ["eu-west-1"]


def test_librdkafka_asks_the_callback_for_its_msk_iam_token(signer):
    config = librdkafka_config(load_settings(PROFILES["aws-msk-iam"][0]))
    consumer = Consumer({**config, "group.id": "unit", "log_level": 0})  # asks for a token at once
    consumer.close()
    assert signer.regions == ["eu-west-1"]


def test_msk_iam_without_a_region_says_which_setting_is_missing(signer, monkeypatch, caplog):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with (
        caplog.at_level(logging.ERROR),
        pytest.raises(kafka.KafkaSecurityError, match="AWS_DEFAULT_REGION"),
    ):
        kafka.msk_iam_token()
    assert "no MSK IAM token" in caplog.text and signer.regions == []


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "aws-msk-iam"])
def test_librdkafka_accepts_each_profile_s_properties(profile):
    """librdkafka checks property names and values when a client is created (no broker
    needed)."""
    Consumer(
        {
            **librdkafka_config(load_settings(PROFILES[profile][0])),
            "group.id": "unit",
            "log_level": 0,
        }
    ).close()
