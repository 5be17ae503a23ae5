"""The gateway database, shared by every actor of a process and by every process of a site.

- ``engine``: engine creation for a SQLAlchemy URL (SQLite pragmas, PostgreSQL pool) and
  transactions;
- ``migrate``: the one Alembic environment (``migrations/``) for every room's tables;
- ``leases``: one row per running process, kept alive by a heartbeat; another process's pending
  work may only be taken over once its lease has expired;
- ``exclusive``: the embedded SQLite database serves one process: a second one is refused.

Each room keeps its own table definitions (``registry/schema.py``, ``repository/schema.py``,
``imaging/schema.py``); only the migrations name them all.

:class:`Database` is what a process holds: the engine, transactions, and its schema revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from gateway.database.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    create_database_engine,
    write_transaction,
)
from gateway.database.migrate import current_revision, upgrade_engine

__all__ = ["Database"]


class Database:
    """One database: an engine plus read and write transactions and its schema revision."""

    def __init__(
        self, url: str, *, echo: bool = False, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS
    ) -> None:
        self.url = url
        self.engine: Engine = create_database_engine(
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
        with write_transaction(self.engine, snapshot=snapshot) as conn:
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
        """Create every registry table that does not exist (tests; production upgrades)."""
        from gateway.registry.schema import metadata

        with self.write() as conn:
            metadata.create_all(conn)

    def upgrade(self) -> None:
        """Bring the schema to the newest Alembic revision (idempotent)."""
        upgrade_engine(self.engine, self.url)

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        return current_revision(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
