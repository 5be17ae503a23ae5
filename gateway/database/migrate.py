"""Schema migrations of the gateway database: one Alembic environment for every room's tables.

Revisions live in ``gateway/database/migrations/versions`` (shipped inside the package):
``0001_initial`` is the registry's schema, ``0002_gateway_state`` adds the repository index, the
imaging source's tables (adopting those an earlier version made with ``create_all``) and the
process leases, ``0003_dicomweb`` DICOMweb's QIDO-RS table, ``0004_ui`` the exchange browser's
recent transactions and login attempts, ``0005_notify`` the notify room's outbox, subscriptions
and XDR inbox, ``0006_registry_operations`` Folder versions (Metadata Update), ``0007_consent``
the IOCM rejection tables. :func:`upgrade`
brings any database to the newest revision and does nothing when it is there already;
``xdsi-gateway db upgrade`` and ``serve`` run it. Concurrent upgrades from several processes
are serialised (PostgreSQL advisory
lock, SQLite write lock), see ``migrations/env.py``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, inspect, text

from gateway.database.engine import create_database_engine, write_transaction

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
HEAD = "0007_consent"
# Alembic's command API installs module-level proxies (alembic.context, alembic.op) for the run,
# so two upgrades in one process must not overlap; processes are serialised by env.py.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` for the gateway's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_engine(engine: Engine, url: str) -> None:
    """Bring the database of ``engine`` to the newest revision (idempotent), in one write
    transaction on the caller's engine (so its SQLite settings apply)."""
    from alembic import command

    with _ALEMBIC_LOCK, write_transaction(engine) as conn:
        config = alembic_config(url)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def upgrade(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema revision (idempotent)."""
    engine = create_database_engine(url)
    try:
        upgrade_engine(engine, url)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version`` (None when the table is absent or empty)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def target_metadata() -> list[MetaData]:
    """The tables of every room, as the newest revision creates them (for schema comparison)."""
    from gateway.database.leases import metadata as leases
    from gateway.dicomweb.schema import metadata as dicomweb
    from gateway.imaging.rejection_schema import metadata as rejection
    from gateway.imaging.schema import metadata as imaging
    from gateway.notify.schema import metadata as notify
    from gateway.registry.schema import metadata as registry
    from gateway.repository.schema import metadata as repository
    from gateway.ui.journal import metadata as ui

    return [registry, repository, imaging, leases, dicomweb, ui, notify, rejection]
