"""SubmissionSet and Folder <-> List, per MHD's mapping (ITI TF-3 §4.5.2, §4.5.3, MHD 4.2.2).

SubmissionSet (StructureDefinition IHE.MHD.Minimal.SubmissionSet, "XDS and MHD Mapping"):
``extension[sourceId]`` = sourceId, ``extension[intendedRecipient]`` = intendedRecipient,
``extension[designationType]`` = contentTypeCode, ``identifier`` = entryUUID (official) and
uniqueId (usual), ``status`` = availabilityStatus, ``mode`` = working, ``title``, ``code`` =
submissionset, ``subject`` = patientId, ``date`` = submissionTime, ``source`` = author,
``note`` = comments, ``entry.item`` = the DocumentReferences and Folder Lists of the submission.

Folder (IHE.MHD.Minimal.Folder): ``extension[designationType]`` = codeList, ``identifier`` =
entryUUID and uniqueId, ``status``, ``title``, ``code`` = folder, ``subject`` = patientId,
``date`` = lastUpdateTime, ``note`` = comments, ``entry.item`` = the DocumentReferences.

Limits: List.source holds one author (a SubmissionSet's further authors are not shown); an
intendedRecipient naming a person and an organization is given as the person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.fhir import people
from gateway.fhir.datatypes import (
    URN_OID,
    DataTypeError,
    code_of_concept,
    concept,
    datetime_of_dtm,
    dtm_of_datetime,
    resource_id_of_uuid,
    unique_id_of,
    uri_identifier,
)
from gateway.fhir.docref import Links
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Folder, SubmissionSet

MHD = "https://profiles.ihe.net/ITI/MHD"
LIST_TYPES = f"{MHD}/CodeSystem/MHDlistTypes"
SOURCE_ID = f"{MHD}/StructureDefinition/ihe-sourceId"
DESIGNATION_TYPE = f"{MHD}/StructureDefinition/ihe-designationType"
INTENDED_RECIPIENT = f"{MHD}/StructureDefinition/ihe-intendedRecipient"
AUTHOR_ORG = f"{MHD}/StructureDefinition/ihe-authorOrg"
SUBMISSION_SET_CODE, FOLDER_CODE = "submissionset", "folder"
# Table 2:3.66.4.1.3.1-3; R4 List.status has no "superseded": a Deprecated Folder is "retired".
LIST_STATUS: dict[str, str] = {v.STATUS_APPROVED: "current", v.STATUS_DEPRECATED: "retired"}


def _list_code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LIST_TYPES, "code": code}]}


def _identifiers(entry_uuid: str, unique_id: str | None) -> list[dict[str, Any]]:
    found = [uri_identifier(entry_uuid, use="official")]
    if unique_id:
        found.insert(0, uri_identifier(unique_id, use="usual"))
    return found


def _items(members: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"item": {"reference": f"{kind}/{resource_id_of_uuid(uuid)}"}} for kind, uuid in members
    ]


def _recipient(value: str, resource_id: str) -> dict[str, Any]:
    xon, _, rest = value.partition("|")
    xcn, _, xtn = rest.partition("|")
    if xcn:
        return people.practitioner(resource_id, xcn, [xtn] if xtn else [])
    if xon:
        resource = people.organization(resource_id, xon)
    else:
        resource = people.practitioner(resource_id, "", [xtn] if xtn else [])
        resource.pop("name", None)
    if xtn and xon:
        found = people.practitioner("x", "", [xtn]).get("telecom")
        if found:
            resource["telecom"] = found
    return resource


def submission_set_list(
    submission_set: SubmissionSet,
    links: Links,
    *,
    patient_id: str | None,
    members: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """The List of a registered SubmissionSet; ``members`` are (resource type, entryUUID)."""
    contained: list[dict[str, Any]] = []
    extension = _extensions_of(submission_set, contained)
    resource: dict[str, Any] = {
        "resourceType": "List",
        "id": resource_id_of_uuid(submission_set.entry_uuid),
    }
    if extension:
        resource["extension"] = extension
    resource["identifier"] = _identifiers(submission_set.entry_uuid, submission_set.unique_id)
    resource["status"] = LIST_STATUS.get(submission_set.availability_status or "", "current")
    resource["mode"] = "working"
    if submission_set.title:
        resource["title"] = submission_set.title
    resource["code"] = _list_code(SUBMISSION_SET_CODE)
    if submission_set.patient_id:
        resource["subject"] = links.patient(submission_set.patient_id, patient_id)
    submitted = datetime_of_dtm(submission_set.submission_time)
    if submitted:
        resource["date"] = submitted
    if submission_set.author:
        resource["source"] = _source(submission_set, contained)
    if submission_set.comments:
        resource["note"] = [{"text": submission_set.comments}]
    if members:
        resource["entry"] = _items(members)
    if contained:
        resource["contained"] = contained
    return resource


def _source(submission_set: SubmissionSet, contained: list[dict[str, Any]]) -> dict[str, Any]:
    """List.source of the first author (an Organization through the authorOrg extension)."""
    target, resources = people.author_resources(submission_set.author[0], "a1")
    contained.extend(resources)
    if resources[0]["resourceType"] == "Organization":
        return {"extension": [{"url": AUTHOR_ORG, "valueReference": {"reference": f"#{target}"}}]}
    return {"reference": f"#{target}"}


def _extensions_of(
    submission_set: SubmissionSet, contained: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """sourceId, designationType (contentTypeCode) and intendedRecipient extensions."""
    extension: list[dict[str, Any]] = []
    if submission_set.source_id:
        extension.append(
            {"url": SOURCE_ID, "valueIdentifier": uri_identifier(submission_set.source_id)}
        )
    if submission_set.content_type_code is not None:
        extension.append(
            {
                "url": DESIGNATION_TYPE,
                "valueCodeableConcept": concept(submission_set.content_type_code),
            }
        )
    for n, recipient in enumerate(submission_set.intended_recipient, start=1):
        contained.append(_recipient(recipient, f"ir{n}"))
        extension.append({"url": INTENDED_RECIPIENT, "valueReference": {"reference": f"#ir{n}"}})
    return extension


def folder_list(
    folder: Folder, links: Links, *, patient_id: str | None, members: Sequence[str] = ()
) -> dict[str, Any]:
    """The List of a registered Folder; ``members`` are the entryUUIDs of its documents."""
    resource: dict[str, Any] = {
        "resourceType": "List",
        "id": resource_id_of_uuid(folder.entry_uuid),
    }
    if folder.code_list:
        resource["extension"] = [
            {"url": DESIGNATION_TYPE, "valueCodeableConcept": concept(code)}
            for code in folder.code_list
        ]
    resource["identifier"] = _identifiers(folder.entry_uuid, folder.unique_id)
    resource["status"] = LIST_STATUS.get(folder.availability_status or "", "current")
    resource["mode"] = "working"
    if folder.title:
        resource["title"] = folder.title
    resource["code"] = _list_code(FOLDER_CODE)
    if folder.patient_id:
        resource["subject"] = links.patient(folder.patient_id, patient_id)
    updated = datetime_of_dtm(folder.last_update_time)
    if updated:
        resource["date"] = updated
    if folder.comments:
        resource["note"] = [{"text": folder.comments}]
    if members:
        resource["entry"] = _items([("DocumentReference", uuid) for uuid in members])
    return resource


# -- FHIR -> XDS ---------------------------------------------------------------------------------
def list_kind(resource: dict[str, Any]) -> str | None:
    """``submissionset``, ``folder``, or None for a List of another kind (MHDlistTypes)."""
    code = resource.get("code")
    codings = code.get("coding") or [] if isinstance(code, dict) else []
    for item in codings:
        if (
            isinstance(item, dict)
            and item.get("code") in (SUBMISSION_SET_CODE, FOLDER_CODE)
            and item.get("system") in (None, LIST_TYPES)
        ):
            return str(item["code"])
    return None


def _extensions(resource: dict[str, Any], url: str) -> list[dict[str, Any]]:
    return [
        e for e in resource.get("extension") or [] if isinstance(e, dict) and e.get("url") == url
    ]


def _unique_id(resource: dict[str, Any]) -> str | None:
    for identifier in resource.get("identifier") or []:
        if not isinstance(identifier, dict):
            continue
        value = identifier.get("value")
        if identifier.get("use") == "usual" or (
            isinstance(value, str) and value.startswith(URN_OID)
        ):
            return unique_id_of(value) or None
    return None


def _note(resource: dict[str, Any]) -> str | None:
    notes = resource.get("note") or []
    text = notes[0].get("text") if notes and isinstance(notes[0], dict) else None
    return text if isinstance(text, str) and text else None


def _intended_recipient(reference: Any, resolve: people.Resolve, where: str) -> str:
    resource = resolve(reference, where)
    if resource is None:
        raise DataTypeError(f"{where}: the intended recipient does not resolve in the Bundle")
    author = (
        people.author_of(reference, resolve, where)
        if resource.get("resourceType") in ("Practitioner", "Organization", "PractitionerRole")
        else None
    )
    if author is None:
        raise DataTypeError(
            f"{where}: an intended recipient must be a Practitioner or Organization"
        )
    xon = author.institution[0] if author.institution else ""
    xtn = author.telecom[0] if author.telecom else ""
    return f"{xon}|{author.person or ''}|{xtn}".rstrip("|")


def submission_set_of(
    resource: dict[str, Any],
    *,
    entry_uuid: str,
    patient_id: str | None,
    resolve: people.Resolve,
    where: str,
) -> SubmissionSet:
    """The SubmissionSet of a provided SubmissionSet List. Raises: DataTypeError."""
    submission_set = SubmissionSet(entry_uuid=entry_uuid, patient_id=patient_id)
    submission_set.unique_id = _unique_id(resource)
    for ext in _extensions(resource, SOURCE_ID):
        value = (ext.get("valueIdentifier") or {}).get("value")
        submission_set.source_id = unique_id_of(value) or None
    for ext in _extensions(resource, DESIGNATION_TYPE):
        submission_set.content_type_code = code_of_concept(
            ext.get("valueCodeableConcept"), f"{where}.extension[designationType]"
        )
    submission_set.intended_recipient = [
        _intended_recipient(ext.get("valueReference"), resolve, f"{where}.extension[{n}]")
        for n, ext in enumerate(_extensions(resource, INTENDED_RECIPIENT))
    ]
    if resource.get("date") is not None:
        submission_set.submission_time = dtm_of_datetime(resource["date"], f"{where}.date")
    title = resource.get("title")
    submission_set.title = title if isinstance(title, str) and title else None
    submission_set.comments = _note(resource)
    source = resource.get("source")
    if isinstance(source, dict):
        orgs = _extensions(source, AUTHOR_ORG)
        target = orgs[0].get("valueReference") if orgs else source
        submission_set.author = [people.author_of(target, resolve, f"{where}.source")]
    return submission_set


def folder_of(
    resource: dict[str, Any], *, entry_uuid: str, patient_id: str | None, where: str
) -> Folder:
    """The Folder of a provided Folder List. Raises: DataTypeError."""
    folder = Folder(entry_uuid=entry_uuid, patient_id=patient_id)
    folder.unique_id = _unique_id(resource)
    folder.code_list = [
        code_of_concept(ext.get("valueCodeableConcept"), f"{where}.extension[designationType]")
        for ext in _extensions(resource, DESIGNATION_TYPE)
    ]
    title = resource.get("title")
    folder.title = title if isinstance(title, str) and title else None
    folder.comments = _note(resource)
    return folder


def entry_references(resource: dict[str, Any]) -> list[Any]:
    """The ``entry.item`` references of a provided List, in order."""
    return [
        item.get("item")
        for item in resource.get("entry") or []
        if isinstance(item, dict) and item.get("item") is not None
    ]
