"""Bulk loading of synthetic registry content (``registry_data.py``) into PostgreSQL or SQLite.

Not through SOAP: the rows ITI-42 would write are built in Python and inserted in bulk —
PostgreSQL ``COPY ... FROM STDIN`` (psycopg2 ``copy_expert``, CSV), SQLite ``executemany`` in
one transaction per batch with loading pragmas (no journal, no sync, a large cache). The
secondary indexes of ``schema.py`` are dropped before and built again after the load (one sort
per index instead of a million random inserts), then the planner statistics are gathered
(PostgreSQL ``VACUUM ANALYZE``, SQLite ``ANALYZE``). Primary keys and UNIQUE constraints stay in
place, so a duplicate could never slip in.

Generation (Python, one core) and insertion (the database, the other core) overlap: a writer
thread inserts batch n while the main thread builds batch n+1.

:func:`check_loader` registers a small sample both ways — through the ITI-42 actor
(``Registry.register_with_result``, validation included) and through this loader — and compares
every table, so the benchmark's data is what the gateway itself would store.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import registry_data as data
from sqlalchemy import Index, text
from sqlalchemy.engine import make_url

from gateway.registry import database, schema

BATCH_DOCUMENTS = 20_000


class LoadError(RuntimeError):
    """The database cannot take the load (not empty, unsupported URL)."""


@dataclass(slots=True)
class LoadReport:
    """What a load did."""

    documents: int = 0
    patients: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    insert_seconds: float = 0.0
    index_seconds: float = 0.0
    analyze_seconds: float = 0.0
    total_seconds: float = 0.0
    database_bytes: int = 0


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> str:
    return make_url(url).database or ""


def pg_connect_args(url: str) -> dict[str, Any]:
    """psycopg2.connect keyword arguments of a SQLAlchemy PostgreSQL URL."""
    parsed = make_url(url)
    args = parsed.translate_connect_args(username="user", database="dbname")
    args.update(parsed.query)
    return args


def secondary_indexes() -> list[Index]:
    """Every non-unique index of the tables the loader fills (rebuilt after the load)."""
    return [index for table in data.TABLES for index in sorted(table.indexes, key=_name)]


def _name(index: Index) -> str:
    return str(index.name)


def registry_is_empty(url: str) -> bool:
    db = database.Database(url)
    try:
        with db.read() as conn:
            for table in data.TABLES:
                if conn.execute(text(f"SELECT 1 FROM {table.name} LIMIT 1")).first():
                    return False
        return True
    finally:
        db.dispose()


def reset(url: str) -> None:
    """Delete every row of the registry tables (keeps the schema)."""
    tables = (*data.TABLES, schema.patient_local_id)
    db = database.Database(url)
    try:
        with db.write() as conn:
            if db.dialect == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)}"))
            else:
                for table in tables:
                    conn.execute(table.delete())
    finally:
        db.dispose()


# --- writers ------------------------------------------------------------------------------------


class _PostgresWriter:
    """COPY of CSV batches on one psycopg2 connection, one transaction per batch."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(**pg_connect_args(url))
        with self.conn.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")  # a crash means loading again

    @staticmethod
    def encode(batch: data.Rows) -> dict[str, bytes]:
        """CSV text of each table's rows (built by the generating thread).

        ``None`` is written as an unquoted empty field, COPY's NULL in CSV format; the synthetic
        data holds no empty strings (one would load as NULL, or fail on a NOT NULL column).
        """
        encoded = {}
        for table, rows in batch.items():
            if rows:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(rows)
                encoded[table] = buffer.getvalue().encode()
        return encoded

    def write(self, encoded: dict[str, bytes]) -> None:
        with self.conn.cursor() as cursor:
            for table, payload in encoded.items():
                columns = ", ".join(data.COLUMNS[table])
                cursor.copy_expert(
                    f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv)",
                    io.BytesIO(payload),
                    size=len(payload),  # one read: no Python round trips per 8 kB
                )
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class _SqliteWriter:
    """executemany per table, one transaction per batch, loading pragmas."""

    def __init__(self, url: str) -> None:
        self.conn = sqlite3.connect(sqlite_path(url), isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=OFF",  # a failed load is loaded again; no rollback journal needed
            "synchronous=OFF",
            "cache_size=-1048576",  # 1 GiB
            "temp_store=MEMORY",
            "locking_mode=EXCLUSIVE",
        ):
            self.conn.execute(f"PRAGMA {pragma}")

    @staticmethod
    def encode(batch: data.Rows) -> data.Rows:
        return batch

    def write(self, batch: data.Rows) -> None:
        self.conn.execute("BEGIN")
        for table, rows in batch.items():
            if rows:
                columns = data.COLUMNS[table]
                marks = ", ".join("?" * len(columns))
                self.conn.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
                )
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.execute("PRAGMA locking_mode=NORMAL")
        self.conn.execute("PRAGMA journal_mode=WAL")  # the gateway's setting
        self.conn.close()


