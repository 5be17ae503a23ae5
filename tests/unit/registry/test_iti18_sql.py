"""SQL building blocks of the stored queries, compiled without a database (both dialects)."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from gateway.metadata.datatypes import Code
from gateway.registry.queries import sql
from gateway.registry.schema import document_entry, object_author


def compiled(clause: object, dialect: str) -> str:
    target = sqlite.dialect() if dialect == "sqlite" else postgresql.dialect()
    statement = select(document_entry.c.id).where(clause)  # type: ignore[arg-type]
    return str(statement.compile(dialect=target, compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize(
    ("pattern", "glob"),
    [
        ("%Smith%", "*Smith*"),
        ("^Ford^_nna", "^Ford^?nna"),
        ("a*b?c[d]", "a[*]b[?]c[[]d]"),
    ],
)
def test_sqlite_like_is_a_case_sensitive_glob(pattern: str, glob: str) -> None:
    text = compiled(sql.like(object_author.c.person, pattern, "sqlite"), "sqlite")
    assert f"GLOB '{glob}'" in text


def test_postgresql_like_escapes_backslash_only() -> None:
    text = compiled(sql.like(object_author.c.person, "%a\\b_%", "postgresql"), "postgresql")
    assert "a\\\\b_" in text and "ESCAPE '\\'" in text  # the driver later doubles the %


def test_time_range_normalises_and_uses_from_inclusive_to_exclusive() -> None:
    low, high = sql.time_range(document_entry.c.creation_time, "2004", "200412")
    assert compiled(low, "sqlite").endswith("creation_time >= '20040101000000'")
    assert compiled(high, "sqlite").endswith("creation_time < '20041201000000'")
    assert sql.time_range(document_entry.c.creation_time, None, None) == []


def test_code_filters_one_exists_per_slot() -> None:
    clauses = sql.code_filters(
        document_entry.c.id, "eventCodeList", [[Code("a", "s"), Code("b", "s")], [Code("c", "t")]]
    )
    assert len(clauses) == 2
    first = compiled(clauses[0], "postgresql")
    assert "EXISTS" in first and "object_code.attribute = 'eventCodeList'" in first
    assert "object_code.code = 'a' AND object_code.scheme = 's'" in first
    assert " OR " in first
    assert sql.code_filters(document_entry.c.id, "classCode", None) == []


def test_document_type_defaults_to_stable() -> None:
    (clause,) = sql.document_type_filter(None)
    assert "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" in compiled(clause, "sqlite")
    assert "34268e47" not in compiled(clause, "sqlite")
