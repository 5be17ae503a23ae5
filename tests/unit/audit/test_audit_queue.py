"""The durable audit queue: per-destination delivery state, acknowledgement, reopen."""

from __future__ import annotations

import stat
from pathlib import Path

from gateway.audit.queue import AuditQueue


def test_fan_out_and_acknowledge(tmp_path: Path) -> None:
    queue = AuditQueue(tmp_path / "audit", ["tls://a:6514", "file:x"])
    queue.put_many([b"one", b"two", b"three"])
    assert queue.pending() == 3
    rows = queue.peek("tls://a:6514")
    assert [m for _i, m in rows] == [b"one", b"two", b"three"]
    queue.ack("tls://a:6514", [rows[0][0], rows[1][0]])
    assert queue.pending("tls://a:6514") == 1
    assert queue.pending("file:x") == 3
    assert queue.pending() == 3  # still wanted by the file destination
    queue.ack("file:x", [i for i, _m in queue.peek("file:x")])
    assert queue.pending() == 1
    assert [m for _i, m in queue.peek("tls://a:6514")] == [b"three"]
    queue.close()


def test_peek_after_cursor_and_limit(tmp_path: Path) -> None:
    queue = AuditQueue(tmp_path, ["d"])
    queue.put_many([str(n).encode() for n in range(10)])
    first = queue.peek("d", limit=4)
    assert [m for _i, m in first] == [b"0", b"1", b"2", b"3"]
    rest = queue.peek("d", after=first[-1][0], limit=100)
    assert [m for _i, m in rest] == [str(n).encode() for n in range(4, 10)]
    queue.close()


def test_records_survive_reopen(tmp_path: Path) -> None:
    queue = AuditQueue(tmp_path, ["d"])
    queue.put(b"kept")
    rows = queue.peek("d")
    # A sender wrote the record but did not acknowledge it before the process ended.
    del rows
    queue.close()
    again = AuditQueue(tmp_path, ["d"])
    assert [m for _i, m in again.peek("d")] == [b"kept"]
    again.close()


def test_owner_only_files(tmp_path: Path) -> None:
    queue = AuditQueue(tmp_path / "audit", ["d"])
    queue.put(b"patient data")
    assert stat.S_IMODE((tmp_path / "audit").stat().st_mode) == 0o700
    for path in (tmp_path / "audit").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    queue.close()


def test_new_destination_and_removed_destination(tmp_path: Path, caplog) -> None:
    first = AuditQueue(tmp_path, ["old"])
    first.put(b"for old")
    first.close()
    queue = AuditQueue(tmp_path, ["new"])
    assert queue.pending("new") == 0
    assert queue.pending("old") == 1  # kept, never silently dropped
    assert "no longer configured" in caplog.text
    queue.close()


def test_each_owner_reads_only_its_own_records(tmp_path: Path) -> None:
    # Two processes (workers) sharing the queue: a record goes out through one sender only.
    first = AuditQueue(tmp_path, ["d"], owner="worker-a")
    second = AuditQueue(tmp_path, ["d"], owner="worker-b")
    try:
        first.put_many([b"a1", b"a2"])
        second.put(b"b1")
        assert [m for _i, m in first.peek("d")] == [b"a1", b"a2"]
        assert [m for _i, m in second.peek("d")] == [b"b1"]
        assert first.pending("d") == second.pending("d") == 3  # what waits, whoever sends it
        assert second.claim_orphans() == 0  # worker-a is alive: its records stay its own
    finally:
        first.close()
        second.close()


def test_records_of_an_owner_that_is_gone_are_claimed_past_the_senders_cursor(
    tmp_path: Path,
) -> None:
    survivor = AuditQueue(tmp_path, ["d"], owner="worker-a")
    gone = AuditQueue(tmp_path, ["d", "e"], owner="worker-b")
    try:
        gone.put_many([b"b1", b"b2"])
        survivor.put(b"a1")
        cursor = survivor.peek("d")[-1][0]  # its sender has written a1
        survivor.ack("d", [cursor])
        gone.ack("e", [i for i, _m in gone.peek("e")])  # e already has b1 and b2
    finally:
        gone.close()  # the process ends with b1, b2 undelivered to d
    try:
        assert survivor.claim_orphans() == 2
        claimed = survivor.peek("d", after=cursor)
        assert [m for _i, m in claimed] == [b"b1", b"b2"]
        assert survivor.peek("e") == []  # not sent again where it was delivered
        assert survivor.claim_orphans() == 0
    finally:
        survivor.close()


def test_records_written_before_owners_existed_are_claimed(tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / AuditQueue.FILENAME)
    db.executescript(
        "CREATE TABLE record (id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL,"
        " message BLOB NOT NULL);"
        "CREATE TABLE pending (destination TEXT NOT NULL, record_id INTEGER NOT NULL,"
        " PRIMARY KEY (destination, record_id)) WITHOUT ROWID;"
        "INSERT INTO record (created, message) VALUES (0, X'6f6c64');"
        "INSERT INTO pending VALUES ('d', 1);"
    )
    db.commit()
    db.close()
    queue = AuditQueue(tmp_path, ["d"])
    try:
        assert [m for _i, m in queue.peek("d")] == [b"old"]
    finally:
        queue.close()
