"""Where a submission collides with registry content: entryUUIDs and uniqueIds already taken.

Used inside the registering transaction (``rules.check_submission``) and, after a concurrent
submission won a constraint (IntegrityError), to say which one (``store.py``).

Standard: ITI TF-3 Table 4.2.4.1-2 (XDSDuplicateUniqueIdInRegistry for SubmissionSet and Folder
uniqueIds; XDSNonIdenticalHash / XDSNonIdenticalSize for a DocumentEntry uniqueId registered
with other content, NIST 12004), ITI TF-3 §4.2.3.2 (entryUUID unique; NIST 15806).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Table, select

from gateway.errors import (
    XDSDuplicateUniqueIdInRegistry,
    XDSError,
    XDSNonIdenticalHash,
    XDSNonIdenticalSize,
    XDSRegistryMetadataError,
)
from gateway.metadata.model import Folder, Submission, SubmissionSet
from gateway.registry.schema import (
    association,
    document_entry,
    document_unique_id,
    folder,
    submission_set,
)

__all__ = [
    "Found",
    "document_unique_ids",
    "find_objects",
    "registered_document_unique_ids",
    "registry_conflicts",
]

DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, ASSOCIATION = (
    "DocumentEntry",
    "Folder",
    "SubmissionSet",
    "Association",
)
_TABLES: tuple[tuple[str, Table], ...] = (
    (DOCUMENT_ENTRY, document_entry),
    (FOLDER, folder),
    (SUBMISSION_SET, submission_set),
    (ASSOCIATION, association),
)


@dataclass(frozen=True, slots=True)
class Found:
    """A registry object referenced by a submission."""

    kind: str
    id: str
    status: str
    patient_id: str | None  # None for Associations


def find_objects(conn: Connection, ids: set[str], *, lock: bool = False) -> dict[str, Found]:
    """Look ``ids`` up in the four object tables.

    ``lock`` locks found DocumentEntries (PostgreSQL ``FOR UPDATE``; SQLite's write transaction
    already excludes other writers) until this transaction ends: a concurrent replacement waits,
    then sees them as this transaction left them (CP-ITI-117 dependents included). An exclusive
    lock, because a shared one would deadlock two replacements that both upgrade it.
    """
    found: dict[str, Found] = {}
    remaining = set(ids)
    for kind, table in _TABLES:
        if not remaining:
            break
        patient_col = table.c.patient_id if "patient_id" in table.c else None
        columns = [table.c.id, table.c.status]
        if patient_col is not None:
            columns.append(patient_col)
        query = select(*columns).where(table.c.id.in_(sorted(remaining)))
        if lock and kind == DOCUMENT_ENTRY:
            query = query.with_for_update()
        for row in conn.execute(query):
            patient_id = row[2] if patient_col is not None else None
            found[row.id] = Found(kind, row.id, row.status, patient_id)
        remaining -= found.keys()
    return found


def registry_conflicts(
    conn: Connection,
    submission: Submission,
    registered: dict[str, tuple[str, int | None]] | None = None,
) -> list[XDSError]:
    """Objects of the submission that clash with registry content: reused entryUUIDs and
    uniqueIds. Also used after an IntegrityError to say which constraint a concurrent
    submission won.

    Standard: ITI TF-3 Table 4.2.4.1-2 (XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash,
    XDSNonIdenticalSize), ITI TF-3 §4.2.3.2 (entryUUID unique).
    ``registered`` is :func:`registered_document_unique_ids` of the submission when the caller
    has read it already (its decision must rest on the same read).
    """
    errors: list[XDSError] = []
    ids = {obj.entry_uuid for obj in submission.objects() if obj.entry_uuid}
    ids -= {ref.entry_uuid for ref in submission.object_refs}
    for existing in find_objects(conn, ids).values():
        errors.append(
            XDSRegistryMetadataError(
                f"{existing.kind} {existing.id}: this entryUUID "
                "is already used by an object in the registry; ids must be unique",
                location=existing.id,
            )
        )
    if registered is None:
        registered = registered_document_unique_ids(conn, document_unique_ids(submission))
    errors.extend(_unique_id_conflicts(conn, submission, registered))
    return errors


def registered_document_unique_ids(
    conn: Connection, unique_ids: set[str]
) -> dict[str, tuple[str, int | None]]:
    """``{uniqueId: (hash, size)}`` of the DocumentEntry uniqueIds already registered."""
    if not unique_ids:
        return {}
    query = select(
        document_unique_id.c.unique_id, document_unique_id.c.hash, document_unique_id.c.size
    ).where(document_unique_id.c.unique_id.in_(sorted(unique_ids)))
    return {row.unique_id: (row.hash, row.size) for row in conn.execute(query)}


def document_unique_ids(submission: Submission) -> set[str]:
    return {e.unique_id for e in submission.document_entries if e.unique_id}


def _unique_id_conflicts(
    conn: Connection, submission: Submission, registered: dict[str, tuple[str, int | None]]
) -> list[XDSError]:
    errors: list[XDSError] = []
    packages: list[tuple[str, Table, SubmissionSet | Folder]] = [
        (FOLDER, folder, f) for f in submission.folders
    ]
    if submission.submission_set:
        packages.insert(0, (SUBMISSION_SET, submission_set, submission.submission_set))
    for kind, table, obj in packages:
        if obj is None or not obj.unique_id:
            continue
        taken = conn.execute(select(table.c.id).where(table.c.unique_id == obj.unique_id)).first()
        if taken is not None:
            errors.append(
                XDSDuplicateUniqueIdInRegistry(
                    f"{kind} uniqueId {obj.unique_id} is already registered (by {taken.id})",
                    location=obj.entry_uuid,
                )
            )
    for entry in submission.document_entries:
        row = registered.get(entry.unique_id or "")
        if row is None:
            continue
        known_hash, known_size = row
        if (entry.hash or "").lower() != known_hash.lower():
            errors.append(
                XDSNonIdenticalHash(
                    f"DocumentEntry uniqueId {entry.unique_id} is already registered with hash "
                    f"{known_hash}, not {entry.hash}",
                    location=entry.entry_uuid,
                )
            )
        if known_size is not None and entry.size != known_size:
            errors.append(
                XDSNonIdenticalSize(
                    f"DocumentEntry uniqueId {entry.unique_id} is already registered with size "
                    f"{known_size}, not {entry.size}",
                    location=entry.entry_uuid,
                )
            )
    return errors
