"""The repository's own index: which uniqueIds it holds, where, with which hash, and in which state.

One SQLite database (``<data_dir>/repository/index.sqlite``, stdlib ``sqlite3``), one table::

    document(unique_id PRIMARY KEY, storage_key, hash, size, mime_type, state, owner, created)

``state`` is the point of the table (see ``gateway.repository.actor`` for the whole protocol):

- ``pending``: reserved by an ITI-41 in flight in process ``owner``; its file may or may not be
  in place; never served.
- ``unresolved``: the registration outcome is unknown (the registry could not be reached or
  answered neither Success nor Failure); never served; resolved later by asking the registry.
- ``confirmed``: the registry acknowledged the registration; served by ITI-43; never removed.

The primary key makes a uniqueId's reservation exclusive (two requests storing the same uniqueId
at once: one wins, the other sees the row), so no in-process lock stands in for it. Each thread
uses its own connection, which makes the index safe to use from any number of threads; writes
run in ``BEGIN IMMEDIATE`` transactions. WAL journal with ``synchronous=FULL``: a committed
change survives SIGKILL and power loss (SQLite "Write-Ahead Logging" §"Durability").
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

PENDING = "pending"
UNRESOLVED = "unresolved"
CONFIRMED = "confirmed"
STATES = (PENDING, UNRESOLVED, CONFIRMED)
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS document (
    unique_id   TEXT PRIMARY KEY,
    storage_key TEXT NOT NULL,
    hash        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mime_type   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'unresolved', 'confirmed')),
    owner       TEXT NOT NULL,
    created     REAL NOT NULL
)
"""
_COLUMNS = "unique_id, storage_key, hash, size, mime_type, state, owner, created"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredDocument:
    """One row: a document the repository holds or is storing (``hash`` lower-case SHA-1 hex)."""

    unique_id: str
    storage_key: str
    hash: str
    size: int
    mime_type: str
    state: str = PENDING
    owner: str = ""
    created: float = 0.0


Accept = Callable[[StoredDocument, StoredDocument], bool]


class RepositoryIndex:
    """The index database at ``path`` (created when missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread, kept open: closing the last connection of a WAL database
        # checkpoints it (two more fsyncs), which would double the cost of every call.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,  # only so that close() may close it; used by one thread
            )
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        yield conn

    def close(self) -> None:
        """Close every thread's connection (when no thread uses the index any more)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._local = threading.local()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- reads --------------------------------------------------------------------------------
    def get(self, unique_id: str) -> StoredDocument | None:
        """The row of a uniqueId, whatever its state, or None."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM document WHERE unique_id = ?", (unique_id,)
            ).fetchone()
        return _document(row) if row else None

    def unsettled(self, *, owner: str, created_before: float) -> list[StoredDocument]:
        """Rows whose registration outcome must be found out: every ``unresolved`` row and the
        ``pending`` rows of other owners (earlier runs of the process), created before the given
        time (``time.time()`` scale); oldest first."""
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM document WHERE created <= ? AND "
                "(state = 'unresolved' OR (state = 'pending' AND owner <> ?)) ORDER BY created",
                (created_before, owner),
            ).fetchall()
        return [_document(row) for row in rows]

    def storage_keys(self) -> set[str]:
        """The storage keys of every row, whatever its state."""
        with self._connect() as conn:
            return {row[0] for row in conn.execute("SELECT storage_key FROM document")}

    def counts(self) -> dict[str, int]:
        """Number of rows in each state."""
        with self._connect() as conn:
            found = dict(conn.execute("SELECT state, COUNT(*) FROM document GROUP BY state"))
        return {state: int(found.get(state, 0)) for state in STATES}

    # -- writes -------------------------------------------------------------------------------
    def reserve(
        self, candidates: Sequence[StoredDocument], *, owner: str, now: float, accept: Accept
    ) -> list[StoredDocument | None]:
        """Insert a ``pending`` row (owned by ``owner``) for every candidate whose uniqueId has
        no row yet; return, per candidate, the row that already existed (None when inserted).

        All or nothing: when ``accept(candidate, existing)`` is false for some existing row,
        nothing is inserted (the caller reports the conflict).
        """
        with self._write() as conn:
            existing: list[StoredDocument | None] = []
            for candidate in candidates:
                row = conn.execute(
                    f"SELECT {_COLUMNS} FROM document WHERE unique_id = ?",
                    (candidate.unique_id,),
                ).fetchone()
                existing.append(_document(row) if row else None)
            pairs = list(zip(candidates, existing, strict=True))
            if any(old is not None and not accept(new, old) for new, old in pairs):
                return existing
            for new, old in pairs:
                if old is None:
                    row = replace(new, state=PENDING, owner=owner, created=now)
                    conn.execute(
                        f"INSERT INTO document ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        _values(row),
                    )
            return existing

    def confirm(self, unique_ids: Sequence[str]) -> None:
        """Mark rows ``confirmed`` (the registry lists them)."""
        self._set_state(unique_ids, CONFIRMED)

    def mark_unresolved(self, unique_ids: Sequence[str]) -> None:
        """Mark not-yet-confirmed rows ``unresolved`` (outcome unknown; ask the registry later)."""
        self._set_state(unique_ids, UNRESOLVED)

    def remove(self, unique_ids: Sequence[str]) -> None:
        """Delete not-yet-confirmed rows (a confirmed row is never removed here)."""
        with self._write() as conn:
            conn.executemany(
                "DELETE FROM document WHERE unique_id = ? AND state <> 'confirmed'",
                [(u,) for u in unique_ids],
            )

    def _set_state(self, unique_ids: Sequence[str], state: str) -> None:
        with self._write() as conn:
            conn.executemany(
                "UPDATE document SET state = ? WHERE unique_id = ? AND state <> 'confirmed'",
                [(state, u) for u in unique_ids],
            )


def _values(doc: StoredDocument) -> tuple[object, ...]:
    return (
        doc.unique_id,
        doc.storage_key,
        doc.hash,
        doc.size,
        doc.mime_type,
        doc.state,
        doc.owner,
        doc.created,
    )


def _document(row: tuple[object, ...]) -> StoredDocument:
    unique_id, key, hash_, size, mime, state, owner, created = row
    return StoredDocument(
        unique_id=str(unique_id),
        storage_key=str(key),
        hash=str(hash_),
        size=int(size),  # type: ignore[call-overload]
        mime_type=str(mime),
        state=str(state),
        owner=str(owner),
        created=float(created),  # type: ignore[arg-type]
    )
