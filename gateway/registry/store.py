"""The write side of the registry: one submission = one database transaction, all or nothing.

:meth:`RegistryStore.register` checks the submission against the registry (``rules.py``),
inserts its objects with their side-table rows, applies the lifecycle effects (deprecations,
replacement joining the original's folders, Folder lastUpdateTime) and commits; any error rolls
everything back (ITI TF-2 §3.42.4.1.3: the registry accepts the whole submission or none of it;
NIST 12084).

Concurrency (several threads, several processes on one PostgreSQL): the database constraints
decide. SubmissionSet and Folder uniqueIds are UNIQUE, ``document_unique_id`` has one row per
DocumentEntry uniqueId, entryUUIDs are primary keys. A submission that loses a race gets an
``IntegrityError``; it is translated where it enters (``raise ... from exc``) into the XDS error
the winner's rows now cause (XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash,
XDSNonIdenticalSize, XDSRegistryMetadataError), or retried when nothing conflicts any more (two
identical resubmissions of one document at once). Deadlocks and lock timeouts are retried and
end as XDSRegistryBusy. On PostgreSQL the checks and writes of one attempt share one snapshot
(REPEATABLE READ), so all rules judge the same registry state and a concurrent change to a row
this submission updates (a replaced original, a Folder's lastUpdateTime) makes the attempt retry
(SQLSTATE 40001) instead of acting on stale data.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, insert, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.errors import (
    XDSError,
    XDSErrorList,
    XDSRegistryBusy,
    XDSRegistryDeprecatedDocumentError,
    XDSRegistryError,
)
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import format_dtm
from gateway.metadata.model import (
    Association,
    DocumentEntry,
    Folder,
    ObjectRef,
    Submission,
    SubmissionSet,
)
from gateway.registry import rows
from gateway.registry.conflicts import registry_conflicts
from gateway.registry.database import Database
from gateway.registry.rules import Plan, check_submission
from gateway.registry.schema import (
    association,
    document_entry,
    document_unique_id,
    folder,
    object_author,
    object_code,
    reference_id,
    submission_set,
)

log = logging.getLogger(__name__)

__all__ = ["RegistrationResult", "RegistryStore", "busy_as_xds"]

# PostgreSQL SQLSTATEs worth a retry: serialization_failure, deadlock_detected, lock_not_available.
_TRANSIENT_PG = frozenset({"40001", "40P01", "55P03"})


@dataclass(slots=True, kw_only=True)
class RegistrationResult:
    """What one committed registration did."""

    submission_set_id: str
    document_entry_ids: list[str] = field(default_factory=list)
    folder_ids: list[str] = field(default_factory=list)
    association_ids: list[str] = field(default_factory=list)
    deprecated: list[str] = field(default_factory=list)  # DocumentEntries set to Deprecated
    created_associations: list[Association] = field(default_factory=list)  # made by the registry
    updated_folders: list[str] = field(default_factory=list)  # lastUpdateTime set, besides new
    warnings: list[XDSError] = field(default_factory=list)


class RegistryStore:
    """Registers submissions in a :class:`~gateway.registry.database.Database`."""

    def __init__(self, db: Database, *, attempts: int = 5) -> None:
        self.db = db
        self.attempts = attempts

    def register(
        self,
        submission: Submission,
        *,
        now: datetime,
        within: Callable[[Connection, Submission], None] | None = None,
    ) -> RegistrationResult:
        """Store a validated submission whose ids are all ``urn:uuid:``; all of it or nothing.

        ``now`` is the registration time (Folder lastUpdateTime); ``within`` is called in the
        registration's transaction once it is written (its writes commit with it, or not at
        all). The submission's objects get availabilityStatus Approved (and Folders
        lastUpdateTime); they are changed in place.
        Standard: ITI TF-2 §3.42.4.1.3; ITI TF-3 §4.2.2, §4.2.3.2 availabilityStatus,
        §4.2.3.4 lastUpdateTime.
        Raises: XDSErrorList (see ``rules.check_submission``), XDSRegistryDeprecatedDocumentError
        (an original replaced concurrently), XDSRegistryBusy, XDSRegistryError.
        """
        if submission.submission_set is None:
            raise ValueError("a validated submission has a SubmissionSet")
        _mark_registered(submission, now)
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                # One snapshot for every check: the rules and the plan see the same registry.
                with self.db.write(snapshot=True) as conn:
                    plan = check_submission(conn, submission)
                    result = _write(conn, submission, plan, now)
                    if within is not None:
                        within(conn, submission)
                    return result
            except IntegrityError as exc:
                conflicts = self._conflicts(submission)
                if conflicts:
                    raise XDSErrorList(conflicts) from exc
                log.info("registration lost a race without conflict (attempt %d): retry", attempt)
                last = exc
                _pause(attempt)
            except OperationalError as exc:
                if _sqlite_busy(exc):  # busy_timeout has waited already: no point retrying
                    raise XDSRegistryBusy(
                        "the registry database stayed locked; try again later"
                    ) from exc
                if not _transient(exc):
                    raise
                log.info("registration attempt %d met a concurrent update: %s", attempt, exc.orig)
                last = exc
                _pause(attempt)
        if isinstance(last, OperationalError):
            raise XDSRegistryBusy(
                "the registry is too busy to register the submission now; try again"
            ) from last
        raise XDSRegistryError("the submission could not be registered; try again") from last

    def _conflicts(self, submission: Submission) -> list[XDSError]:
        """After an IntegrityError: which registry content the submission now collides with."""
        with self.db.read() as conn:
            return registry_conflicts(conn, submission)


def _mark_registered(submission: Submission, now: datetime) -> None:
    """Set what the registry assigns on registration.

    Standard: ITI TF-3 §4.2.3.2 availabilityStatus, §4.2.3.4 lastUpdateTime.
    """
    stamp = format_dtm(now)
    for obj in submission.objects():
        if not isinstance(obj, ObjectRef):
            obj.availability_status = v.STATUS_APPROVED
    for new_folder in submission.folders:
        new_folder.last_update_time = stamp  # whatever the source sent (NIST 12323)


def _write(
    conn: Connection, submission: Submission, plan: Plan, now: datetime
) -> RegistrationResult:
    """Insert the submission's rows and apply the plan, inside the caller's transaction."""
    assert submission.submission_set is not None
    ss = submission.submission_set
    seq = time.time_ns()
    result = RegistrationResult(submission_set_id=ss.entry_uuid)
    conn.execute(insert(submission_set), [rows.submission_set_row(ss, seq=seq)])
    side = _SideRows()
    side.add(ss)
    if submission.folders:
        folder_rows = []
        for new_folder in submission.folders:
            seq += 1
            folder_rows.append(rows.folder_row(new_folder, seq=seq))
            side.add(new_folder)
            result.folder_ids.append(new_folder.entry_uuid)
        conn.execute(insert(folder), folder_rows)
    if submission.document_entries:
        entry_rows = []
        for entry in submission.document_entries:
            seq += 1
            entry_rows.append(
                rows.document_entry_row(entry, submission_set_id=ss.entry_uuid, seq=seq)
            )
            side.add(entry)
            result.document_entry_ids.append(entry.entry_uuid)
        conn.execute(insert(document_entry), entry_rows)
        _insert_unique_ids(conn, submission, plan)
    created = [
        Association(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}",
            association_type=v.HAS_MEMBER,
            source_object=folder_id,
            target_object=replacement,
            availability_status=v.STATUS_APPROVED,
        )
        for folder_id, replacement in plan.folder_links
    ]
    assoc_rows = []
    for assoc in [*submission.associations, *created]:
        seq += 1
        assoc_rows.append(rows.association_row(assoc, seq=seq))
    if assoc_rows:
        conn.execute(insert(association), assoc_rows)
    result.association_ids = [a.entry_uuid for a in submission.associations]
    result.created_associations = created
    side.insert(conn)
    _apply_lifecycle(conn, plan, now, result)
    return result


class _SideRows:
    """object_code / object_author / reference_id rows collected for one bulk insert each."""

    def __init__(self) -> None:
        self.codes: list[dict[str, str]] = []
        self.authors: list[dict[str, str]] = []
        self.references: list[dict[str, str]] = []

    def add(self, obj: object) -> None:
        if isinstance(obj, DocumentEntry | SubmissionSet | Folder):
            self.codes.extend(rows.code_rows(obj))
        if isinstance(obj, DocumentEntry | SubmissionSet):
            self.authors.extend(rows.author_rows(obj))
        if isinstance(obj, DocumentEntry):
            self.references.extend(rows.reference_id_rows(obj))

    def insert(self, conn: Connection) -> None:
        for table, values in (
            (object_code, self.codes),
            (object_author, self.authors),
            (reference_id, self.references),
        ):
            if values:
                conn.execute(insert(table), values)


def _insert_unique_ids(conn: Connection, submission: Submission, plan: Plan) -> None:
    """Insert the ``document_unique_id`` rows of the uniqueIds that were new when checked.

    The decision is the check's, not a second look: under READ COMMITTED a second SELECT could
    see a row a concurrent submission committed meanwhile, with another hash. Inserting anyway
    makes the primary key refuse it (IntegrityError, translated by the caller). An identical
    resubmission found by the check reuses the existing row (NIST 12004).
    """
    entries = {e.unique_id: e for e in submission.document_entries if e.unique_id}
    new_rows = [
        {"unique_id": uid, "hash": (entries[uid].hash or "").lower(), "size": entries[uid].size}
        for uid in plan.new_document_unique_ids
    ]
    if new_rows:
        conn.execute(insert(document_unique_id), new_rows)


def _apply_lifecycle(
    conn: Connection, plan: Plan, now: datetime, result: RegistrationResult
) -> None:
    """Deprecate replaced originals and their addenda/transforms; stamp touched Folders.

    Standard: ITI TF-2 §3.42.4.1.3, ITI TF-3 §4.2.2 (RPLC, XFRM_RPLC), CP-ITI-117; ITI TF-3
    §4.2.3.4 (lastUpdateTime). Raises: XDSRegistryDeprecatedDocumentError when an original
    stopped being Approved after it was checked (a concurrent replacement won).
    """
    for original in plan.replaced:
        changed = conn.execute(
            update(document_entry)
            .where(document_entry.c.id == original, document_entry.c.status == v.STATUS_APPROVED)
            .values(status=v.STATUS_DEPRECATED)
        )
        if changed.rowcount != 1:
            raise XDSRegistryDeprecatedDocumentError(
                f"DocumentEntry {original} was replaced by another submission in the meantime",
                location=original,
            )
        result.deprecated.append(original)
    if plan.dependents:
        conn.execute(
            update(document_entry)
            .where(
                document_entry.c.id.in_(plan.dependents),
                document_entry.c.status == v.STATUS_APPROVED,
            )
            .values(status=v.STATUS_DEPRECATED)
        )
        result.deprecated.extend(plan.dependents)
    if plan.touched_folders:
        conn.execute(
            update(folder)
            .where(folder.c.id.in_(plan.touched_folders))
            .values(last_update_time=format_dtm(now))
        )
        result.updated_folders = list(plan.touched_folders)


@contextmanager
def busy_as_xds() -> Iterator[None]:
    """Turn a write that met a concurrent one (PostgreSQL serialisation failure, deadlock or lock
    timeout; SQLite still locked after its busy timeout) into XDSRegistryBusy, which the sender
    may retry; the transaction has rolled back. For the registry operations (ITI-57, ITI-62),
    which do not retry by themselves. Standard: ITI TF-3 Table 4.2.4.1-2 (XDSRegistryBusy)."""
    try:
        yield
    except OperationalError as exc:
        if _transient(exc) or _sqlite_busy(exc):
            raise XDSRegistryBusy("the registry is busy with a concurrent change; retry") from exc
        raise


def _pause(attempt: int) -> None:
    """A short random wait before retrying, so that racing submissions do not collide again."""
    time.sleep(random.uniform(0, 0.01 * attempt))


def _transient(exc: OperationalError) -> bool:
    """A PostgreSQL conflict worth retrying: serialisation failure, deadlock, lock timeout."""
    return getattr(exc.orig, "pgcode", None) in _TRANSIENT_PG


def _sqlite_busy(exc: OperationalError) -> bool:
    """SQLite gave up waiting for the write lock ("database is locked")."""
    message = str(exc.orig).lower()
    return getattr(exc.orig, "pgcode", None) is None and ("locked" in message or "busy" in message)
