"""One-time import of the index file of earlier versions into the gateway database.

Before the index moved into the gateway database (so that several processes share it), the
repository kept it in ``<data_dir>/repository/index.sqlite`` (stdlib ``sqlite3``, one table
``document`` with the same columns). At start the rows of such a file are copied into
``repository_document`` (rows already there are kept as they are), then the file is renamed
``index.sqlite.imported`` so the import happens once and nothing is lost: confirmed documents
stay served, unsettled ones are resolved as before (their owners, runs of the old process, have no
lease, so they count as gone).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from gateway.repository.index import RepositoryIndex, StoredDocument

log = logging.getLogger("gateway.repository")

LEGACY_NAME = "index.sqlite"
IMPORTED_SUFFIX = ".imported"
_COLUMNS = "unique_id, storage_key, hash, size, mime_type, state, owner, created"


def import_legacy_index(path: Path, index: RepositoryIndex) -> int:
    """Copy the rows of the old index file at ``path`` (if there is one) into ``index`` and
    rename the file; return how many rows were inserted."""
    if not path.is_file():
        return 0
    # Opened read-write on purpose: closing the last connection checkpoints a WAL that a crash
    # left behind into the file itself, so renaming that one file moves every row.
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(f"SELECT {_COLUMNS} FROM document").fetchall()
    except sqlite3.OperationalError as exc:  # not an index of ours: leave it alone, loudly
        log.error("cannot import the old repository index %s: %s", path, exc)
        return 0
    finally:
        connection.close()
    inserted = index.insert_imported([_document(row) for row in rows])
    target = path.with_name(path.name + IMPORTED_SUFFIX)
    os.replace(path, target)
    log.warning(
        "imported %d of %d row(s) of the old repository index %s into the gateway database "
        "(file renamed %s)",
        inserted,
        len(rows),
        path,
        target.name,
    )
    return inserted


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
