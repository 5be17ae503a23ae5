"""The registry's database: engine from a SQLAlchemy URL, transactions, schema migrations.

SQLite (the embedded default) is set up for several threads of one process: WAL journal (readers
never wait for the writer), ``busy_timeout`` (a writer waits for the lock instead of failing),
``foreign_keys`` on, ``check_same_thread`` off (connections move between the HTTP worker threads
through the pool). SQLAlchemy, not the ``sqlite3`` module, emits BEGIN (``sqlite3`` would start
transactions late, after the first SELECT); write transactions use ``BEGIN IMMEDIATE`` so that a
submission takes the write lock before its first read and can never fail half-way with "database
is locked" when it upgrades a read lock (SQLite §"BEGIN TRANSACTION", WAL §2.2).

PostgreSQL (production, several gateway processes) uses psycopg2 with the default READ COMMITTED
isolation; uniqueness and "exactly one wins" rely on constraints, never on in-process locks
(ARCHITECTURE.md "Scale-out").

Schema changes are Alembic revisions in ``gateway/registry/migrations`` (shipped inside the
package); :func:`db_upgrade` brings any database to the newest revision and does nothing when it
is there already. Concurrent upgrades from several processes are serialised (PostgreSQL advisory
lock, SQLite write lock), see ``migrations/env.py``.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from gateway.registry.schema import metadata

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "xdsi_write"
# Alembic's command API installs module-level proxies (alembic.context, alembic.op) for the run,
# so two upgrades in one process must not overlap; processes are serialised by env.py.
_ALEMBIC_LOCK = threading.Lock()


class Database:
    """One registry database: an engine plus read and write transactions."""

    def __init__(
        self, url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> None:
        self.url = url
        self.engine: Engine = create_registry_engine(
            url, echo=echo, busy_timeout_ms=busy_timeout_ms
        )

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @contextmanager
    def write(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A write transaction: committed when the block ends, rolled back if it raises.

        ``snapshot``: every statement sees the database as of the transaction's first one
        (PostgreSQL REPEATABLE READ; a write that meets a concurrent commit fails with
        SQLSTATE 40001 and the caller retries). SQLite write transactions are serialisable
        anyway (BEGIN IMMEDIATE).
        """
        with self.engine.connect() as conn:
            options: dict[str, Any] = {_WRITE_OPTION: True}
            if snapshot and self.dialect == "postgresql":
                options["isolation_level"] = "REPEATABLE READ"
            conn.execution_options(**options)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot on SQLite WAL), rolled back at the end."""
        with self.engine.connect() as conn, conn.begin() as transaction:
            try:
                yield conn
            finally:
                transaction.rollback()

    def create_all(self) -> None:
        """Create every table of ``schema.py`` that does not exist (tests; production upgrades)."""
        with self.write() as conn:
            metadata.create_all(conn)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        from alembic import command

        with _ALEMBIC_LOCK, self.write() as conn:
            config = alembic_config(self.url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def create_registry_engine(
    url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
) -> Engine:
    """Create the engine for ``url`` with the SQLite or PostgreSQL settings described above.

    ``busy_timeout_ms``: how long a SQLite writer waits for the write lock before giving up.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )
        event.listen(engine, "connect", functools.partial(_sqlite_on_connect, busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 picks psycopg 3 for a bare "postgresql://"; the gateway ships psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def _sqlite_on_connect(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 module; _sqlite_on_begin emits it (SQLAlchemy docs,
    # "Enabling Non-Legacy SQLite Transactional Modes").
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get(_WRITE_OPTION) else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(url: str) -> Any:
    """An Alembic ``Config`` for the registry's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema revision (idempotent)."""
    database = Database(url)
    try:
        database.upgrade()
    finally:
        database.dispose()


def db_upgrade(url: str) -> None:
    """``xdsi-gateway db upgrade``: create or migrate the registry schema at ``url``."""
    log.info("upgrading registry database schema")
    upgrade(url)
