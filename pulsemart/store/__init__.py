"""The store layer: PostgreSQL schemas, migrations and the writers of each layer."""
