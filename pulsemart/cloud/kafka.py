"""Kafka security per profile: the settings resolved once into a `KafkaSecurity`, and rendered
for each client — kafka-python's keywords (the sensor lane, producers, admin) and librdkafka's
configuration properties (the real-time worker, confluent-kafka).

| where | PULSEMART_KAFKA_… settings | kafka-python | librdkafka |
| --- | --- | --- | --- |
| embedded broker, plain Kafka | nothing | `security_protocol=PLAINTEXT` | `security.protocol=PLAINTEXT` |
| Amazon MSK, SASL/SCRAM (port 9096) | `SASL_MECHANISM=SCRAM-SHA-512`, `SASL_USERNAME`, `SASL_PASSWORD` | `SASL_SSL`, `sasl_mechanism`, `sasl_plain_username`, `sasl_plain_password` | `SASL_SSL`, `sasl.mechanism`, `sasl.username`, `sasl.password` |
| Amazon MSK, IAM (port 9098) | `SASL_MECHANISM=AWS_MSK_IAM` | `SASL_SSL`, `sasl_mechanism=AWS_MSK_IAM` (kafka-python 3 signs itself) | `SASL_SSL`, `sasl.mechanism=OAUTHBEARER`, `oauth_cb` (`msk_iam_token`) |
| Azure Event Hubs' Kafka endpoint (port 9093) | `PULSEMART_EVENTHUBS_CONNECTION_STRING` | `SASL_SSL`, `PLAIN`, username `$ConnectionString`, the connection string as password | the same in librdkafka's names |

Both ways of signing for MSK IAM use botocore's credential chain (the ECS task role,
AWS_PROFILE, …) and its region (`AWS_DEFAULT_REGION` or the profile's), so the two lanes
authenticate as the same principal.

A SASL mechanism without a security protocol means `SASL_SSL`: managed Kafka always speaks TLS.
Clients take the password as a plain value; the dicts returned are `RedactedConfig`s, whose
printable forms mask it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from pulsemart.cloud.redact import MASK, RedactedConfig, redact_text, register_secret

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MSK_IAM = "AWS_MSK_IAM"
MECHANISMS = (*PASSWORD_MECHANISMS, MSK_IAM)
EVENTHUBS_USERNAME = "$ConnectionString"  # literally: Event Hubs' Kafka endpoint expects it
EVENTHUBS_PORT = 9093
LIBRDKAFKA_SECRET_KEYS = frozenset({"sasl.password", "ssl.key.password"})

log = logging.getLogger(__name__)

_EVENTHUBS_ENDPOINT = re.compile(r"(?i)(?:^|;)\s*Endpoint\s*=\s*sb://([^/;]+)")


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together; the message names the setting."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How a client authenticates to the cluster, after defaults and checks."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None  # used with a SASL protocol only
    username: str | None = None
    password: SecretStr | None = None  # masked in repr
    cafile: str | None = None  # None: the system's trusted certificates

    @property
    def sasl(self) -> bool:
        return self.mechanism is not None and self.protocol.startswith("SASL_")

    def plain_password(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None


def eventhubs_bootstrap(connection_string: str) -> str:
    """`<namespace>.servicebus.windows.net:9093` from an Event Hubs connection string."""
    match = _EVENTHUBS_ENDPOINT.search(connection_string)
    if not match:
        raise KafkaSecurityError(
            "PULSEMART_EVENTHUBS_CONNECTION_STRING has no "
            "'Endpoint=sb://<namespace>.servicebus.windows.net/' part"
        )
    return f"{match.group(1)}:{EVENTHUBS_PORT}"


def resolve_security(
    protocol: str | None,
    mechanism: str | None,
    username: str | None,
    password: str | None,
    eventhubs_connection_string: str | None = None,
    cafile: str | None = None,
) -> KafkaSecurity:
    """The security the settings describe, defaults applied; the password is registered as a
    secret. Raises KafkaSecurityError naming the setting that is missing or does not fit."""
    if eventhubs_connection_string:
        for name, value in (
            ("PULSEMART_KAFKA_SASL_MECHANISM", mechanism),
            ("PULSEMART_KAFKA_SASL_USERNAME", username),
            ("PULSEMART_KAFKA_SASL_PASSWORD", password),
        ):
            if value:
                raise KafkaSecurityError(
                    f"{name} and PULSEMART_EVENTHUBS_CONNECTION_STRING "
                    "both set: the connection string implies SASL PLAIN; "
                    "unset one"
                )
        if protocol not in (None, "SASL_SSL"):
            raise KafkaSecurityError(
                f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol}: Event Hubs needs SASL_SSL"
            )
        register_secret(eventhubs_connection_string)
        return KafkaSecurity(
            "SASL_SSL", "PLAIN", EVENTHUBS_USERNAME, SecretStr(eventhubs_connection_string), cafile
        )
    if mechanism:
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(
                f"PULSEMART_KAFKA_SASL_MECHANISM={mechanism!r}: choose one "
                f"of {', '.join(MECHANISMS)}"
            )
    protocol = (protocol or ("SASL_SSL" if mechanism else "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(
            f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol!r}: choose one of {', '.join(PROTOCOLS)}"
        )
    if protocol.startswith("SASL_") and not mechanism:
        raise KafkaSecurityError(
            f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol} needs PULSEMART_KAFKA_SASL_MECHANISM"
        )
    if mechanism in PASSWORD_MECHANISMS and protocol.startswith("SASL_"):
        missing = [
            name
            for name, value in (
                ("PULSEMART_KAFKA_SASL_USERNAME", username),
                ("PULSEMART_KAFKA_SASL_PASSWORD", password),
            )
            if not value
        ]
        if missing:
            raise KafkaSecurityError(
                f"PULSEMART_KAFKA_SASL_MECHANISM={mechanism} needs {' and '.join(missing)}"
            )
    if mechanism == MSK_IAM and protocol != "SASL_SSL":
        raise KafkaSecurityError(
            f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol}: {MSK_IAM} needs SASL_SSL"
        )
    register_secret(password)
    return KafkaSecurity(
        protocol, mechanism, username, SecretStr(password) if password else None, cafile
    )


def kafka_python_config(bootstrap: str, security: KafkaSecurity) -> RedactedConfig:
    """Connection keywords shared by kafka-python producers, consumers and admin clients."""
    config = RedactedConfig(
        bootstrap_servers=[server.strip() for server in bootstrap.split(",") if server.strip()],
        security_protocol=security.protocol,
    )
    if security.sasl:
        config["sasl_mechanism"] = security.mechanism
        if security.mechanism in PASSWORD_MECHANISMS:
            config["sasl_plain_username"] = security.username
            config["sasl_plain_password"] = security.plain_password()
    if security.cafile:
        config["ssl_cafile"] = security.cafile
    return config


class LibrdkafkaConfig(RedactedConfig):
    """librdkafka's properties, printed with its secret properties masked."""

    def _masked(self) -> dict:
        return {
            key: (MASK if key in LIBRDKAFKA_SECRET_KEYS and value is not None else value)
            for key, value in self.items()
        }


