"""The stack's fixtures (`settings`, `fresh_stream`, `db`) live in tests/conftest.py so that every
suite shares one stack; the helpers live in tests/integration/helpers.py. Tests written against
this module's names still find them here."""

from tests.integration.helpers import free_port, read_topic

__all__ = ["free_port", "read_topic"]
