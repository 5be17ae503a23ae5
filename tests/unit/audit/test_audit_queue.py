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
