"""The stack's fixtures (`settings`, `fresh_stream`, `db`) live in tests/conftest.py so that every
suite shares one stack; the helpers live in tests/integration/helpers.py. Tests written against
this module's names still find them here. `pii_key` is for the datamart modules."""

import pytest

from tests.integration.helpers import free_port, read_topic

__all__ = ["free_port", "read_topic"]

PII_KEY = "test-only-pii-key"


@pytest.fixture
def pii_key(monkeypatch):
    """The key the datamart hashes customers under, set for the test."""
    monkeypatch.setenv("PULSEMART_PII_KEY", PII_KEY)
    return PII_KEY.encode()
