"""Recent transactions and failed logins in the gateway database (gateway.ui.journal), on a real
SQLite database migrated to ``0004_ui``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.database import Database
from gateway.ui import journal as journal_module
from gateway.ui.journal import Entry, Journal


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'gateway.sqlite'}")
    db.upgrade()
    try:
        yield db
    finally:
        db.dispose()


def entry(n: int, outcome: str = "Success") -> Entry:
    return Entry(
        at=1000.0 + n,
        direction="served",
        transaction="ITI-18",
        path=f"/xds/registry/{n}",
        peer="10.0.0.1",
        outcome=outcome,
        http_status=200,
        duration_ms=1.5,
    )


def test_recent_newest_first_and_failures(database: Database) -> None:
    journal = Journal(database.engine)
    for n in range(5):
        journal.record(entry(n, "Failure" if n == 2 else "Success"))
    assert [e.path for e in journal.recent(3)] == [f"/xds/registry/{n}" for n in (4, 3, 2)]
    assert [e.path for e in journal.recent(10, failures_only=True)] == ["/xds/registry/2"]
    other = Journal(database.engine)  # another process's view: the same rows
    assert len(other.recent(50)) == 5


def test_background_writer_and_pruning(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_module, "KEEP", 10)
    monkeypatch.setattr(journal_module, "PRUNE_EVERY", 20)
    monkeypatch.setattr(journal_module, "FLUSH_SECONDS", 0.05)
    journal = Journal(database.engine)
    journal.start()
    try:
        for n in range(25):
            journal.record(entry(n))
        reader = Journal(database.engine)
        deadline = time.monotonic() + 10
        while len(reader.recent(100)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)  # the writer runs every 50 ms
    finally:
        journal.close()
    rows = Journal(database.engine).recent(100)
    assert rows[0].path == "/xds/registry/24"
    assert 10 <= len(rows) < 25  # pruned once 20 rows were written, to the newest 10 (+ later)


def test_queue_full_drops(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(database.engine)
    monkeypatch.setattr(journal, "_queue", journal_module.queue.Queue(maxsize=2))
    for n in range(5):
        journal.record(entry(n))  # never blocks
    assert len(journal.recent(10)) == 2


def test_failed_logins_by_name_or_address(database: Database) -> None:
    journal = Journal(database.engine)
    journal.failed_login("alice", "10.0.0.1")
    journal.failed_login("bob", "10.0.0.2")
    assert journal.recent_failures("alice", "10.0.0.9", 60) == 1
    assert journal.recent_failures("carol", "10.0.0.2", 60) == 1
    assert journal.recent_failures("alice", "10.0.0.2", 60) == 2
    assert journal.recent_failures("carol", "10.0.0.3", 60) == 0
    assert journal.recent_failures("alice", None, 0) == 0  # the window counts
