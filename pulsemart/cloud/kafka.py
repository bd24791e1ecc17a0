"""Kafka security per profile: the kafka-python keywords for each way of authenticating.

| where | PULSEMART_KAFKA_… settings | kafka-python keywords |
| --- | --- | --- |
| embedded broker, plain Kafka | nothing | `security_protocol=PLAINTEXT` |
| Amazon MSK, SASL/SCRAM (port 9096) | `SASL_MECHANISM=SCRAM-SHA-512`, `SASL_USERNAME`, `SASL_PASSWORD` | `SASL_SSL`, `sasl_mechanism`, `sasl_plain_username`, `sasl_plain_password` |
| Amazon MSK, IAM (port 9098) | `SASL_MECHANISM=AWS_MSK_IAM` | `SASL_SSL`, `sasl_mechanism=AWS_MSK_IAM` (kafka-python 3 signs with botocore's credential chain and region: the ECS task role, `AWS_DEFAULT_REGION`) |
| Azure Event Hubs' Kafka endpoint (port 9093) | `PULSEMART_EVENTHUBS_CONNECTION_STRING` | `SASL_SSL`, `PLAIN`, username `$ConnectionString`, the connection string as password |

A SASL mechanism without a security protocol means `SASL_SSL`: managed Kafka always speaks TLS.
kafka-python takes the password as a keyword; the dict returned is a `RedactedConfig`, whose
printable forms mask it.
"""

from __future__ import annotations

import re

from pulsemart.cloud.redact import RedactedConfig, register_secret

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MSK_IAM = "AWS_MSK_IAM"
MECHANISMS = (*PASSWORD_MECHANISMS, MSK_IAM)
EVENTHUBS_USERNAME = "$ConnectionString"  # literally: Event Hubs' Kafka endpoint expects it
EVENTHUBS_PORT = 9093

_EVENTHUBS_ENDPOINT = re.compile(r"(?i)(?:^|;)\s*Endpoint\s*=\s*sb://([^/;]+)")


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together; the message names the setting."""


def eventhubs_bootstrap(connection_string: str) -> str:
    """`<namespace>.servicebus.windows.net:9093` from an Event Hubs connection string."""
    match = _EVENTHUBS_ENDPOINT.search(connection_string)
    if not match:
        raise KafkaSecurityError("PULSEMART_EVENTHUBS_CONNECTION_STRING has no "
                                 "'Endpoint=sb://<namespace>.servicebus.windows.net/' part")
    return f"{match.group(1)}:{EVENTHUBS_PORT}"


def resolve_security(protocol: str | None, mechanism: str | None, username: str | None,
                     password: str | None, eventhubs_connection_string: str | None = None,
                     ) -> tuple[str, str | None, str | None, str | None]:
    """(protocol, mechanism, username, password) after defaults and checks.

    Raises KafkaSecurityError naming the setting that is missing or does not fit.
    """
    if eventhubs_connection_string:
        for name, value in (("PULSEMART_KAFKA_SASL_MECHANISM", mechanism),
                            ("PULSEMART_KAFKA_SASL_USERNAME", username),
                            ("PULSEMART_KAFKA_SASL_PASSWORD", password)):
            if value:
                raise KafkaSecurityError(f"{name} and PULSEMART_EVENTHUBS_CONNECTION_STRING "
                                         "both set: the connection string implies SASL PLAIN; "
                                         "unset one")
        if protocol not in (None, "SASL_SSL"):
            raise KafkaSecurityError(f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol}: Event Hubs "
                                     "needs SASL_SSL")
        register_secret(eventhubs_connection_string)
        return "SASL_SSL", "PLAIN", EVENTHUBS_USERNAME, eventhubs_connection_string
    if mechanism:
        mechanism = mechanism.upper()
        if mechanism not in MECHANISMS:
            raise KafkaSecurityError(f"PULSEMART_KAFKA_SASL_MECHANISM={mechanism!r}: choose one "
                                     f"of {', '.join(MECHANISMS)}")
    protocol = (protocol or ("SASL_SSL" if mechanism else "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol!r}: choose one "
                                 f"of {', '.join(PROTOCOLS)}")
    if protocol.startswith("SASL_") and not mechanism:
        raise KafkaSecurityError(f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                 "PULSEMART_KAFKA_SASL_MECHANISM")
    if mechanism in PASSWORD_MECHANISMS and protocol.startswith("SASL_"):
        missing = [name for name, value in (("PULSEMART_KAFKA_SASL_USERNAME", username),
                                            ("PULSEMART_KAFKA_SASL_PASSWORD", password))
                   if not value]
        if missing:
            raise KafkaSecurityError(f"PULSEMART_KAFKA_SASL_MECHANISM={mechanism} needs "
                                     f"{' and '.join(missing)}")
    if mechanism == MSK_IAM and protocol != "SASL_SSL":
        raise KafkaSecurityError(f"PULSEMART_KAFKA_SECURITY_PROTOCOL={protocol}: "
                                 f"{MSK_IAM} needs SASL_SSL")
    register_secret(password)
    return protocol, mechanism, username, password


def kafka_client_config(bootstrap: str, protocol: str, mechanism: str | None,
                        username: str | None, password: str | None,
                        ssl_cafile: str | None) -> RedactedConfig:
    """Connection keywords shared by kafka-python producers, consumers and admin clients."""
    config = RedactedConfig(
        bootstrap_servers=[server.strip() for server in bootstrap.split(",") if server.strip()],
        security_protocol=protocol,
    )
    if mechanism and protocol.startswith("SASL_"):
        config["sasl_mechanism"] = mechanism
        if mechanism in PASSWORD_MECHANISMS:
            config["sasl_plain_username"] = username
            config["sasl_plain_password"] = password
    if ssl_cafile:
        config["ssl_cafile"] = ssl_cafile
    return config
