"""Shared test set-up. Integration fixtures live in tests/integration/conftest.py."""