def librdkafka_config(bootstrap: str, security: KafkaSecurity) -> LibrdkafkaConfig:
    """Connection properties for confluent-kafka clients, from the same security."""
    config = LibrdkafkaConfig(
        {"bootstrap.servers": bootstrap, "security.protocol": security.protocol}
    )
    if security.sasl and security.mechanism == MSK_IAM:
        # librdkafka has no AWS_MSK_IAM: MSK takes the same signed token over OAUTHBEARER.
        config.update({"sasl.mechanism": "OAUTHBEARER", "oauth_cb": msk_iam_token})
    elif security.sasl:
        config.update(
            {
                "sasl.mechanism": security.mechanism,
                "sasl.username": security.username,
                "sasl.password": security.plain_password(),
            }
        )
    if security.cafile:
        config["ssl.ca.location"] = security.cafile
    return config


def msk_iam_token(_oauth_config: Any = None) -> tuple[str, float]:
    """librdkafka's OAUTHBEARER callback for MSK IAM: (token, expiry in epoch seconds).

    The signer (aws-msk-iam-sasl-signer-python) and botocore load here, on the first
    handshake, so that no other profile pays for importing them. A failure is logged here:
    confluent-kafka reports only that no token came.
    """
    from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
    from botocore.session import Session

    try:
        region = Session().get_config_variable("region")
        if not region:
            raise KafkaSecurityError(
                f"PULSEMART_KAFKA_SASL_MECHANISM={MSK_IAM} needs an AWS "
                "region: set AWS_DEFAULT_REGION (or one in the AWS profile)"
            )
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
    except Exception as exc:
        log.error("no MSK IAM token: %s", redact_text(exc))
        raise
    return token, expiry_ms / 1000  # the signer counts milliseconds, librdkafka seconds
