"""Alembic migrations of the registry schema (see ``gateway.registry.database``)."""
