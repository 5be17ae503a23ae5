"""The registry's database: the gateway database of ``gateway.database`` (engine, transactions,
migrations), under the names the registry's modules use.

The registry's tables (``schema.py``) live in the gateway database unless
``registry.database_url`` names another one; either way :func:`db_upgrade` brings the database to
the newest revision of the one Alembic environment (``gateway/database/migrations``).
"""

from __future__ import annotations

import logging

from gateway.database import Database
from gateway.database.engine import SQLITE_BUSY_TIMEOUT_MS
from gateway.database.engine import create_database_engine as create_registry_engine
from gateway.database.migrate import MIGRATIONS_DIR, alembic_config, upgrade

log = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS_DIR",
    "SQLITE_BUSY_TIMEOUT_MS",
    "Database",
    "alembic_config",
    "create_registry_engine",
    "db_upgrade",
    "upgrade",
]


def db_upgrade(url: str) -> None:
    """Create or migrate the schema at ``url`` to the newest revision (idempotent)."""
    log.info("upgrading database schema")
    upgrade(url)