# --- the load -----------------------------------------------------------------------------------


Progress = Callable[[str], None]


def load(
    url: str,
    documents: int,
    *,
    seed: int = 7,
    progress: Progress = print,
    batch_documents: int = BATCH_DOCUMENTS,
) -> LoadReport:
    """Create the schema (Alembic head) and load ``documents`` synthetic documents into an empty
    registry at ``url``. Raises: LoadError when the registry holds data already."""
    started = time.perf_counter()
    database.upgrade(url)
    if not registry_is_empty(url):
        raise LoadError("the registry database is not empty (use --no-load or --reset)")
    _drop_indexes(url)
    report = LoadReport()
    writer: _PostgresWriter | _SqliteWriter = (
        _SqliteWriter(url) if is_sqlite(url) else _PostgresWriter(url)
    )
    try:
        _insert(writer, documents, seed, batch_documents, report, progress)
    finally:
        writer.close()
    report.insert_seconds = time.perf_counter() - started
    progress(f"inserted {report.documents:,} documents in {report.insert_seconds:.0f} s")
    mark = time.perf_counter()
    _create_indexes(url, progress)
    report.index_seconds = time.perf_counter() - mark
    mark = time.perf_counter()
    _analyze(url)
    report.analyze_seconds = time.perf_counter() - mark
    report.total_seconds = time.perf_counter() - started
    report.database_bytes = database_bytes(url)
    return report


def _insert(
    writer: _PostgresWriter | _SqliteWriter,
    documents: int,
    seed: int,
    batch_documents: int,
    report: LoadReport,
    progress: Progress,
) -> None:
    """Generate batches here; insert them in a writer thread (one batch ahead at most)."""
    pending: queue.Queue[Any] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    def drain() -> None:
        while True:
            item = pending.get()
            if item is None:
                return
            if failure:
                continue  # keep draining so the producer never blocks forever
            try:
                writer.write(item)
            except BaseException as exc:  # reported by the producer
                failure.append(exc)

    thread = threading.Thread(target=drain, name="bulk-writer", daemon=True)
    thread.start()
    generator = data.Generator(seed)
    seq = time.time_ns()
    started = time.perf_counter()
    try:
        while report.documents < documents and not failure:
            batch, seq = _batch(generator, min(batch_documents, documents - report.documents), seq)
            for table, rows in batch.items():
                report.rows[table] = report.rows.get(table, 0) + len(rows)
            report.documents += len(batch["document_entry"])
            report.patients += len(batch["patient"])
            pending.put(writer.encode(batch))
            rate = report.documents / max(time.perf_counter() - started, 1e-9)
            progress(f"  {report.documents:>10,} documents generated ({rate:,.0f}/s)")
    finally:
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]


def _batch(generator: data.Generator, documents: int, seq: int) -> tuple[data.Rows, int]:
    out = data.empty_rows()
    registrations, fed = generator.batch(documents)
    for number, when in sorted(fed.items()):
        data.patient_row(number, datetime.fromtimestamp(when, UTC), out)
    for registration in registrations:
        data.mark_registered(
            registration.submission, datetime.fromtimestamp(registration.registered, UTC)
        )
        seq = data.submission_rows(registration.submission, seq, out)
    return out, seq


