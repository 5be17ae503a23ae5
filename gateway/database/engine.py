"""The gateway database: an engine for a SQLAlchemy URL, read and write transactions.

SQLite (the embedded default, one process) is set up for several threads: WAL journal (readers
never wait for the writer), ``busy_timeout`` (a writer waits for the lock instead of failing),
``foreign_keys`` on, ``check_same_thread`` off (connections move between threads through the
pool). SQLAlchemy, not the ``sqlite3`` module, emits BEGIN (``sqlite3`` would start transactions
late, after the first SELECT); write transactions use ``BEGIN IMMEDIATE`` so that a transaction
takes the write lock before its first read and can never fail half-way with "database is locked"
when it upgrades a read lock (SQLite §"BEGIN TRANSACTION", WAL §2.2).

PostgreSQL (production, several gateway processes and machines) uses psycopg2 with the default
READ COMMITTED isolation; uniqueness and "exactly one wins" rely on constraints and conditional
updates, never on in-process locks (ARCHITECTURE.md "Scale-out"). Each process has its own pool.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10
_WRITE_OPTION = "xdsi_write"


@contextmanager
def write_transaction(
    engine: Engine, *, snapshot: bool = False, durable: bool = False
) -> Iterator[Connection]:
    """A write transaction on ``engine`` (``BEGIN IMMEDIATE`` on SQLite; see the module text).

    ``durable``: on SQLite, commit with ``synchronous=FULL`` (the commit survives a power cut,
    not only a crash of the process); PostgreSQL commits are durable anyway.
    """
    with engine.connect() as conn:
        options: dict[str, Any] = {_WRITE_OPTION: True}
        if snapshot and engine.dialect.name == "postgresql":
            options["isolation_level"] = "REPEATABLE READ"
        conn.execution_options(**options)
        raw = conn.connection.dbapi_connection if engine.dialect.name == "sqlite" else None
        if durable and raw is not None:
            raw.execute("PRAGMA synchronous=FULL")  # outside any transaction: autocommit mode
        try:
            with conn.begin():
                yield conn
        finally:
            if durable and raw is not None:
                raw.execute("PRAGMA synchronous=NORMAL")


def create_database_engine(
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
    connect_args: dict[str, Any] = {}
    if parsed.drivername == "postgresql+psycopg2" and "connect_timeout" not in parsed.query:
        # An unreachable server fails a request (and /health) in seconds, not after TCP gives up.
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    return create_engine(parsed, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, memory or a ``file:`` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().resolve()


def redact(url: str) -> str:
    """A database URL without its password, for printing."""
    return make_url(url).render_as_string(hide_password=True)


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
