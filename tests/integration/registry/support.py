"""Helpers for registry tests: a hand-moved clock, row counts, loading stored objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.errors import XDSError
from gateway.metadata.model import Submission
from gateway.registry.codec import from_row
from gateway.registry.database import Database
from gateway.registry.iti42 import Registry
from gateway.registry.schema import metadata

_TABLES = {
    "DocumentEntry": "document_entry",
    "SubmissionSet": "submission_set",
    "Folder": "folder",
    "Association": "association",
}


class Clock:
    """A clock tests move by hand (registration times, Folder lastUpdateTime)."""

    def __init__(self) -> None:
        self.now = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def count_rows(db: Database) -> dict[str, int]:
    """Rows per table of the registry schema."""
    with db.read() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in metadata.tables.items()
        }


def load(db: Database, kind: str, object_id: str) -> Any:
    """The stored object of ``kind`` with ``object_id``, columns applied (``codec.from_row``)."""
    table = metadata.tables[_TABLES[kind]]
    with db.read() as conn:
        row = conn.execute(select(table).where(table.c.id == object_id)).one()
    return from_row(kind, row._mapping)


def column(db: Database, table_name: str, object_id: str, name: str) -> Any:
    """One column of one row."""
    table = metadata.tables[table_name]
    with db.read() as conn:
        return conn.execute(select(table.c[name]).where(table.c.id == object_id)).scalar_one()


def rows_where(db: Database, table_name: str, **equal: Any) -> list[dict[str, Any]]:
    """Every row of a table whose columns equal the given values."""
    table = metadata.tables[table_name]
    query = select(table)
    for name, value in equal.items():
        query = query.where(table.c[name] == value)
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def refused(registry: Registry, submission: Submission) -> list[str]:
    """Register ``submission``, expecting a refusal that leaves every table unchanged; return
    the error codes."""
    before = count_rows(registry.db)
    with pytest.raises(XDSError) as info:
        registry.register_document_set(submission)
    assert count_rows(registry.db) == before, "a refused submission left rows behind"
    return [error.code for error in info.value]
