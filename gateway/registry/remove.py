"""ITI-62 Remove Metadata (Delete Document Set): the Document Registry side, all or nothing.

The request names entryUUIDs (DocumentEntries, SubmissionSets, Folders, Associations). The
registry removes exactly those objects, in one transaction, or nothing at all when the removal
would break the metadata model (ITI TF-2b §3.62.4.1.3, RMD supplement):

- every id names an object in the registry, else ``UnresolvedReferenceException``;
- no Association that stays may reference an object that goes (its sourceObject or
  targetObject), else ``ReferencesExistException`` (e.g. a SubmissionSet removed without its
  HasMember associations, an original removed while an APND or RPLC of it stays);
- no object that stays may be left unreferenced by the removal: a SubmissionSet whose every
  HasMember association goes, or a DocumentEntry, Folder or Association whose every
  SubmissionSet HasMember goes, else ``XDSUnreferencedObjectException``.

Removing a replacement does not re-approve what it replaced (the TF gives the registry no such
action). Removed DocumentEntries free their uniqueId (``document_unique_id``) when no other
DocumentEntry carries it, so the document may be registered again.

Standard: ITI TF-2b §3.62 (Remove Metadata and Documents, RMD), ebRS 3.0 §5.3 (RemoveObjects),
error codes ITI TF-3 Table 4.2.4.1-2.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, or_, select

from gateway.errors import (
    ReferencesExistException,
    UnresolvedReferenceException,
    XDSError,
    XDSErrorList,
    XDSUnreferencedObjectException,
)
from gateway.metadata import vocabulary as v
from gateway.metadata.removal import parse_remove_objects_request
from gateway.metadata.retrieve import build_registry_response, status_for
from gateway.registry.conflicts import find_objects
from gateway.registry.database import Database
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
from gateway.registry.store import busy_as_xds
from gateway.soap.dispatch import Context, Endpoint
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_62

TRANSACTION = ITI_62
ACTION = ITI_62.action  # urn:ihe:iti:2010:DeleteDocumentSet

log = logging.getLogger(__name__)

__all__ = ["ACTION", "TRANSACTION", "MetadataRemover", "RemovalResult", "bind", "handle"]

_KINDS = (
    ("DocumentEntry", document_entry),
    ("SubmissionSet", submission_set),
    ("Folder", folder),
    ("Association", association),
)


@dataclass(slots=True, kw_only=True)
class RemovalResult:
    """What one committed removal removed, by kind, and the patients it concerned."""

    removed: dict[str, list[str]] = field(default_factory=dict)  # kind -> entryUUIDs
    patient_ids: list[str] = field(default_factory=list)
    document_unique_ids: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many objects were removed."""
        return sum(len(ids) for ids in self.removed.values())


