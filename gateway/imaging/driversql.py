"""SQLAlchemy statements compiled once into the driver's own SQL, for the C-STORE path.

Indexing an instance runs three or four statements; through SQLAlchemy each one costs some
40 microseconds of bookkeeping (cache keys, parameter processing, result wrapping), which is a
fifth of the time an instance may take at dcmtk's pace. The statements are still written with
SQLAlchemy (one definition for SQLite and PostgreSQL); this compiles each once for the engine's
dialect and runs it on the pooled DBAPI connection. The columns concerned need no bind or result
processing (strings, integers, floats), so the driver's values are the values. Driver errors
are translated into SQLAlchemy's here, where they enter (``DBAPIError.instance``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement


class DriverStatement:
    """One statement in the driver's paramstyle, with its parameter order."""

    def __init__(self, statement: ClauseElement, engine: Engine) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self.sql = compiled.string
        self.positional = engine.dialect.positional
        self.order: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())
        self.constants = dict(compiled.params)  # literal values of the statement (state ...)

    def params(self, values: Mapping[str, Any]) -> Any:
        """The driver's parameters for ``values`` and the statement's constants (a tuple, or a
        mapping for named paramstyles)."""
        merged = {**self.constants, **values}
        if self.positional:
            return tuple(merged[name] for name in self.order)
        return merged


@contextmanager
def cursor(engine: Engine) -> Iterator[tuple[Any, Any]]:
    """(DBAPI connection, cursor) from the pool; rolled back on error, returned to the pool.

    Raises: sqlalchemy.exc.DBAPIError subclasses for the driver's errors.
    """
    dbapi = engine.dialect.loaded_dbapi
    connection = engine.raw_connection()
    try:
        handle = connection.cursor()
        try:
            yield connection, handle
        finally:
            handle.close()
    except dbapi.Error as exc:
        _rollback(connection)
        raise DBAPIError.instance(None, None, exc, dbapi.Error) from exc
    except BaseException:
        _rollback(connection)
        raise
    finally:
        connection.close()


def run_many(handle: Any, statement: DriverStatement, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run ``statement`` once per row (``executemany``)."""
    if rows:
        handle.executemany(statement.sql, [statement.params(row) for row in rows])


def _rollback(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception:  # the connection is broken anyway; the pool discards it on close
        pass
