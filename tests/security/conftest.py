"""Security tests that need a database share the integration suite's embedded stack."""

from tests.integration.conftest import db, fresh_stream, settings  # noqa: F401 - fixtures
