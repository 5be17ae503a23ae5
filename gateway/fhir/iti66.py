"""ITI-66 Find Document Lists: ``GET /fhir/List`` (SubmissionSets and Folders) and ``/{id}``.

Search (XDS on FHIR option, ITI-66 §2:3.66.4.1.3.1): ``code=submissionset`` runs FindSubmissionSets
(Table 2:3.66.4.1.3.1-1: patient -> $XDSSubmissionSetPatientId, date ge/lt ->
SubmissionTimeFrom/To, source.given/family -> AuthorPerson, designationType -> ContentType,
sourceId -> SourceId, status -> Status), ``code=folder`` FindFolders (Table 2:3.66.4.1.3.1-2:
date -> LastUpdateTimeFrom/To, designationType -> CodeList; parameters of submission sets are
ignored, Note 3); without ``code`` both. ``identifier`` filters the result on uniqueId or
entryUUID. The members of the Lists of the page come from one GetAssociations (and one
GetFolders to tell Folders from Folder-membership associations among a SubmissionSet's members).

Read: GetSubmissionSetAndContents, else GetFolderAndContents, by entryUUID (ITI TF-2
§3.18.4.1.2.3.7.10, .11).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.fhir import lists
from gateway.fhir.datatypes import (
    patient_id_in_domain,
    resource_id_of_uuid,
    unique_id_of,
    uuid_of_resource_id,
)
from gateway.fhir.docref import Links
from gateway.fhir.iti67 import associations_of, identifier_filter
from gateway.fhir.outcomes import run_query
from gateway.fhir.ports import Backends
from gateway.fhir.search import (
    Params,
    code_slots,
    date_bounds,
    patient_ids,
    person_pattern,
    split_or,
    status_slot,
    string_values,
    token,
)
from gateway.fhir.searchset import Page, searchset
from gateway.fhir.wire import FhirError
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association, DocumentEntry, Folder, SubmissionSet
from gateway.metadata.query import AdhocQuery
from gateway.metadata.query_values import quote, quote_list

TRANSACTION = "ITI-66"
SS, FOL = "$XDSSubmissionSet", "$XDSFolder"
SEARCH_PARAMETERS = (
    "patient",
    "patient.identifier",
    "code",
    "status",
    "date",
    "designationType",
    "source.given",
    "source.family",
    "sourceId",
    "identifier",
)
STATUSES: dict[str, str] = {
    "current": v.STATUS_APPROVED,
    "superseded": v.STATUS_DEPRECATED,
    "retired": v.STATUS_DEPRECATED,
}
_ALL = quote_list([v.STATUS_APPROVED, v.STATUS_DEPRECATED])

ListObject = SubmissionSet | Folder


def _kinds(params: Params) -> list[str]:
    values = [token(item)[1] for value in params.all("code") for item in split_or(value)]
    unknown = [c for c in values if c not in (lists.SUBMISSION_SET_CODE, lists.FOLDER_CODE)]
    if unknown:
        raise FhirError.of(
            400,
            f"code: {unknown[0]!r} is not submissionset or folder",
            code="value",
            expression="code",
        )
    return list(dict.fromkeys(values)) or [lists.SUBMISSION_SET_CODE, lists.FOLDER_CODE]


def _status(params: Params) -> str:
    return (
        status_slot(params, "status", STATUSES, default="current") if params.all("status") else _ALL
    )


def find_submission_sets(params: Params, patient: str) -> AdhocQuery:
    """FindSubmissionSets of an ITI-66 search (Table 2:3.66.4.1.3.1-1)."""
    query = AdhocQuery(query_id=v.FIND_SUBMISSION_SETS)
    query.add(SS + "PatientId", quote(patient)).add(SS + "Status", _status(params))
    bounds = date_bounds(params, "date")
    if bounds.start:
        query.add(SS + "SubmissionTimeFrom", bounds.start)
    if bounds.end:
        query.add(SS + "SubmissionTimeTo", bounds.end)
    pattern = person_pattern(
        string_values(params, "source.given"), string_values(params, "source.family")
    )
    if pattern:
        query.add(SS + "AuthorPerson", quote(pattern))
    for value in code_slots(params, "designationType"):
        query.add(SS + "ContentType", value)
    sources = [unique_id_of(token(item)[1]) for item in string_values(params, "sourceId")]
    if sources:
        query.add(SS + "SourceId", quote_list(sources))
    return query


def find_folders(params: Params, patient: str) -> AdhocQuery:
    """FindFolders of an ITI-66 search (Table 2:3.66.4.1.3.1-2)."""
    query = AdhocQuery(query_id=v.FIND_FOLDERS)
    query.add(FOL + "PatientId", quote(patient)).add(FOL + "Status", _status(params))
    bounds = date_bounds(params, "date")
    if bounds.start:
        query.add(FOL + "LastUpdateTimeFrom", bounds.start)
    if bounds.end:
        query.add(FOL + "LastUpdateTimeTo", bounds.end)
    for value in code_slots(params, "designationType"):
        query.add(FOL + "CodeList", value)
    return query


def _time(item: ListObject) -> str:
    value = item.submission_time if isinstance(item, SubmissionSet) else item.last_update_time
    return (value or "").ljust(14, "0")


def _members(backends: Backends, shown: Sequence[ListObject]) -> dict[str, list[tuple[str, str]]]:
    """(resource type, entryUUID) of the members of each List shown."""
    uuids = [item.entry_uuid for item in shown]
    links = [a for a in associations_of(backends, uuids) if a.association_type == v.HAS_MEMBER]
    folders_of_sets = {a.target_object for a in links if a.submission_set_status is None}
    known_folders = _existing_folders(backends, sorted(folders_of_sets))
    members: dict[str, list[tuple[str, str]]] = {uuid: [] for uuid in uuids}
    for link in links:
        if link.submission_set_status is not None:
            members[link.source_object].append(("DocumentReference", link.target_object))
        elif link.target_object in known_folders:
            members[link.source_object].append(("List", link.target_object))
        elif any(f.entry_uuid == link.source_object for f in shown if isinstance(f, Folder)):
            members[link.source_object].append(("DocumentReference", link.target_object))
    return members


def _existing_folders(backends: Backends, uuids: Sequence[str]) -> set[str]:
    if not uuids:
        return set()
    query = AdhocQuery(query_id=v.GET_FOLDERS).add(FOL + "EntryUUID", quote_list(list(uuids)))
    return {o.entry_uuid for o in run_query(backends.query, query) if isinstance(o, Folder)}


def render(
    item: ListObject, backends: Backends, links: Links, members: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """The List of a SubmissionSet or Folder."""
    patient = patient_id_in_domain(item.patient_id, backends.domain_oid)
    if isinstance(item, SubmissionSet):
        return lists.submission_set_list(item, links, patient_id=patient, members=members)
    return lists.folder_list(
        item, links, patient_id=patient, members=[uuid for _kind, uuid in members]
    )


def search(
    params: Params, backends: Backends, links: Links, *, default_count: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer an ITI-66 search: the searchset Bundle and the audit facts. Raises: FhirError."""
    page = Page.of(params, default_count)
    patient = patient_ids(params, backends.domain_oid)[0]
    found: list[ListObject] = []
    query_ids = []
    for kind in _kinds(params):
        query = (
            find_submission_sets(params, patient)
            if kind == lists.SUBMISSION_SET_CODE
            else find_folders(params, patient)
        )
        query_ids.append(query.query_id)
        found += [
            o for o in run_query(backends.query, query) if isinstance(o, (SubmissionSet, Folder))
        ]
    wanted = identifier_filter(params)
    if wanted is not None:
        found = [o for o in found if o.entry_uuid in wanted or o.unique_id in wanted]
    found.sort(key=_time, reverse=True)
    shown = list(page.cut(found))
    members = _members(backends, shown)
    resources = [
        (
            f"{links.base}/List/{resource_id_of_uuid(o.entry_uuid)}",
            render(o, backends, links, members[o.entry_uuid]),
        )
        for o in shown
    ]
    facts = {"patient_ids": [patient], "query_id": query_ids[0]}
    return searchset(f"{links.base}/List", params, page, len(found), resources), facts