def _drop_indexes(url: str) -> None:
    db = database.Database(url)
    try:
        with db.write() as conn:
            for index in secondary_indexes():
                conn.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
    finally:
        db.dispose()


def _create_indexes(url: str, progress: Progress) -> None:
    """Build the dropped indexes exactly as ``schema.py`` declares them."""
    db = database.Database(url)
    try:
        for index in secondary_indexes():
            mark = time.perf_counter()
            with db.write() as conn:
                if db.dialect == "postgresql":
                    conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
                index.create(conn, checkfirst=True)
            progress(f"  index {index.name}: {time.perf_counter() - mark:.0f} s")
    finally:
        db.dispose()


def _analyze(url: str) -> None:
    if is_sqlite(url):
        with sqlite3.connect(sqlite_path(url), isolation_level=None) as conn:
            conn.execute("ANALYZE")
        return
    import psycopg2

    conn = psycopg2.connect(**pg_connect_args(url))
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        conn.close()


def database_bytes(url: str) -> int:
    """Size of the database on disk (PostgreSQL database or SQLite file with its WAL)."""
    if is_sqlite(url):
        path = Path(sqlite_path(url))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    db = database.Database(url)
    try:
        with db.read() as conn:
            return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())
    finally:
        db.dispose()


# --- faithfulness check -------------------------------------------------------------------------


def check_loader(work: Path, documents: int = 200, seed: int = 11) -> list[str]:
    """Register ``documents`` synthetic documents through the ITI-42 actor and through the
    loader (two SQLite files under ``work``); return the differences (empty = identical).

    Compared: every row of every table the loader fills, except ``seq`` (a clock) where only
    the order of the rows by ``seq`` must agree, and the ``patient`` rows' feed time.
    """
    import copy

    from gateway.hl7.adt import Demographics
    from gateway.registry.iti42 import Registry

    generator = data.Generator(seed)
    registrations, fed = generator.batch(documents)
    via_loader, via_iti42 = work / "loader.sqlite", work / "iti42.sqlite"
    for path in (via_loader, via_iti42):
        if path.exists():
            os.unlink(path)
    load(f"sqlite:///{via_loader}", documents, seed=seed, progress=lambda _m: None)

    url = f"sqlite:///{via_iti42}"
    database.upgrade(url)
    clock = _Clock()
    registry = Registry(database.Database(url), clock=clock)
    try:
        for number in sorted(fed):
            family, given = data.FAMILY[number % 20], data.GIVEN[number % 10]
            registry.patients.register(
                data.patient_id(number),
                Demographics(
                    name=f"{family}^{given}",
                    family_name=family,
                    given_name=given,
                    sex="FM"[number % 2],
                ),
                other_ids=[],
            )
        for registration in registrations:
            clock.now = datetime.fromtimestamp(registration.registered, UTC)
            registry.register_with_result(copy.deepcopy(registration.submission))
    finally:
        registry.close()
    return _compare(via_loader, via_iti42)


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _compare(left: Path, right: Path) -> list[str]:
    differences = []
    with sqlite3.connect(left) as a, sqlite3.connect(right) as b:
        for table in data.TABLES:
            columns = [c for c in data.COLUMNS[table.name] if c not in ("seq", "updated")]
            order = "seq" if "seq" in data.COLUMNS[table.name] else ", ".join(columns)
            query = f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY {order}"
            rows_a, rows_b = a.execute(query).fetchall(), b.execute(query).fetchall()
            if rows_a != rows_b:
                only_a = len(set(rows_a) - set(rows_b))
                only_b = len(set(rows_b) - set(rows_a))
                differences.append(
                    f"{table.name}: {len(rows_a)} rows by the loader, {len(rows_b)} by ITI-42 "
                    f"({only_a} only in the loader's, {only_b} only in ITI-42's"
                    f"{', same rows in another order' if not only_a and not only_b else ''})"
                )
    return differences
