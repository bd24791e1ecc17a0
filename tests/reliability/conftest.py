"""The reliability matrix shares the integration suite's embedded stack and fixtures."""

from tests.integration.conftest import db, fresh_stream, settings  # noqa: F401 - fixtures
