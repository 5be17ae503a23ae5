"""ITI-65 Provide Document Bundle at ``POST /fhir``: the Document Recipient, XDS on FHIR.

The transaction Bundle (one SubmissionSet List, DocumentReferences with their Binaries, optional
Folder Lists, optional Patient) is mapped to one XDS submission (MHD ITI TF-3 §4.5; ITI-65
§2:3.65.4.1.3.1 "Grouping with Actors in other Document Sharing Profiles") and handed to the
repository as an ITI-41 Provide and Register Document Set-b, so it takes the ITI-41 path:
metadata validation, size/hash checks, atomic storage and registration. The answer is a
``transaction-response`` Bundle, one entry per request entry in order, each ``201 Created``
with its location (ITI-65 §2:3.65.4.2.2); the registry's warnings go into the SubmissionSet
entry's ``response.outcome``. A refusal is an OperationOutcome (``outcomes``); whatever is
refused, nothing is registered and nothing stays written (the repository abandons its files).

Patient identity (§2:3.65.4.1.2.2): a subject is ``Patient/{id}`` of this server (the affinity
domain's patients, ``patient.py``), a Patient entry of the Bundle carrying an identifier of the
affinity domain, or a logical reference by identifier. Patient references to other servers are
not fetched (no outbound request is made from request data) and are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.fhir import bundle as bundles
from gateway.fhir import lists
from gateway.fhir.datatypes import (
    DataTypeError,
    resource_id_of_uuid,
    uuid_of_resource_id,
)
from gateway.fhir.mapper import Document, Mapper, metadata_error, unresolved
from gateway.fhir.outcomes import issue_of, xds_failure
from gateway.fhir.ports import Provide
from gateway.fhir.wire import FhirError
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import new_uuid_urn
from gateway.metadata.model import Association, Folder, Submission, SubmissionSet
from gateway.metadata.provide import build_provide_request
from gateway.metadata.retrieve import ResponseFormatError, Status, read_registry_response
from gateway.soap.message import Attachment

TRANSACTION = "ITI-65"
TF = "MHD ITI-65 (rev. 4.2.2)"


@dataclass(slots=True, kw_only=True)
class Mapped:
    """A Bundle mapped to XDS: the submission, its documents' content, and per entry what the
    response says (status, location)."""

    submission: Submission
    contents: list[tuple[str, Attachment]] = field(default_factory=list)
    responses: dict[int, tuple[str, str]] = field(default_factory=dict)
    submission_set_index: int = 0


def _has_member(source: str, target: str, status: str | None) -> Association:
    return Association(
        entry_uuid=new_uuid_urn(),
        association_type=v.HAS_MEMBER,
        source_object=source,
        target_object=target,
        submission_set_status=status,
    )


def _split(entries: Sequence[bundles.Entry]) -> dict[str, list[bundles.Entry]]:
    """Entries by role; anything a Provide Document Bundle cannot hold is refused (400)."""
    roles: dict[str, list[bundles.Entry]] = {
        "submissionset": [],
        "folder": [],
        "document": [],
        "binary": [],
        "patient": [],
        "update": [],
    }
    for entry in entries:
        role = _role(entry)
        if role is None:
            raise FhirError.of(
                400,
                f"{entry.where}: {entry.method} {entry.kind} is not part of a Provide Document "
                "Bundle (ITI-65 creates DocumentReference, Binary and List resources)",
                code="not-supported",
                expression=entry.where,
            )
        roles[role].append(entry)
    if len(roles["submissionset"]) != 1:
        raise FhirError.of(
            400,
            f"the Bundle must hold exactly one SubmissionSet List, it holds "
            f"{len(roles['submissionset'])}",
            expression="Bundle.entry",
        )
    if not roles["document"]:
        raise FhirError.of(400, "the Bundle holds no DocumentReference", expression="Bundle.entry")
    return roles


def _role(entry: bundles.Entry) -> str | None:
    kind, method = entry.kind, entry.method
    if kind == "List" and method == "POST":
        return lists.list_kind(entry.resource)
    if kind == "DocumentReference":
        return "document" if method == "POST" else "update" if method in ("PUT", "PATCH") else None
    if kind == "Binary" and method == "POST":
        return "binary"
    if kind == "Patient":
        return "patient"
    # The UpdateDocumentRefs slice of a replacement may also be a PATCH carried as Parameters.
    if kind == "Parameters" and method == "PATCH" and entry.url.startswith("DocumentReference/"):
        return "update"
    return None


def map_bundle(bundle: dict[str, Any], *, base: str, domain_oid: str) -> Mapped:
    """Map a Provide Document Bundle to an XDS submission (MHD ITI TF-3 §4.5).

    Raises: FhirError (400 for a Bundle that is not a valid Provide Document Bundle, 422 for
    values that do not map to XDS metadata, with their XDS code).
    """
    entries = bundles.read_entries(bundle)
    roles = _split(entries)
    mapper = Mapper(entries, base, domain_oid)
    documents = [mapper.document(entry) for entry in roles["document"]]
    contents = [(d.document_entry.entry_uuid, mapper.content(d)) for d in documents]
    submission_set = _submission_set(mapper, roles["submissionset"][0])
    folders = [_folder(mapper, entry) for entry in roles["folder"]]
    associations = _associations(mapper, submission_set, roles, documents, folders)
    _acknowledge_updates(mapper, roles["update"], documents)
    for document in documents:
        mapper.responses[document.entry.index] = (
            "201 Created",
            f"DocumentReference/{resource_id_of_uuid(document.document_entry.entry_uuid)}",
        )
    ss_entry = roles["submissionset"][0]
    mapper.responses[ss_entry.index] = (
        "201 Created",
        f"List/{resource_id_of_uuid(submission_set.entry_uuid)}",
    )
    for entry, folder in zip(roles["folder"], folders, strict=True):
        mapper.responses[entry.index] = (
            "201 Created",
            f"List/{resource_id_of_uuid(folder.entry_uuid)}",
        )
    for entry in roles["patient"]:
        mapper.responses.setdefault(entry.index, ("200 OK", ""))
    submission = Submission(
        submission_set=submission_set,
        document_entries=[d.document_entry for d in documents],
        folders=folders,
        associations=associations,
    )
    return Mapped(
        submission=submission,
        contents=contents,
        responses=mapper.responses,
        submission_set_index=ss_entry.index,
    )


def _submission_set(mapper: Mapper, entry: bundles.Entry) -> SubmissionSet:
    patient = mapper.patient(entry.resource.get("subject"), f"{entry.where}.subject")
    try:
        return lists.submission_set_of(
            entry.resource,
            entry_uuid=mapper.uuid(entry),
            patient_id=patient,
            resolve=mapper.resolver.for_resource(entry.resource),
            where=entry.where,
        )
    except DataTypeError as exc:
        raise metadata_error(exc, entry.where) from exc


def _folder(mapper: Mapper, entry: bundles.Entry) -> Folder:
    patient = mapper.patient(entry.resource.get("subject"), f"{entry.where}.subject")
    try:
        return lists.folder_of(
            entry.resource, entry_uuid=mapper.uuid(entry), patient_id=patient, where=entry.where
        )
    except DataTypeError as exc:
        raise metadata_error(exc, entry.where) from exc


def _associations(
    mapper: Mapper,
    submission_set: SubmissionSet,
    roles: dict[str, list[bundles.Entry]],
    documents: list[Document],
    folders: list[Folder],
) -> list[Association]:
    """HasMember for every document and folder (ITI TF-3 §4.2.2.1), folder memberships with
    their SubmissionSet link, existing documents listed by reference, and relatesTo."""
    ss = submission_set.entry_uuid
    by_index = {d.entry.index: d.document_entry.entry_uuid for d in documents}
    found = [_has_member(ss, uuid, v.SUBMISSION_SET_STATUS_ORIGINAL) for uuid in by_index.values()]
    found += [_has_member(ss, folder.entry_uuid, None) for folder in folders]
    ss_entry = roles["submissionset"][0]
    for n, reference in enumerate(lists.entry_references(ss_entry.resource)):
        target = mapper.resolver.entry(reference)
        if target is None:  # a document already registered, added by reference
            where = f"{ss_entry.where}.entry[{n}].item"
            uuid = mapper.server_document(reference, where)
            found.append(_has_member(ss, uuid, v.SUBMISSION_SET_STATUS_REFERENCE))
        elif target.kind not in ("DocumentReference", "List"):
            raise unresolved(
                f"{ss_entry.where}.entry[{n}].item: not a DocumentReference or List",
                f"{ss_entry.where}.entry[{n}].item",
            )
    for entry, folder in zip(roles["folder"], folders, strict=True):
        for n, reference in enumerate(lists.entry_references(entry.resource)):
            where = f"{entry.where}.entry[{n}].item"
            target = mapper.resolver.entry(reference)
            if target is not None and target.index in by_index:
                uuid = by_index[target.index]
            elif target is None:
                uuid = mapper.server_document(reference, where)
            else:
                raise unresolved(f"{where}: a Folder holds DocumentReferences only", where)
            link = _has_member(folder.entry_uuid, uuid, None)
            found += [link, _has_member(ss, link.entry_uuid, None)]
    for document in documents:
        for n, relation in enumerate(document.relations):
            where = f"{document.entry.where}.relatesTo[{n}].target"
            replaced = mapper.server_document(relation.target, where)
            found.append(
                Association(
                    entry_uuid=new_uuid_urn(),
                    association_type=relation.association_type,
                    source_object=document.document_entry.entry_uuid,
                    target_object=replaced,
                )
            )
    return found


def _acknowledge_updates(
    mapper: Mapper, updates: list[bundles.Entry], documents: list[Document]
) -> None:
    """The UpdateDocumentRefs entries (status superseded of a replaced DocumentReference) are
    done by the RPLC association itself (ITI TF-3 §4.2.2.2): accepted when they name a
    document this Bundle replaces."""
    replaced = {
        mapper.server_document(r.target, "relatesTo")
        for d in documents
        for r in d.relations
        if r.association_type in (v.RPLC, v.XFRM_RPLC)
    }
    for entry in updates:
        name = entry.url.split("?", 1)[0]
        uuid = (
            uuid_of_resource_id(name.split("/", 1)[1])
            if name.startswith("DocumentReference/")
            else None
        )
        if uuid is None or uuid not in replaced:
            raise FhirError.of(
                400,
                f"{entry.where}: {entry.method} {entry.url!r} is allowed only for a "
                "DocumentReference this Bundle replaces",
                code="not-supported",
                expression=entry.where,
            )
        mapper.responses[entry.index] = ("200 OK", name)


def provide(mapped: Mapped, send: Provide) -> list[Any]:
    """Send the mapped submission as ITI-41; return the registry's warnings as issues.

    Standard: ITI TF-2 §3.41.4 (the recipient as the XDS Document Source).
    Raises: FhirError with the XDS errors when the submission is refused.
    """
    documents = [(uuid, attachment.content_id) for uuid, attachment in mapped.contents]
    request = build_provide_request(mapped.submission, documents)
    answer = send(request, [attachment for _uuid, attachment in mapped.contents])
    try:
        response = read_registry_response(answer)
    except ResponseFormatError as exc:
        raise FhirError.of(
            500,
            f"the repository's answer could not be read: {exc}",
            code="exception",
            xds_code="XDSRepositoryError",
        ) from exc
    if response.status is not Status.SUCCESS:
        raise xds_failure(response.errors)
    return [issue_of(error) for error in response.errors]


def response_bundle(mapped: Mapped, entry_count: int, warnings: Sequence[Any]) -> dict[str, Any]:
    """The ``transaction-response`` Bundle: one entry per request entry, in order.

    Standard: ITI-65 §2:3.65.4.2.2; FHIR R4 bundle.html#transaction-response.
    """
    entries = []
    for index in range(entry_count):
        status, location = mapped.responses.get(index, ("200 OK", ""))
        response: dict[str, Any] = {"status": status}
        if location:
            response["location"] = location
        if index == mapped.submission_set_index and warnings:
            response["outcome"] = {
                "resourceType": "OperationOutcome",
                "issue": [w.as_json() for w in warnings],
            }
        entries.append({"response": response})
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
