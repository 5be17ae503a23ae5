"""The repository's own index: which uniqueIds it holds, where, with which hash, and in which state.

One table of the gateway database, ``repository_document`` (``schema.py``), shared by every
gateway process on that database. ``state`` is the point of the table (see
``gateway.repository.actor`` for the whole protocol):

- ``pending``: reserved by an ITI-41 in flight in process ``owner``; its file may or may not be
  in place; never served.
- ``unresolved``: the registration outcome is unknown (the registry could not be reached or
  answered neither Success nor Failure); never served; resolved later by asking the registry,
  by ``owner`` while its lease holds, else by whichever process takes the row over.
- ``confirmed``: the registry acknowledged the registration; served by ITI-43; never removed.

The primary key makes a uniqueId's reservation exclusive (two requests storing the same uniqueId
at once, in one process or two: one wins, the other sees the row), so no in-process lock stands in
for it; the storage key is unique too, so a reservation also locks the file's name (the orphan
sweep reserves a name before it deletes the file). Another owner's row is only taken over when
that owner's lease has expired, tested in the statement that takes it (``database.leases``).

Durability: writes are committed before the caller touches files. On PostgreSQL a commit is
durable (``synchronous_commit``); on SQLite the index's write transactions run with
``synchronous=FULL``, so a committed reservation survives SIGKILL and power loss (SQLite
"Write-Ahead Logging" §"Durability") although the rest of the database uses NORMAL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.database.engine import write_transaction
from gateway.database.leases import owner_gone
from gateway.repository.schema import (
    CONFIRMED,
    PENDING,
    STATES,
    UNRESOLVED,
    repository_document,
)

__all__ = [
    "CONFIRMED",
    "ORPHAN_PREFIX",
    "PENDING",
    "STATES",
    "UNRESOLVED",
    "RepositoryIndex",
    "StoredDocument",
]

# Rows the orphan sweep reserves for a file no document names: "orphan:<storage key>".
ORPHAN_PREFIX = "orphan:"

_doc = repository_document.c


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

    @property
    def orphan(self) -> bool:
        """A reservation of the orphan sweep, not a document."""
        return self.unique_id.startswith(ORPHAN_PREFIX)


Accept = Callable[[StoredDocument, StoredDocument], bool]


class _Conflict(Exception):
    """A concurrent reservation won one of the candidates: roll back and report it."""


class RepositoryIndex:
    """The index in the database of ``engine`` (table made by the gateway's migrations)."""

    def __init__(self, engine: Engine) -> None:
        if engine.dialect.name not in {"sqlite", "postgresql"}:
            raise ValueError(f"unsupported database {engine.dialect.name}: SQLite or PostgreSQL")
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._insert = sqlite.insert if self._sqlite else postgresql.insert

    def close(self) -> None:
        """Nothing to close: the engine belongs to the gateway (kept for the actor's stop())."""

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with write_transaction(self.engine, durable=True) as conn:
            yield conn

    # -- reads --------------------------------------------------------------------------------
    def get(self, unique_id: str) -> StoredDocument | None:
        """The row of a uniqueId, whatever its state, or None."""
        with self.engine.connect() as conn:
            return _get(conn, unique_id)

    def unsettled(self, *, owner: str, created_before: float) -> list[StoredDocument]:
        """Rows ``owner`` must find the registration outcome of, created before the given time
        (``time.time()`` scale), oldest first: its own ``unresolved`` rows, and every unsettled
        row of owners whose lease is gone (crashed or stopped processes). Other live owners'
        rows are theirs: a ``pending`` row of a live process is an ITI-41 in flight."""
        mine = and_(_doc.owner == owner, _doc.state == UNRESOLVED)
        abandoned = and_(_doc.owner != owner, _doc.state != CONFIRMED, owner_gone(_doc.owner))
        query = (
            select(repository_document)
            .where(_doc.created <= created_before)
            .where(or_(mine, abandoned))
            .order_by(_doc.created)
        )
        with self.engine.connect() as conn:
            return [_document(row) for row in conn.execute(query)]

    def storage_keys(self) -> set[str]:
        """The storage keys of every row, whatever its state."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(_doc.storage_key)).scalars())

    def counts(self) -> dict[str, int]:
        """Number of rows in each state (orphan-sweep reservations not counted)."""
        query = (
            select(_doc.state, func.count())
            .where(_doc.unique_id.not_like(f"{ORPHAN_PREFIX}%"))
            .group_by(_doc.state)
        )
        with self.engine.connect() as conn:
            found = {state: int(count) for state, count in conn.execute(query)}
        return {state: found.get(state, 0) for state in STATES}

    # -- writes -------------------------------------------------------------------------------
    def reserve(
        self, candidates: Sequence[StoredDocument], *, owner: str, now: float, accept: Accept
    ) -> list[StoredDocument | None]:
        """Insert a ``pending`` row (owned by ``owner``) for every candidate whose uniqueId has
        no row yet; return, per candidate, the row that already existed (None when inserted).

        All or nothing: when ``accept(candidate, existing)`` is false for some existing row, or
        another process reserved one of the candidates at the same moment, nothing is inserted
        (the caller reports the conflict; a row reserved concurrently is ``pending``).
        """
        try:
            with self._write() as conn:
                existing = [_get(conn, candidate.unique_id) for candidate in candidates]
                pairs = list(zip(candidates, existing, strict=True))
                if any(old is not None and not accept(new, old) for new, old in pairs):
                    return existing
                for new, old in pairs:
                    if old is None and not self._insert_row(
                        conn, replace(new, state=PENDING, owner=owner, created=now)
                    ):
                        raise _Conflict
                return existing
        except _Conflict:
            pass
        # Someone reserved a candidate (or its storage key) between our read and our insert.
        with self.engine.connect() as conn:
            found = [_get(conn, candidate.unique_id) for candidate in candidates]
        return [
            row if row is not None else replace(candidate, state=PENDING, owner="")
            for candidate, row in zip(candidates, found, strict=True)
        ]

    def reserve_orphan(self, storage_key: str, *, owner: str, now: float) -> bool:
        """Reserve the name of a file no row names, so that it may be deleted; False when a
        reservation of that storage key exists (a document is being stored under it)."""
        row = StoredDocument(
            unique_id=f"{ORPHAN_PREFIX}{storage_key}",
            storage_key=storage_key,
            hash="",
            size=0,
            mime_type="",
            state=PENDING,
            owner=owner,
            created=now,
        )
        with self._write() as conn:
            return self._insert_row(conn, row)

    def take_over(self, row: StoredDocument, *, owner: str) -> bool:
        """Make ``owner`` the owner of an unsettled row whose owner's lease is gone (state
        ``unresolved``: its outcome is to be found out); False when the row changed meanwhile,
        was settled, or its owner turned out to be alive."""
        if row.owner == owner:
            return True
        statement = (
            update(repository_document)
            .where(_doc.unique_id == row.unique_id)
            .where(_doc.owner == row.owner)
            .where(_doc.state != CONFIRMED)
            .where(owner_gone(_doc.owner))
            .values(owner=owner, state=UNRESOLVED)
        )
        with self._write() as conn:
            return bool(conn.execute(statement).rowcount)

    def confirm(self, unique_ids: Sequence[str]) -> None:
        """Mark rows ``confirmed`` (the registry lists them), whoever owns them."""
        self._set_state(unique_ids, CONFIRMED, owner=None)

    def mark_unresolved(self, unique_ids: Sequence[str], *, owner: str) -> None:
        """Mark ``owner``'s not-yet-confirmed rows ``unresolved`` (outcome unknown; ask the
        registry later)."""
        self._set_state(unique_ids, UNRESOLVED, owner=owner)

    def remove(self, unique_ids: Sequence[str], *, owner: str) -> None:
        """Delete ``owner``'s not-yet-confirmed rows (a confirmed row is never removed here)."""
        if not unique_ids:
            return
        statement = (
            delete(repository_document)
            .where(_doc.unique_id.in_(list(unique_ids)))
            .where(_doc.state != CONFIRMED)
            .where(_doc.owner == owner)
        )
        with self._write() as conn:
            conn.execute(statement)

    def _set_state(self, unique_ids: Sequence[str], state: str, *, owner: str | None) -> None:
        if not unique_ids:
            return
        statement = (
            update(repository_document)
            .where(_doc.unique_id.in_(list(unique_ids)))
            .where(_doc.state != CONFIRMED)
            .values(state=state)
        )
        if owner is not None:
            statement = statement.where(_doc.owner == owner)
        with self._write() as conn:
            conn.execute(statement)

    def _insert_row(self, conn: Connection, row: StoredDocument) -> bool:
        """Insert unless the uniqueId or the storage key is taken; True when inserted."""
        statement = self._insert(repository_document).values(**_values(row))
        return bool(conn.execute(statement.on_conflict_do_nothing()).rowcount)

    def insert_imported(self, rows: Sequence[StoredDocument]) -> int:
        """Insert rows of an older index as they are (those already present are kept); return
        how many were inserted (``gateway.repository.legacy``)."""
        inserted = 0
        with self._write() as conn:
            for row in rows:
                inserted += self._insert_row(conn, row)
        return inserted


def _get(conn: Connection, unique_id: str) -> StoredDocument | None:
    row = conn.execute(select(repository_document).where(_doc.unique_id == unique_id)).first()
    return None if row is None else _document(row)


def _values(doc: StoredDocument) -> dict[str, Any]:
    return {
        "unique_id": doc.unique_id,
        "storage_key": doc.storage_key,
        "hash": doc.hash,
        "size": doc.size,
        "mime_type": doc.mime_type,
        "state": doc.state,
        "owner": doc.owner,
        "created": doc.created,
    }


def _document(row: Any) -> StoredDocument:
    m = row._mapping
    return StoredDocument(
        unique_id=str(m["unique_id"]),
        storage_key=str(m["storage_key"]),
        hash=str(m["hash"]),
        size=int(m["size"]),
        mime_type=str(m["mime_type"]),
        state=str(m["state"]),
        owner=str(m["owner"]),
        created=float(m["created"]),
    )
