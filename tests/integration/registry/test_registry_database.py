"""The registry database: migrations, SQLite settings, transactions."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, inspect, select, text

from gateway.database.migrate import HEAD, target_metadata
from gateway.registry.database import Database, db_upgrade
from gateway.registry.schema import metadata, patient

_REPO_ROOT = Path(__file__).resolve().parents[3]


def test_upgrade_creates_the_schema_of_schema_py(db_url: str) -> None:
    """The Alembic head equals every room's ``schema.py`` (the registry's among them): add a
    revision whenever one changes."""
    db_upgrade(db_url)
    database = Database(db_url)
    try:
        with database.read() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, target_metadata()) == []
            assert context.get_current_revision() == HEAD
    finally:
        database.dispose()


def test_upgrade_is_idempotent_and_keeps_data(db_url: str) -> None:
    db_upgrade(db_url)
    database = Database(db_url)
    try:
        with database.write() as conn:
            conn.execute(insert(patient).values(patient_id="P", updated="20240101000000"))
        db_upgrade(db_url)
        with database.read() as conn:
            assert conn.execute(select(patient.c.patient_id)).scalars().all() == ["P"]
    finally:
        database.dispose()


def test_concurrent_upgrades_all_succeed(db_url: str) -> None:
    """Several gateway processes starting at once against one empty database."""
    code = "import sys; from gateway.registry.database import db_upgrade; db_upgrade(sys.argv[1])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, db_url], stderr=subprocess.PIPE, cwd=_REPO_ROOT
        )
        for _ in range(3)
    ]
    with ThreadPoolExecutor(2) as pool:  # and two threads of this process
        threads = [pool.submit(db_upgrade, db_url) for _ in range(2)]
        for future in threads:
            future.result(timeout=60)
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
    database = Database(db_url)
    try:
        assert set(inspect(database.engine).get_table_names()) >= set(metadata.tables)
    finally:
        database.dispose()


def test_write_rolls_back_on_error_and_read_never_commits(db_url: str) -> None:
    database = Database(db_url)
    database.create_all()
    try:
        with pytest.raises(RuntimeError), database.write() as conn:
            conn.execute(insert(patient).values(patient_id="P1", updated="20240101000000"))
            raise RuntimeError("abort")
        with database.read() as conn:
            conn.execute(insert(patient).values(patient_id="P2", updated="20240101000000"))
        with database.read() as conn:
            assert conn.execute(select(patient.c.patient_id)).scalars().all() == []
    finally:
        database.dispose()


def test_sqlite_connection_settings(tmp_path: object) -> None:
    database = Database(f"sqlite:///{tmp_path}/sub/dir/registry.sqlite")  # folders are created
    try:
        with database.read() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
        assert database.dialect == "sqlite"
    finally:
        database.dispose()


def test_sqlite_writers_wait_for_each_other(tmp_path: object) -> None:
    """BEGIN IMMEDIATE: a second writer waits for the first instead of failing half-way."""
    database = Database(f"sqlite:///{tmp_path}/registry.sqlite")
    database.create_all()
    inside, release = threading.Event(), threading.Event()

    def first() -> None:
        with database.write() as conn:
            conn.execute(insert(patient).values(patient_id="A", updated="1"))
            inside.set()
            release.wait(timeout=10)

    def second() -> None:
        inside.wait(timeout=10)
        with database.write() as conn:
            count = len(conn.execute(select(patient.c.patient_id)).all())
            conn.execute(insert(patient).values(patient_id=f"B{count}", updated="1"))

    try:
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.submit(first), pool.submit(second)
            inside.wait(timeout=10)
            release.set()
            a.result(timeout=30)
            b.result(timeout=30)
        with database.read() as conn:
            ids = set(conn.execute(select(patient.c.patient_id)).scalars())
        assert ids == {"A", "B1"}  # the second writer saw the first one's row
    finally:
        database.dispose()
