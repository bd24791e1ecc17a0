"""Kafka security per profile: the kafka-python keywords each one yields, and the secret kept
out of every printable form and log line."""

import logging
import pprint

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from kafka.net.sasl import get_sasl_mechanism

from pulsemart.config import load_settings

SERVICES = {"PULSEMART_DATABASE_URL": "postgresql://pulsemart@db.internal/pulsemart"}
EVENTHUBS = ("Endpoint=sb://shop-ns.servicebus.windows.net/;SharedAccessKeyName=pulsemart;"
             "SharedAccessKey=eh-Key-0123456789abcdef=;EntityPath=shop.events")
PROFILES = {
    "local": ({}, {"bootstrap_servers": ["127.0.0.1:19092"], "security_protocol": "PLAINTEXT"}),
    "aws-msk-scram": (
        {**SERVICES, "PULSEMART_PROFILE": "aws", "PULSEMART_S3_BUCKET": "lake",
         "PULSEMART_KAFKA_BOOTSTRAP": "b-1.msk.internal:9096,b-2.msk.internal:9096",
         "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "PULSEMART_KAFKA_SASL_USERNAME": "pulsemart",
         "PULSEMART_KAFKA_SASL_PASSWORD": "msk-Pa55word"},
        {"bootstrap_servers": ["b-1.msk.internal:9096", "b-2.msk.internal:9096"],
         "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
         "sasl_plain_username": "pulsemart", "sasl_plain_password": "msk-Pa55word"}),
    "aws-msk-iam": (
        {**SERVICES, "PULSEMART_PROFILE": "aws", "PULSEMART_S3_BUCKET": "lake",
         "PULSEMART_KAFKA_BOOTSTRAP": "b-1.msk.internal:9098",
         "PULSEMART_KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"},
        {"bootstrap_servers": ["b-1.msk.internal:9098"], "security_protocol": "SASL_SSL",
         "sasl_mechanism": "AWS_MSK_IAM"}),
    "azure-event-hubs": (
        {**SERVICES, "PULSEMART_PROFILE": "azure", "PULSEMART_ADLS_CONTAINER": "lake",
         "PULSEMART_ADLS_ACCOUNT": "shoplake", "AZURE_CLIENT_ID": "workload-identity",
         "PULSEMART_EVENTHUBS_CONNECTION_STRING": EVENTHUBS},
        {"bootstrap_servers": ["shop-ns.servicebus.windows.net:9093"],
         "security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN",
         "sasl_plain_username": "$ConnectionString", "sasl_plain_password": EVENTHUBS}),
}
SECRETS = ("msk-Pa55word", EVENTHUBS, "eh-Key-0123456789abcdef=")


@pytest.mark.parametrize("profile", PROFILES)
def test_each_profile_yields_the_expected_kafka_python_config(profile):
    env, expected = PROFILES[profile]
    assert dict(load_settings(env).kafka_client_config()) == expected


@pytest.mark.parametrize("profile", PROFILES)
def test_no_printable_form_shows_the_secret(profile):
    env, _ = PROFILES[profile]
    settings = load_settings(env)
    config = settings.kafka_client_config()
    printable = (repr(config), str(config), f"{config}", "%s" % config,  # noqa: UP031
                 pprint.pformat(config), repr(settings), str(settings))
    for text in printable:
        assert not any(secret in text for secret in SECRETS), text
    if "sasl_plain_password" in config:
        assert "'sasl_plain_password': '***'" in repr(config)


def test_kafka_python_accepts_the_msk_iam_mechanism():
    """kafka-python 3 has AWS_MSK_IAM built in (signed with botocore's credential chain)."""
    config = dict(load_settings(PROFILES["aws-msk-iam"][0]).kafka_client_config())
    assert (config["security_protocol"], config["sasl_mechanism"]) == ("SASL_SSL", "AWS_MSK_IAM")
    mechanism = get_sasl_mechanism(config["sasl_mechanism"])
    handshake = mechanism(security_protocol=config["security_protocol"], host="b-1.msk.internal")
    assert not handshake.is_done() and not handshake.is_authenticated()


def test_kafka_debug_logs_show_no_password(caplog):
    """kafka-python's admin client logs its keywords, password included, at DEBUG."""
    settings = load_settings({"PULSEMART_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                              "PULSEMART_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                              "PULSEMART_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                              "PULSEMART_KAFKA_SASL_USERNAME": "svc",
                              "PULSEMART_KAFKA_SASL_PASSWORD": "msk-Pa55word"})
    with caplog.at_level(logging.DEBUG), pytest.raises(KafkaError):
        KafkaAdminClient(**settings.kafka_client_config(), bootstrap_timeout_ms=300,
                         request_timeout_ms=300)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Starting KafkaAdminClient with configuration" in logged  # the line that would leak
    assert "msk-Pa55word" not in logged and "'sasl_plain_password': '***'" in logged


def test_event_hubs_with_sasl_settings_too_is_refused():
    from pulsemart.config import SettingsError

    env = {**PROFILES["azure-event-hubs"][0], "PULSEMART_KAFKA_SASL_PASSWORD": "other"}
    with pytest.raises(SettingsError, match="PULSEMART_KAFKA_SASL_PASSWORD and "
                                            "PULSEMART_EVENTHUBS_CONNECTION_STRING"):
        load_settings(env)
