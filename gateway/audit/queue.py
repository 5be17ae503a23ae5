"""The durable audit queue: every record waits on disk until each destination has it.

SQLite in WAL mode with ``synchronous=FULL`` (each commit is fsynced), in a file only the
gateway's user may read (0600, folder 0700): audit records name patients. A record is stored
once, with one ``pending`` row per destination; a destination's sender reads its pending rows
oldest first and deletes them only after the write succeeded (:meth:`ack`). A record whose
every destination has acknowledged it is deleted. A crash between write and acknowledgement
leaves the rows in place, so the record is sent again after restart: delivery is at least once,
never lost, sometimes duplicated.

Several processes may share one queue file (the workers of ``serve --workers N`` share the data
folder): SQLite's file locking keeps the file whole, and ownership keeps each record on one
sender. Every record carries the owner id of the process that stored it, and a process's
senders read only their own records, so no record is sent by two processes. A process holds
the flock ``<directory>/<owner>.lock`` while it lives (:mod:`gateway.owners`); records of an
owner whose lock can be taken (the process is gone: crashed, killed or stopped) are claimed by
a live process before it sends them, in one transaction per batch, under that dead owner's
lock so that two claimants take turns. Claiming gives the records new ids, above every
sender's read position, so they go out next. Records stored before owners existed (owner NULL)
are claimed the same way.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from gateway.owners import OwnerLock, new_owner_id

log = logging.getLogger("gateway.audit")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS record ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, created REAL NOT NULL, message BLOB NOT NULL,"
    " owner TEXT)",
    "CREATE TABLE IF NOT EXISTS pending ("
    " destination TEXT NOT NULL, record_id INTEGER NOT NULL,"
    " PRIMARY KEY (destination, record_id)) WITHOUT ROWID",
)
CLAIM_BATCH = 200  # records moved to a new owner per transaction
CLAIM_EVERY_SECONDS = 30.0  # how often an idle sender looks for records of processes gone


def _private_file(path: Path) -> None:
    """Create ``path`` (0600) before SQLite does, so the database never exists world-readable."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class AuditQueue:
    """Records waiting for delivery, per destination, in ``<directory>/queue.sqlite``.

    ``owner``: this process's owner id (:class:`gateway.owners.ProcessIdentity`); a new one by
    default. Records of owners that are gone are claimed when the queue opens and by
    :meth:`claim_orphans`.
    """

    FILENAME = "queue.sqlite"

    def __init__(
        self,
        directory: str | os.PathLike[str],
        destinations: Sequence[str],
        *,
        owner: str | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        self.path = self.directory / self.FILENAME
        _private_file(self.path)
        self.destinations = tuple(dict.fromkeys(destinations))
        self.owner = owner or new_owner_id()
        self._owner_lock = OwnerLock.acquire(self.directory, self.owner)  # before any record
        self._next_claim = 0.0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self._add_owner_column()
        for path in self.directory.glob(self.FILENAME + "-*"):  # -wal, -shm
            os.chmod(path, 0o600)
        self._warn_orphans()
        self.claim_orphans()
        self._next_claim = time.monotonic() + CLAIM_EVERY_SECONDS

    def _add_owner_column(self) -> None:
        """Queues made before owners existed get the column; their records have owner NULL."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(record)")}
        if "owner" not in columns:
            self._db.execute("ALTER TABLE record ADD COLUMN owner TEXT")
        self._db.execute("CREATE INDEX IF NOT EXISTS record_owner ON record (owner, id)")

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
                        "INSERT INTO record (created, message, owner) VALUES (?, ?, ?)",
                        (now, message, self.owner),
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
        """Up to ``limit`` of this owner's (id, message) for ``destination`` with id > ``after``,
        oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.id, r.message FROM pending p JOIN record r ON r.id = p.record_id"
                " WHERE p.destination = ? AND p.record_id > ? AND r.owner = ?"
                " ORDER BY p.record_id LIMIT ?",
                (destination, after, self.owner, limit),
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

    def claim_orphans(self) -> int:
        """Take over the records of owners that are gone; return how many were taken."""
        with self._lock:
            owners = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT owner FROM record WHERE owner IS NULL OR owner <> ?",
                    (self.owner,),
                )
            ]
        claimed = 0
        for other in owners:
            lock = None if other is None else OwnerLock.try_acquire(self.directory, other)
            if other is not None and lock is None:
                continue  # alive: its own senders deliver its records
            try:
                claimed += self._claim(other)
            finally:
                if lock is not None:
                    lock.release()
        if claimed:
            log.info("audit queue: took over %d record(s) of processes no longer running", claimed)
        return claimed

    def claim_orphans_now_and_then(self, now: float | None = None) -> int:
        """:meth:`claim_orphans`, at most every CLAIM_EVERY_SECONDS (called by idle senders)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now < self._next_claim:
                return 0
            self._next_claim = now + CLAIM_EVERY_SECONDS
        return self.claim_orphans()

    def _claim(self, other: str | None) -> int:
        """Give ``other``'s records new ids under this owner, CLAIM_BATCH per transaction."""
        total = 0
        while True:
            with self._lock:
                cursor = self._db.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    moved = self._claim_batch(cursor, other)
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            total += moved
            if moved < CLAIM_BATCH:
                return total

    def _claim_batch(self, cursor: sqlite3.Cursor, other: str | None) -> int:
        rows = cursor.execute(
            "SELECT id, created, message FROM record WHERE owner IS ? ORDER BY id LIMIT ?",
            (other, CLAIM_BATCH),
        ).fetchall()
        for old_id, created, message in rows:
            cursor.execute(
                "INSERT INTO record (created, message, owner) VALUES (?, ?, ?)",
                (created, message, self.owner),
            )
            cursor.execute(
                "UPDATE pending SET record_id = ? WHERE record_id = ?", (cursor.lastrowid, old_id)
            )
            cursor.execute("DELETE FROM record WHERE id = ?", (old_id,))
        return len(rows)

    def close(self) -> None:
        """Close the file and drop the owner lock (remaining records wait for a claimant)."""
        with self._lock:
            self._db.close()
        self._owner_lock.release()