def read(resource_id: str, backends: Backends, links: Links) -> tuple[dict[str, Any], str | None]:
    """``GET /List/{id}``: the List and its patient id. Raises: FhirError 404."""
    uuid = uuid_of_resource_id(resource_id)
    if uuid is not None:
        for query_id, slot in (
            (v.GET_SUBMISSION_SET_AND_CONTENTS, SS + "EntryUUID"),
            (v.GET_FOLDER_AND_CONTENTS, FOL + "EntryUUID"),
        ):
            objects = run_query(
                backends.query, AdhocQuery(query_id=query_id).add(slot, quote(uuid))
            )
            heads = [
                o
                for o in objects
                if isinstance(o, (SubmissionSet, Folder)) and o.entry_uuid == uuid
            ]
            if heads:
                return render(heads[0], backends, links, _contents(heads[0], objects)), heads[
                    0
                ].patient_id
    raise FhirError.of(404, f"List/{resource_id} does not exist", code="not-found")


def _contents(head: ListObject, objects: Sequence[Any]) -> list[tuple[str, str]]:
    members = {
        a.target_object
        for a in objects
        if isinstance(a, Association) and a.source_object == head.entry_uuid
    }
    found: list[tuple[str, str]] = [
        ("DocumentReference", o.entry_uuid)
        for o in objects
        if isinstance(o, DocumentEntry) and o.entry_uuid in members
    ]
    if isinstance(head, SubmissionSet):
        found += [
            ("List", o.entry_uuid)
            for o in objects
            if isinstance(o, Folder) and o.entry_uuid in members
        ]
    return found
