"""Keeping secrets out of reprs, logs, error messages and Dagster metadata.

Secrets (a SASL password, an Event Hubs or storage connection string, an account key) must
reach the clients that need them and nothing else. Three tools:

- `redact_text` masks every secret registered with `register_secret`, and the secret parts of
  connection strings and URLs, in any text (error messages before they are logged or stored);
- `RedactedConfig`, a dict whose printable forms (repr, str, pprint, f-strings) mask its
  secret keys, for the kafka-python keyword dicts built from the settings;
- `SecretLogFilter`, attached to the loggers of libraries known to log their configuration
  (kafka-python's admin client logs its keywords, password included, at DEBUG).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"

# kafka-python keywords (and our own) whose values are secrets.
SECRET_KEYS = frozenset(
    {
        "sasl_plain_password",
        "sasl_oauth_token_provider",
        "ssl_password",
        "password",
        "connection_string",
        "account_key",
        "access_key",
    }
)

# Loggers that print client configuration. A logger's filters see only the records logged on
# that logger (not its children's), so each one is named.
LOGGERS_WITH_CONFIG = (
    "kafka.admin.client",
    "kafka.consumer.group",
    "kafka.producer.kafka",
    "kafka.client_async",
    "kafka.net.connection",
    "azure.core.pipeline.policies.http_logging_policy",
    "botocore.endpoint",
)

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_FILTER_INSTALLED = False

# Connection-string fields and URL passwords: masked even when the secret was never registered.
_PATTERNS = [
    (
        re.compile(
            r"(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|sig|Password|pwd)=([^;&\s'\"]+)"
        ),
        lambda m: f"{m.group(1)}={MASK}",
    ),
    (
        re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s'\"]*):([^@/\s'\"]+)@"),
        lambda m: f"{m.group(1)}:{MASK}@",
    ),
]


def register_secret(value: str | None) -> None:
    """Remember `value` so that `redact_text` and the log filter mask it wherever it appears."""
    if value and len(value) >= 4:  # masking "a" everywhere would garble every message
        with _LOCK:
            _SECRETS.add(value)
    install_log_filter()


def redact_text(text: object, secrets: Iterable[str] = ()) -> str:
    """`text` with registered secrets, `secrets`, connection-string keys and URL passwords
    masked."""
    out = str(text)
    with _LOCK:
        known = sorted({*_SECRETS, *(s for s in secrets if s)}, key=len, reverse=True)
    for secret in known:
        out = out.replace(secret, MASK)
    for pattern, replace in _PATTERNS:
        out = pattern.sub(replace, out)
    return out


def redact_url(url: str | None) -> str | None:
    """A URL with its password masked (`postgresql://user:***@host/db`)."""
    return None if url is None else _PATTERNS[1][0].sub(_PATTERNS[1][1], url)


class RedactedConfig(dict):
    """A dict of client keywords whose printable forms mask secret values.

    `KafkaConsumer(**config)` still receives the real values: unpacking copies the items, not
    the repr.
    """

    def _masked(self) -> dict:
        return {
            key: (MASK if key in SECRET_KEYS and value is not None else value)
            for key, value in self.items()
        }

    def __repr__(self) -> str:
        return repr(self._masked())

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)


class SecretLogFilter(logging.Filter):
    """Rewrites a record's message with `redact_text` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is logging's problem, not ours
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_filter() -> None:
    """Attach one `SecretLogFilter` to each logger in LOGGERS_WITH_CONFIG (idempotent)."""
    global _FILTER_INSTALLED
    with _LOCK:
        if _FILTER_INSTALLED:
            return
        _FILTER_INSTALLED = True
    log_filter = SecretLogFilter()
    for name in LOGGERS_WITH_CONFIG:
        logging.getLogger(name).addFilter(log_filter)
