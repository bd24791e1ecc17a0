"""The key behind the marts' keyed hashes of customer identifiers.

Migration 005 makes a random key inside the database. An operator who needs hashes that stay
the same across databases (a restore, a second region) sets PULSEMART_PII_KEY (read by
pulsemart.config, a secret); it is written to governance.pii_key, never logged.
"""

from __future__ import annotations

import psycopg
from pydantic import SecretStr

PII_KEY_VARIABLE = "PULSEMART_PII_KEY"


def apply_pii_key(conn: psycopg.Connection, key: SecretStr | None = None) -> bool:
    """Install `key` (settings.pii_key) as the hashing key if one is given; return whether it was."""
    if key is None:
        return False
    with conn.transaction():
        conn.execute(
            "select governance.set_pii_key(%s, %s)",
            (key.get_secret_value().encode(), PII_KEY_VARIABLE),
        )
    return True
