"""The durable audit queue: every record waits on disk until each destination has it.

SQLite in WAL mode with ``synchronous=FULL`` (each commit is fsynced), in a file only the
gateway's user may read (0600, folder 0700): audit records name patients. A record is stored
once, with one ``pending`` row per destination; a destination's sender reads its pending rows
oldest first and deletes them only after the write succeeded (:meth:`ack`). A record whose
every destination has acknowledged it is deleted. A crash between write and acknowledgement
leaves the rows in place, so the record is sent again after restart: delivery is at least once,
never lost, sometimes duplicated.

Several processes may share one queue file (SQLite locking), but each destination should be
served by one sender at a time; the gateway runs one sender thread per destination.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

log = logging.getLogger("gateway.audit")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS record ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, message BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pending ("
    " destination TEXT NOT NULL, record_id INTEGER NOT NULL,"
    " PRIMARY KEY (destination, record_id)) WITHOUT ROWID",
)


def _private_file(path: Path) -> None:
    """Create ``path`` (0600) before SQLite does, so the database never exists world-readable."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class AuditQueue:
    """Records waiting for delivery, per destination, in ``<directory>/queue.sqlite``."""

    FILENAME = "queue.sqlite"

    def __init__(self, directory: str | os.PathLike[str], destinations: Sequence[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        self.path = self.directory / self.FILENAME
        _private_file(self.path)
        self.destinations = tuple(dict.fromkeys(destinations))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
        for path in self.directory.glob(self.FILENAME + "-*"):  # -wal, -shm
            os.chmod(path, 0o600)
        self._warn_orphans()

    def _warn_orphans(self) -> None:
        marks = ",".join("?" * len(self.destinations)) or "''"
        with self._lock:
            rows = self._db.execute(
                f"SELECT destination, COUNT(*) FROM pending WHERE destination NOT IN ({marks})"
                " GROUP BY destination",
                self.destinations,
            ).fetchall()
        for destination, count in rows:
            log.warning(
                "audit queue keeps %d records for %s, which is no longer configured",
                count,
                destination,
            )

    def put_many(self, messages: Iterable[bytes]) -> int:
        """Store ``messages`` for every destination in one fsynced transaction; return count."""
        items = list(messages)
        if not items:
            return 0
        now = time.time()
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for message in items:
                    cursor.execute(
                        "INSERT INTO record (created, message) VALUES (?, ?)", (now, message)
                    )
                    record_id = cursor.lastrowid
                    cursor.executemany(
                        "INSERT INTO pending (destination, record_id) VALUES (?, ?)",
                        [(destination, record_id) for destination in self.destinations],
                    )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        return len(items)

    def put(self, message: bytes) -> None:
        """Store one message (see :meth:`put_many`)."""
        self.put_many([message])

    def peek(
        self, destination: str, *, after: int = 0, limit: int = 100
    ) -> list[tuple[int, bytes]]:
        """Up to ``limit`` (id, message) for ``destination`` with id > ``after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.id, r.message FROM pending p JOIN record r ON r.id = p.record_id"
                " WHERE p.destination = ? AND p.record_id > ? ORDER BY p.record_id LIMIT ?",
                (destination, after, limit),
            ).fetchall()
        return [(int(row[0]), bytes(row[1])) for row in rows]

    def ack(self, destination: str, ids: Sequence[int]) -> None:
        """``destination`` has the records ``ids``: forget them there (and wholly, when done)."""
        if not ids:
            return
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                cursor.executemany(
                    "DELETE FROM pending WHERE destination = ? AND record_id = ?",
                    [(destination, record_id) for record_id in ids],
                )
                cursor.executemany(
                    "DELETE FROM record WHERE id = ? AND NOT EXISTS"
                    " (SELECT 1 FROM pending WHERE record_id = record.id)",
                    [(record_id,) for record_id in ids],
                )
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise

    def pending(self, destination: str | None = None) -> int:
        """How many records wait (for ``destination``, or for any destination)."""
        with self._lock:
            if destination is None:
                row = self._db.execute("SELECT COUNT(DISTINCT record_id) FROM pending").fetchone()
            else:
                row = self._db.execute(
                    "SELECT COUNT(*) FROM pending WHERE destination = ?", (destination,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