class MetadataRemover:
    """Removes registry objects by entryUUID (ITI-62; ``xdsi-gateway registry remove``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def remove(self, ids: Sequence[str]) -> RemovalResult:
        """Remove the objects ``ids`` name, all or none. Standard: ITI TF-2b §3.62.4.1.3.

        Raises: XDSErrorList of UnresolvedReferenceException, ReferencesExistException,
        XDSUnreferencedObjectException (nothing removed).
        """
        wanted = list(dict.fromkeys(ids))
        with busy_as_xds(), self.db.write(snapshot=True) as conn:
            found = _find(conn, wanted)
            errors: list[XDSError] = [
                UnresolvedReferenceException(
                    f"no object with id {object_id} in the registry", location=object_id
                )
                for object_id in wanted
                if object_id not in found
            ]
            if errors:
                raise XDSErrorList(errors)
            errors = _model_errors(conn, set(wanted))
            if errors:
                raise XDSErrorList(errors)
            result = _facts(conn, found)
            _delete(conn, found)
        log.info(
            "ITI-62 removed %d objects: %s",
            result.count,
            ", ".join(f"{len(ids)} {kind}" for kind, ids in result.removed.items() if ids),
        )
        return result

    def submission_contents(self, submission_set_id: str) -> list[str]:
        """The ids that make up one submission: the SubmissionSet (by entryUUID or uniqueId),
        its HasMember associations, the objects they add as Original (not those it only
        references, ``SubmissionSetStatus=Reference``), and the Folder membership associations
        the registry made for its replacements (which belong to no SubmissionSet). Empty when
        no such SubmissionSet exists. For ``xdsi-gateway registry remove --submission-set``.
        """
        ss = submission_set.c
        a = association.c
        with self.db.read() as conn:
            found = conn.execute(
                select(ss.id).where(
                    or_(ss.id == submission_set_id, ss.unique_id == submission_set_id)
                )
            ).scalar()
            if found is None:
                return []
            ids: dict[str, None] = {str(found): None}
            members = conn.execute(
                select(a.id, a.target_id, a.submission_set_status).where(
                    a.source_id == found, a.association_type == v.HAS_MEMBER
                )
            ).all()
            for assoc_id, target, status in members:
                ids.setdefault(str(assoc_id), None)
                if status != v.SUBMISSION_SET_STATUS_REFERENCE:
                    ids.setdefault(str(target), None)
            targets = [str(t) for _, t, status in members]
            in_sets = select(a.target_id).where(
                a.association_type == v.HAS_MEMBER, a.source_id.in_(select(ss.id))
            )
            made = conn.execute(
                select(a.id).where(
                    a.association_type == v.HAS_MEMBER,
                    a.target_id.in_(targets),
                    a.source_id.in_(select(folder.c.id)),
                    a.id.not_in(in_sets),
                )
            ).scalars()
            for assoc_id in made:
                ids.setdefault(str(assoc_id), None)
        return list(ids)


def _find(conn: Connection, ids: list[str]) -> dict[str, str]:
    """entryUUID -> kind for each id the registry holds (the registry's own object lookup)."""
    return {object_id: found.kind for object_id, found in find_objects(conn, set(ids)).items()}


def _model_errors(conn: Connection, gone: set[str]) -> list[XDSError]:
    """ReferencesExistException and XDSUnreferencedObjectException of removing ``gone``."""
    errors: list[XDSError] = []
    a = association.c
    touching = conn.execute(
        select(a.id, a.association_type, a.source_id, a.target_id).where(
            or_(a.source_id.in_(gone), a.target_id.in_(gone))
        )
    ).all()
    for assoc_id, _type, source, target in touching:
        if assoc_id in gone:
            continue
        for end in (source, target):
            if end in gone:
                errors.append(
                    ReferencesExistException(
                        f"{end} is referenced by association {assoc_id}, which is not removed",
                        location=end,
                    )
                )
    if errors:
        return errors
    # What removed SubmissionSet HasMember associations leave behind.
    ss_ids = set(
        conn.execute(
            select(submission_set.c.id).where(
                submission_set.c.id.in_({str(r.source_id) for r in touching})
            )
        ).scalars()
    )
    removed_members = [
        r
        for r in touching
        if r.id in gone and r.association_type == v.HAS_MEMBER and r.source_id in ss_ids
    ]
    for ss_id in sorted({str(r.source_id) for r in removed_members} - gone):
        if not _remaining_members(conn, source=ss_id, gone=gone):
            errors.append(
                XDSUnreferencedObjectException(
                    f"SubmissionSet {ss_id} would be left without any member", location=ss_id
                )
            )
    for member in sorted({str(r.target_id) for r in removed_members} - gone):
        if not _remaining_members(conn, target=member, gone=gone):
            errors.append(
                XDSUnreferencedObjectException(
                    f"{member} would be left in no SubmissionSet", location=member
                )
            )
    return errors


def _remaining_members(
    conn: Connection, *, gone: set[str], source: str = "", target: str = ""
) -> bool:
    """True when a SubmissionSet HasMember association outside ``gone`` has that end."""
    a = association.c
    query = select(a.id).where(a.association_type == v.HAS_MEMBER, a.id.not_in(gone))
    if source:
        query = query.where(a.source_id == source)
    else:
        query = query.where(a.target_id == target, a.source_id.in_(select(submission_set.c.id)))
    return conn.execute(query.limit(1)).first() is not None


def _facts(conn: Connection, found: dict[str, str]) -> RemovalResult:
    result = RemovalResult(removed={kind: [] for kind, _ in _KINDS})
    for object_id, kind in found.items():
        result.removed[kind].append(object_id)
    patients: dict[str, None] = {}
    for kind, table in _KINDS[:3]:
        ids = result.removed[kind]
        if ids:
            for patient in conn.execute(
                select(table.c.patient_id).where(table.c.id.in_(ids))
            ).scalars():
                patients.setdefault(str(patient), None)
    result.patient_ids = list(patients)
    entries = result.removed["DocumentEntry"]
    if entries:
        result.document_unique_ids = [
            str(uid)
            for uid in conn.execute(
                select(document_entry.c.unique_id).where(document_entry.c.id.in_(entries))
            ).scalars()
        ]
    return result


def _delete(conn: Connection, found: dict[str, str]) -> None:
    """Delete the rows of ``found`` and their side-table rows, inside the caller's transaction."""
    ids = list(found)
    for table in (object_code, object_author, reference_id):
        conn.execute(delete(table).where(table.c.object_id.in_(ids)))
    entries = [i for i, kind in found.items() if kind == "DocumentEntry"]
    unique_ids = (
        set(
            conn.execute(
                select(document_entry.c.unique_id).where(document_entry.c.id.in_(entries))
            ).scalars()
        )
        if entries
        else set()
    )
    for _kind, table in _KINDS:
        conn.execute(delete(table).where(table.c.id.in_(ids)))
    if unique_ids:
        still = set(
            conn.execute(
                select(document_entry.c.unique_id).where(document_entry.c.unique_id.in_(unique_ids))
            ).scalars()
        )
        free = unique_ids - still
        if free:
            conn.execute(delete(document_unique_id).where(document_unique_id.c.unique_id.in_(free)))


def handle(request: SoapRequest, ctx: Context, *, remover: MetadataRemover) -> SoapResponse:
    """Serve one ITI-62 request: lcm:RemoveObjectsRequest in, rs:RegistryResponse out.

    Errors propagate as XDSError to the SOAP boundary (a Failure RegistryResponse).
    Standard: ITI TF-2b §3.62.4.1, §3.62.4.2.
    """
    ids = parse_remove_objects_request(request.body)
    ctx.audit.update(reply_to=request.addressing.reply_to)
    result = remover.remove(ids)
    ctx.audit.update(patient_ids=result.patient_ids, document_unique_ids=result.document_unique_ids)
    return SoapResponse(body=build_registry_response(status_for([]), []))


def bind(endpoint: Endpoint, remover: MetadataRemover) -> None:
    """Bind the ITI-62 handler at the registry endpoint (``/xds/registry``)."""
    endpoint.bind(TRANSACTION, functools.partial(handle, remover=remover))
