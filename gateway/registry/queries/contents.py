"""The "contents" queries: GetAll, GetSubmissionSetAndContents, GetFolderAndContents.

They return a package of objects plus the Associations that bind it together:

- GetAll: the patient's DocumentEntries, SubmissionSets and Folders (each with its status list,
  the DocumentEntries also filtered by format, confidentiality and type) and the Associations
  between them, including the SubmissionSet HasMembers that point at such Associations;
- GetSubmissionSetAndContents: the SubmissionSet, its member DocumentEntries (filtered) and
  Folders, the HasMembers to them, and the member Associations (Folder -> DocumentEntry, also to
  a Folder of an earlier submission) with the HasMembers that make them members, except those
  touching a member DocumentEntry the filters removed (NIST 11906/format_code: a format code
  that drops one of two documents also drops its folder link);
- GetFolderAndContents: the Folder, its member DocumentEntries (filtered) and those HasMembers.

Standard: ITI TF-2 §3.18.4.1.2.3.7.4, §3.18.4.1.2.3.7.10, §3.18.4.1.2.3.7.11 (rev. 19.0);
ITI TF-3 §4.2.2.1 (HasMember between SubmissionSet, Folder, DocumentEntry and Association).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, select, union_all

from gateway.registry.queries import sql
from gateway.registry.queries import table as t
from gateway.registry.queries.find import document_filters
from gateway.registry.queries.get import HAS_MEMBER, by_id
from gateway.registry.queries.request import Params
from gateway.registry.queries.sql import Found, Scope
from gateway.registry.schema import association, document_entry, folder, submission_set


def get_all(scope: Scope, params: Params) -> Found:
    """GetAll: everything registered for the patient that meets the status lists and filters.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.4. Raises: XDSTooManyResults.
    """
    pids = sql.patient_ids(scope.conn, params.one(t.PATIENT_ID))
    if not pids:
        return Found()
    de, ss, fol, a = document_entry, submission_set, folder, association
    de_where = [
        de.c.patient_id.in_(pids),
        *sql.in_list(de.c.status, params.many(t.DE_STATUS)),
        *document_filters(params, scope.dialect),
    ]
    ss_where = [ss.c.patient_id.in_(pids), *sql.in_list(ss.c.status, params.many(t.SS_STATUS))]
    fol_where = [
        fol.c.patient_id.in_(pids),
        *sql.in_list(fol.c.status, params.many(t.FOL_STATUS)),
    ]
    found = Found(
        documents=sql.fetch(scope, de, *de_where),
        submission_sets=sql.fetch(scope, ss, *ss_where),
        folders=sql.fetch(scope, fol, *fol_where),
    )
    sql.check_limit(scope, found.count())
    # The returned objects as a sub-query: the database re-applies the filters rather than
    # receiving thousands of ids back as bind parameters.
    returned = union_all(
        select(de.c.id).where(*de_where),
        select(ss.c.id).where(*ss_where),
        select(fol.c.id).where(*fol_where),
    )
    # An alias: the same table inside and outside would make SQLAlchemy correlate the two.
    inner = association.alias("between_returned")
    between: Select[tuple[str]] = select(inner.c.id).where(
        inner.c.source_id.in_(returned), inner.c.target_id.in_(returned)
    )
    found.associations = sql.fetch(
        scope,
        a,
        a.c.source_id.in_(returned),
        a.c.target_id.in_(returned) | a.c.target_id.in_(between),
    )
    sql.check_limit(scope, found.count())
    return found


def get_submission_set_and_contents(scope: Scope, params: Params) -> Found:
    """GetSubmissionSetAndContents: a SubmissionSet with its members and their associations.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.10. Raises: XDSTooManyResults.
    """
    ss, de, fol, a = submission_set, document_entry, folder, association
    sets = sql.fetch(scope, ss, by_id(params, ss, t.SS_ENTRY_UUID, t.SS_UNIQUE_ID))
    if not sets:
        return Found()
    ss_id = sets[0]["id"]
    own = and_(a.c.association_type == HAS_MEMBER, a.c.source_id == ss_id)
    membership = association.alias("membership")  # not correlated with the outer association
    members = select(membership.c.target_id).where(
        membership.c.association_type == HAS_MEMBER, membership.c.source_id == ss_id
    )
    found = Found(
        submission_sets=sets[:1],
        documents=sql.fetch(
            scope, de, de.c.id.in_(members), *document_filters(params, scope.dialect)
        ),
        folders=sql.fetch(scope, fol, fol.c.id.in_(members)),
    )
    contents = sql.ids_of([*found.documents, *found.folders])
    # Member entries that the filters removed take their associations with them; every other
    # association of the SubmissionSet (even one to a Folder of an earlier submission) stays.
    member_entries = scope.conn.execute(select(de.c.id).where(de.c.id.in_(members))).scalars()
    removed = sorted(set(member_entries) - set(contents))
    direct = sql.fetch(scope, a, own, a.c.target_id.in_(contents)) if contents else []
    inner = sql.fetch(
        scope,
        a,
        a.c.id.in_(members),
        a.c.source_id.not_in(removed),
        a.c.target_id.not_in(removed),
    )
    inner_ids = sql.ids_of(inner)
    wrapping = sql.fetch(scope, a, own, a.c.target_id.in_(inner_ids)) if inner_ids else []
    found.associations = sorted(
        sql.unique([*direct, *inner, *wrapping]), key=lambda row: (row["seq"], row["id"])
    )
    sql.check_limit(scope, found.count())
    return found


def get_folder_and_contents(scope: Scope, params: Params) -> Found:
    """GetFolderAndContents: a Folder, its member DocumentEntries and those HasMembers.

    Standard: ITI TF-2 §3.18.4.1.2.3.7.11. Raises: XDSTooManyResults.
    """
    de, fol, a = document_entry, folder, association
    folders = sql.fetch(scope, fol, by_id(params, fol, t.FOL_ENTRY_UUID, t.FOL_UNIQUE_ID))
    if not folders:
        return Found()
    # One Folder, or with $MetadataLevel 2 every version of it (Metadata Update option:
    # versions share the uniqueId), with the members of each.
    folders = folders if scope.metadata_level >= 2 else folders[:1]
    own = and_(a.c.association_type == HAS_MEMBER, a.c.source_id.in_(sql.ids_of(folders)))
    found = Found(
        folders=folders,
        documents=sql.fetch(
            scope,
            de,
            de.c.id.in_(select(a.c.target_id).where(own)),
            *document_filters(params, scope.dialect),
        ),
    )
    doc_ids = sql.ids_of(found.documents)
    if doc_ids:
        found.associations = sql.fetch(scope, a, own, a.c.target_id.in_(doc_ids))
    sql.check_limit(scope, found.count())
    return found
