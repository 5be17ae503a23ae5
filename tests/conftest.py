"""Fixtures shared by every room.

``db_url``: a SQLAlchemy URL of an empty database, once on SQLite (a file in ``tmp_path``) and
once on PostgreSQL when ``XDSI_TEST_POSTGRES_URL`` names a server database to start from (e.g.
``postgresql://postgres@127.0.0.1/test``); without it the PostgreSQL variant is skipped with the
reason. Each test module gets its own PostgreSQL database ``xdsi_test_<random>`` (created through
that URL, dropped afterwards) and each test its own schema in it (``search_path``), so tests stay
independent and safe to run in parallel.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

POSTGRES_ENV = "XDSI_TEST_POSTGRES_URL"


def _psycopg2(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _admin_execute(url: URL, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the test module (skipped without XDSI_TEST_POSTGRES_URL)."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: PostgreSQL variant skipped "
            "(set it to e.g. postgresql://postgres@127.0.0.1/test to run it)"
        )
    admin = _psycopg2(base)
    name = f"xdsi_test_{secrets.token_hex(6)}"
    _admin_execute(admin, f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        _admin_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: SQLite file, or a fresh schema of the module's PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
        return
    database = make_url(request.getfixturevalue("postgres_database_url"))
    schema = f"t_{secrets.token_hex(6)}"
    _admin_execute(database, f'CREATE SCHEMA "{schema}"')
    try:
        url = database.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        _admin_execute(database, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
