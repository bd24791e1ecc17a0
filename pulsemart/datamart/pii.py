"""The key behind the marts' keyed hashes of customer identifiers.

Migration 005 makes a random key inside the database. An operator who needs hashes that stay
the same across databases (a restore, a second region) sets PULSEMART_PII_KEY; it is read from
the environment only and written to governance.pii_key, never logged.
"""

from __future__ import annotations

import os

import psycopg

PII_KEY_VARIABLE = "PULSEMART_PII_KEY"


def apply_pii_key(conn: psycopg.Connection, env: dict | None = None) -> bool:
    """Install PULSEMART_PII_KEY as the hashing key if it is set; return whether it was."""
    key = (os.environ if env is None else env).get(PII_KEY_VARIABLE)
    if not key:
        return False
    with conn.transaction():
        conn.execute("select governance.set_pii_key(%s, %s)", (key.encode(), PII_KEY_VARIABLE))
    return True
