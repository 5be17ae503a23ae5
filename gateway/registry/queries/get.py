"""The Get queries that select objects by entryUUID or uniqueId, and what hangs off them.

GetDocuments, GetFolders, GetAssociations, GetDocumentsAndAssociations, GetSubmissionSets,
GetFoldersForDocument, GetRelatedDocuments. They select across patients (a LeafClass answer that
spans patients is refused afterwards, see ``result.py``) and regardless of availabilityStatus.

Standard: ITI TF-2 §3.18.4.1.2.3.7.5-§3.18.4.1.2.3.7.9, §3.18.4.1.2.3.7.12,
§3.18.4.1.2.3.7.13, rev. 19.0.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, and_, exists, or_, select

from gateway.metadata import vocabulary as v
from gateway.registry.queries import sql
from gateway.registry.queries import table as t
from gateway.registry.queries.request import Params
from gateway.registry.queries.sql import Found, Scope
from gateway.registry.schema import association, document_entry, folder, submission_set

HAS_MEMBER = str(v.HAS_MEMBER)


def _listed(params: Params, name: str) -> list[str] | None:
    """The values of an id parameter as a list, whether the query makes it single or multiple."""
    value = params.values.get(name)
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def by_id(params: Params, entries: Table, uuid_name: str, uid_name: str) -> ColumnElement[bool]:
    """``id IN entryUUIDs`` or ``unique_id IN uniqueIds``, whichever "R*" parameter was given.

    Standard: ITI TF-2 §3.18.4.1.2.3.7 (parameters marked R*: exactly one is given).
    """
    uuids = _listed(params, uuid_name)
    if uuids is not None:
        return sql.one_of(entries.c.id, uuids)
    return sql.one_of(entries.c.unique_id, _listed(params, uid_name) or [])


def get_documents(scope: Scope, params: Params) -> Found:
    """GetDocuments: DocumentEntries by entryUUID, uniqueId or logicalID, any status and type.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.5 ($XDSDocumentEntryLogicalID: Metadata Update option).
    Raises: XDSTooManyResults.
    """
    logical_ids = _listed(params, t.DE_LOGICAL_ID)
    if logical_ids is not None:  # Metadata Update option: every version of the logical entries
        condition = sql.one_of(document_entry.c.logical_id, logical_ids)
    else:
        condition = by_id(params, document_entry, t.DE_ENTRY_UUID, t.DE_UNIQUE_ID)
    return Found(documents=sql.fetch(scope, document_entry, condition))


def get_folders(scope: Scope, params: Params) -> Found:
    """GetFolders: Folders by entryUUID or uniqueId.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.6. Raises: XDSTooManyResults.
    """
    logical_ids = _listed(params, t.FOL_LOGICAL_ID)
    if logical_ids is not None:  # Metadata Update option: every version of the logical Folders
        condition = sql.one_of(folder.c.logical_id, logical_ids)
    else:
        condition = by_id(params, folder, t.FOL_ENTRY_UUID, t.FOL_UNIQUE_ID)
    return Found(folders=sql.fetch(scope, folder, condition))


def touching(ids: list[str]) -> ColumnElement[bool]:
    """Associations whose sourceObject or targetObject is one of ``ids``."""
    return or_(association.c.source_id.in_(ids), association.c.target_id.in_(ids))


def get_associations(scope: Scope, params: Params) -> Found:
    """GetAssociations: every Association with one of the $uuid objects as source or target.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.7. Raises: XDSTooManyResults.
    """
    ids = params.many(t.UUIDS) or []
    return Found(associations=sql.fetch(scope, association, touching(ids)))


def get_documents_and_associations(scope: Scope, params: Params) -> Found:
    """GetDocumentsAndAssociations: the DocumentEntries and every Association touching them.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.8. Raises: XDSTooManyResults.
    """
    found = get_documents(scope, params)
    ids = sql.ids_of(found.documents)
    if ids:
        found.associations = sql.fetch(scope, association, touching(ids))
    sql.check_limit(scope, found.count())
    return found


def get_submission_sets(scope: Scope, params: Params) -> Found:
    """GetSubmissionSets: the SubmissionSets holding the $uuid objects, with those HasMembers.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.9. Raises: XDSTooManyResults.
    """
    ids = params.many(t.UUIDS) or []
    a, ss = association, submission_set
    membership = and_(a.c.association_type == HAS_MEMBER, a.c.target_id.in_(ids))
    owners = select(a.c.source_id).where(membership)
    found = Found(submission_sets=sql.fetch(scope, ss, ss.c.id.in_(owners)))
    ss_ids = sql.ids_of(found.submission_sets)
    if ss_ids:
        found.associations = sql.fetch(scope, a, membership, a.c.source_id.in_(ss_ids))
    sql.check_limit(scope, found.count())
    return found


def _document_ids(params: Params) -> Any:
    """The ids of the one document of GetFoldersForDocument / GetRelatedDocuments (SQL)."""
    uuid = params.one(t.DE_ENTRY_UUID)
    if uuid is not None:
        return [uuid]
    return select(document_entry.c.id).where(
        document_entry.c.unique_id == params.one(t.DE_UNIQUE_ID)
    )


def get_folders_for_document(scope: Scope, params: Params) -> Found:
    """GetFoldersForDocument: the Folders that hold the document (Folder HasMember it).

    Standard: ITI TF-2 §3.18.4.1.2.3.7.12. Raises: XDSTooManyResults.
    """
    a = association
    holders = select(a.c.source_id).where(
        a.c.association_type == HAS_MEMBER, a.c.target_id.in_(_document_ids(params))
    )
    return Found(folders=sql.fetch(scope, folder, folder.c.id.in_(holders)))


def get_related_documents(scope: Scope, params: Params) -> Found:
    """GetRelatedDocuments: the document, the DocumentEntries related to it by one of the
    $AssociationTypes (either direction), and those Associations; nothing when none is related.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.13. Raises: XDSTooManyResults.
    """
    types = params.many(t.DE_TYPE)
    de, a = document_entry, association
    originals = sql.fetch(
        scope, de, de.c.id.in_(_document_ids(params)), *sql.document_type_filter(types)
    )
    original_ids = sql.ids_of(originals)
    if not original_ids:
        return Found()
    other = document_entry.alias("related")
    is_entry = sql.document_type_filter(types, other)
    outgoing = and_(
        a.c.source_id.in_(original_ids), exists().where(other.c.id == a.c.target_id, *is_entry)
    )
    incoming = and_(
        a.c.target_id.in_(original_ids), exists().where(other.c.id == a.c.source_id, *is_entry)
    )
    # The short names of ebRIM 2.1 ("RPLC") still appear in old consumers; ebRIM 3.0 stores URNs.
    wanted = [v.SHORT_ASSOCIATION_TYPES.get(x, x) for x in params.many(t.ASSOCIATION_TYPES) or []]
    links = sql.fetch(scope, a, a.c.association_type.in_(wanted), or_(outgoing, incoming))
    if not links:
        return Found()
    ends = {row["source_id"] for row in links} | {row["target_id"] for row in links}
    related = sql.fetch(scope, de, de.c.id.in_(sorted(ends - set(original_ids))))
    found = Found(documents=sql.unique([*originals, *related]), associations=links)
    sql.check_limit(scope, found.count())
    return found
