"""Alembic environment of the gateway database (registry, repository, imaging, leases, DICOMweb).

Run through ``gateway.database.migrate.upgrade`` (which passes its own connection, so the SQLite
settings of ``engine.py`` apply and the migration runs in a write transaction), or by the
``alembic`` command with ``sqlalchemy.url`` set. Several gateway processes may start at once
against one PostgreSQL database: an advisory lock held for the migration transaction makes the
others wait and then find the schema at head (SQLite serialises through BEGIN IMMEDIATE).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from gateway.database.migrate import target_metadata

# Any constant shared by every process; "XDSIREG" in ASCII (the key of the registry-only
# environment this one continues, so old and new versions exclude each other too).
_ADVISORY_LOCK_KEY = 0x58_44_53_49_52_45_47


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER needs batch mode
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _ADVISORY_LOCK_KEY})
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from gateway.database.engine import create_database_engine, write_transaction

    engine = create_database_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with write_transaction(engine) as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
_main()
