"""DocumentEntry <-> DocumentReference, per MHD's mapping (ITI TF-3 §4.5.1.1, MHD rev. 4.2.2).

The rows of "XDS and MHD Mapping" (StructureDefinition IHE.MHD.Minimal.DocumentReference):

=====================================  =================================================
DocumentReference                      DocumentEntry
=====================================  =================================================
masterIdentifier                       uniqueId (``urn:oid:`` form)
identifier (use official)              entryUUID
status (current / superseded)          availabilityStatus (Approved / Deprecated)
type / category                        typeCode / classCode
subject                                patientId
author / authenticator                 author / legalAuthenticator (contained, ``people``)
description                            comments
securityLabel                          confidentialityCode
content.attachment.contentType         mimeType
content.attachment.language / title    languageCode / title
content.attachment.url                 repositoryUniqueId + uniqueId (the ITI-68 URL)
content.attachment.size / hash         size / hash (base64 of the SHA-1, §4.5.1.2)
content.attachment.creation            creationTime
content.format                         formatCode
context.event                          eventCodeList
context.period.start / end             serviceStartTime / serviceStopTime
context.facilityType                   healthcareFacilityTypeCode
context.practiceSetting                practiceSettingCode
context.sourcePatientInfo              sourcePatientId + sourcePatientInfo (contained Patient)
context.related                        referenceIdList (CXi, ``identifier``)
relatesTo                              RPLC / XFRM / APND / XFRM_RPLC / signs associations
=====================================  =================================================

Not mapped (as MHD says, or as FHIR has no place): homeCommunityId, objectType (always Stable),
extra metadata slots, DocumentEntry.URI, documentAvailability, the second and further codings of
a CodeableConcept (XDS codes hold one), ``custodian``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.fhir import people
from gateway.fhir.datatypes import (
    URN_OID,
    DataTypeError,
    base64_of_hex,
    code_of_coding,
    code_of_concept,
    coding,
    concept,
    cx_of_identifier,
    datetime_of_dtm,
    dtm_of_datetime,
    hex_of_base64,
    patient_identifier,
    resource_id_of_uuid,
    unique_id_of,
    uri_identifier,
)
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import DataTypeError as XdsDataTypeError
from gateway.metadata.datatypes import is_uuid_urn, parse_cx, parse_hd
from gateway.metadata.model import Association, DocumentEntry

# ConceptMap AssociationTypeVsRelatesTo (MHD 4.2.2).
RELATES_TO: dict[str, str] = {
    v.RPLC: "replaces",
    v.XFRM: "transforms",
    v.APND: "appends",
    v.XFRM_RPLC: "replaces",
    v.SIGNS: "signs",
    v.IS_SNAPSHOT_OF: "transforms",
}
ASSOCIATION_OF: dict[str, str] = {
    "replaces": v.RPLC,
    "transforms": v.XFRM,
    "appends": v.APND,
    "signs": v.SIGNS,
}
STATUS: dict[str, str] = {v.STATUS_APPROVED: "current", v.STATUS_DEPRECATED: "superseded"}
AVAILABILITY: dict[str, str] = {"current": v.STATUS_APPROVED, "superseded": v.STATUS_DEPRECATED}
CXI_TYPE_SYSTEM = "urn:ietf:rfc:3986"  # CXi.5 is itself a URN


@dataclass(frozen=True, slots=True, kw_only=True)
class Links:
    """How resources are addressed: ``base`` is the FHIR base URL (``https://host/fhir``),
    ``root`` the server's (``https://host``), for the paths of other services."""

    base: str
    root: str = ""

    def absolute(self, url: str) -> str:
        """``url`` made absolute against the server root (a path like ``/xdsi/source``)."""
        return url if "://" in url else f"{self.root}{url}"

    def binary(self, entry_uuid: str) -> str:
        """The ITI-68 URL of a document (its DocumentReference id under ``Binary/``)."""
        return f"{self.base}/Binary/{resource_id_of_uuid(entry_uuid)}"

    def patient(self, cx: str, patient_id: str | None) -> dict[str, Any]:
        """A Reference to the Patient of an affinity-domain id (with its identifier)."""
        reference: dict[str, Any] = {}
        if patient_id:
            reference["reference"] = f"Patient/{patient_id}"
        try:
            reference["identifier"] = patient_identifier(cx)
        except XdsDataTypeError:
            reference.setdefault("display", cx)
        return reference


# -- XDS -> FHIR ---------------------------------------------------------------------------------
def related_identifier(cxi: str) -> dict[str, Any]:
    """context.related of one referenceIdList value (CXi: id^^^authority^type^facility)."""
    parts = [*cxi.split("^"), "", "", "", "", "", ""]
    identifier: dict[str, Any] = {"value": parts[0]}
    if parts[4]:
        identifier["type"] = {"coding": [{"system": CXI_TYPE_SYSTEM, "code": parts[4]}]}
    if parts[3]:
        hd = parse_hd(parts[3])
        if hd.universal_id_type == "ISO" and hd.universal_id:
            identifier["system"] = URN_OID + hd.universal_id
        else:
            identifier["assigner"] = {"display": parts[3]}
    return {"identifier": identifier}


def _content(entry: DocumentEntry, links: Links) -> dict[str, Any]:
    attachment: dict[str, Any] = {"contentType": entry.mime_type or "application/octet-stream"}
    if entry.language_code:
        attachment["language"] = entry.language_code
    attachment["url"] = links.binary(entry.entry_uuid)
    if entry.size is not None:
        attachment["size"] = entry.size
    digest = base64_of_hex(entry.hash)
    if digest:
        attachment["hash"] = digest
    if entry.title:
        attachment["title"] = entry.title
    created = datetime_of_dtm(entry.creation_time)
    if created:
        attachment["creation"] = created
    content: dict[str, Any] = {"attachment": attachment}
    if entry.format_code is not None:
        content["format"] = coding(entry.format_code)
    return content


def _context(entry: DocumentEntry, contained: list[dict[str, Any]]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if entry.event_code_list:
        context["event"] = [concept(c) for c in entry.event_code_list]
    period = {
        key: datetime_of_dtm(value)
        for key, value in (("start", entry.service_start_time), ("end", entry.service_stop_time))
        if datetime_of_dtm(value)
    }
    if period:
        context["period"] = period
    if entry.healthcare_facility_type_code is not None:
        context["facilityType"] = concept(entry.healthcare_facility_type_code)
    if entry.practice_setting_code is not None:
        context["practiceSetting"] = concept(entry.practice_setting_code)
    if entry.source_patient_id or entry.source_patient_info:
        contained.append(
            people.source_patient("src", entry.source_patient_id, entry.source_patient_info)
        )
        context["sourcePatientInfo"] = {"reference": "#src"}
    if entry.reference_id_list:
        context["related"] = [related_identifier(value) for value in entry.reference_id_list]
    return context


def _authors(entry: DocumentEntry, contained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    references = []
    for n, author in enumerate(entry.author, start=1):
        target, resources = people.author_resources(author, f"a{n}")
        contained.extend(resources)
        references.append({"reference": f"#{target}"})
    return references


def _relates_to(entry: DocumentEntry, associations: Iterable[Association]) -> list[dict[str, Any]]:
    return [
        {
            "code": RELATES_TO[a.association_type],
            "target": {"reference": f"DocumentReference/{resource_id_of_uuid(a.target_object)}"},
        }
        for a in associations
        if a.source_object == entry.entry_uuid and a.association_type in RELATES_TO
    ]


def document_reference(
    entry: DocumentEntry,
    links: Links,
    *,
    patient_id: str | None,
    associations: Iterable[Association] = (),
) -> dict[str, Any]:
    """The DocumentReference of a registered DocumentEntry (ITI-67 answer, MHD §4.5.1.1).

    ``patient_id`` is the Patient resource id of entry.patientId; ``associations`` are the
    registry's associations whose source is this entry (relatesTo, ITI-67 §2:3.67.4.2.2.1.4).
    """
    contained: list[dict[str, Any]] = []
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id_of_uuid(entry.entry_uuid),
    }
    if entry.unique_id:
        resource["masterIdentifier"] = uri_identifier(entry.unique_id, use="usual")
    resource["identifier"] = [uri_identifier(entry.entry_uuid, use="official")]
    resource["status"] = STATUS.get(entry.availability_status or "", "current")
    if entry.type_code is not None:
        resource["type"] = concept(entry.type_code)
    if entry.class_code is not None:
        resource["category"] = [concept(entry.class_code)]
    if entry.patient_id:
        resource["subject"] = links.patient(entry.patient_id, patient_id)
    if entry.author:
        resource["author"] = _authors(entry, contained)
    if entry.legal_authenticator:
        contained.append(people.practitioner("la", entry.legal_authenticator))
        resource["authenticator"] = {"reference": "#la"}
    if entry.comments:
        resource["description"] = entry.comments
    if entry.confidentiality_code:
        resource["securityLabel"] = [concept(c) for c in entry.confidentiality_code]
    resource["content"] = [_content(entry, links)]
    context = _context(entry, contained)
    if context:
        resource["context"] = context
    relates = _relates_to(entry, associations)
    if relates:
        resource["relatesTo"] = relates
    if contained:
        resource["contained"] = contained
    return resource


# -- FHIR -> XDS ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Relation:
    """A relatesTo of a provided DocumentReference: association type and target reference."""

    association_type: str
    target: Any


def _codes(values: Any, where: str) -> list[Any]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise DataTypeError(f"{where}: expected a list")
    return [code_of_concept(item, f"{where}[{n}]") for n, item in enumerate(values)]


def _reference_id(related: Any, where: str) -> str:
    identifier = related.get("identifier") if isinstance(related, dict) else None
    if not isinstance(identifier, dict) or not identifier.get("value"):
        raise DataTypeError(f"{where}: only identifier references map to referenceIdList")
    kind = ""
    for item in (identifier.get("type") or {}).get("coding") or []:
        if isinstance(item, dict) and item.get("code"):
            kind = str(item["code"])
            break
    if not kind:
        raise DataTypeError(f"{where}: the identifier type (CXi.5, e.g. accession) is required")
    system = str(identifier.get("system") or "")
    authority = f"&{system[len(URN_OID) :]}&ISO" if system.startswith(URN_OID) else ""
    return f"{identifier['value']}^^^{authority}^{kind}"


def _attachment(entry: DocumentEntry, content: Any, where: str) -> Any:
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict):
        raise DataTypeError(f"{where}: exactly one content element is required (MHD)")
    attachment = content[0].get("attachment")
    if not isinstance(attachment, dict):
        raise DataTypeError(f"{where}[0].attachment: missing")
    at = f"{where}[0].attachment"
    mime = attachment.get("contentType")
    if not isinstance(mime, str) or not mime:
        raise DataTypeError(f"{at}.contentType: required")
    entry.mime_type = mime
    entry.language_code = _text(attachment.get("language"))
    entry.title = _text(attachment.get("title"))
    if attachment.get("hash") is not None:
        entry.hash = hex_of_base64(attachment["hash"], f"{at}.hash")
    size = attachment.get("size")
    if size is not None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise DataTypeError(f"{at}.size: expected a non-negative integer")
        entry.size = size
    if attachment.get("creation") is not None:
        entry.creation_time = dtm_of_datetime(attachment["creation"], f"{at}.creation")
    if content[0].get("format") is not None:
        entry.format_code = code_of_coding(content[0]["format"], f"{where}[0].format")
    return attachment.get("url")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _apply_context(entry: DocumentEntry, context: Any, resolve: people.Resolve, where: str) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        raise DataTypeError(f"{where}: expected an object")
    entry.event_code_list = _codes(context.get("event"), f"{where}.event")
    period = context.get("period") or {}
    if period.get("start") is not None:
        entry.service_start_time = dtm_of_datetime(period["start"], f"{where}.period.start")
    if period.get("end") is not None:
        entry.service_stop_time = dtm_of_datetime(period["end"], f"{where}.period.end")
    if context.get("facilityType") is not None:
        entry.healthcare_facility_type_code = code_of_concept(
            context["facilityType"], f"{where}.facilityType"
        )
    if context.get("practiceSetting") is not None:
        entry.practice_setting_code = code_of_concept(
            context["practiceSetting"], f"{where}.practiceSetting"
        )
    if context.get("sourcePatientInfo") is not None:
        entry.source_patient_id, entry.source_patient_info = people.source_patient_of(
            context["sourcePatientInfo"], resolve, f"{where}.sourcePatientInfo"
        )
    entry.reference_id_list = [
        _reference_id(item, f"{where}.related[{n}]")
        for n, item in enumerate(context.get("related") or [])
    ]


def document_entry_of(
    resource: dict[str, Any],
    *,
    entry_uuid: str,
    patient_id: str | None,
    resolve: people.Resolve,
    where: str,
) -> tuple[DocumentEntry, Any, list[Relation]]:
    """The DocumentEntry of a provided DocumentReference, its attachment.url and relatesTo.

    ``entry_uuid``: the id it gets in the submission; ``patient_id``: the affinity-domain CX its
    subject resolved to. Standard: ITI TF-3 §4.5.1.1 (mapping), ITI-65 §2:3.65.4.1.2.
    Raises: DataTypeError naming the element that cannot be mapped.
    """
    status = resource.get("status")
    if status != "current":
        raise DataTypeError(f"{where}.status: a provided DocumentReference must be 'current'")
    entry = DocumentEntry(entry_uuid=entry_uuid, object_type=v.DOCUMENT_ENTRY_STABLE)
    master = resource.get("masterIdentifier")
    if isinstance(master, dict):
        entry.unique_id = unique_id_of(master.get("value")) or None
    entry.patient_id = patient_id
    if resource.get("type") is not None:
        entry.type_code = code_of_concept(resource["type"], f"{where}.type")
    categories = _codes(resource.get("category"), f"{where}.category")
    entry.class_code = categories[0] if categories else None
    entry.confidentiality_code = _codes(resource.get("securityLabel"), f"{where}.securityLabel")
    entry.comments = _text(resource.get("description"))
    entry.author = [
        people.author_of(ref, resolve, f"{where}.author[{n}]")
        for n, ref in enumerate(resource.get("author") or [])
    ]
    if resource.get("authenticator") is not None:
        entry.legal_authenticator = people.legal_authenticator_of(
            resource["authenticator"], resolve, f"{where}.authenticator"
        )
    url = _attachment(entry, resource.get("content"), f"{where}.content")
    _apply_context(entry, resource.get("context"), resolve, f"{where}.context")
    relations = []
    for n, item in enumerate(resource.get("relatesTo") or []):
        code = item.get("code") if isinstance(item, dict) else None
        if code not in ASSOCIATION_OF:
            raise DataTypeError(f"{where}.relatesTo[{n}].code: {code!r} is not supported")
        relations.append(Relation(association_type=ASSOCIATION_OF[code], target=item.get("target")))
    return entry, url, relations


def entry_uuid_of(resource: dict[str, Any], full_url: Any) -> str | None:
    """The entryUUID a provided resource names: its official urn:uuid identifier, else its
    ``urn:uuid:`` fullUrl (MHD: the Document Source need not provide entryUUIDs)."""
    for identifier in resource.get("identifier") or []:
        value = identifier.get("value") if isinstance(identifier, dict) else None
        if isinstance(value, str) and is_uuid_urn(value):
            return value.lower()
    if isinstance(full_url, str) and is_uuid_urn(full_url):
        return full_url.lower()
    return None


def patient_of_subject_identifier(identifier: Any, where: str) -> str:
    """The CX of a logical patient reference (Reference.identifier). Raises: DataTypeError."""
    cx = cx_of_identifier(identifier, where)
    try:
        parse_cx(cx)
    except XdsDataTypeError as exc:
        raise DataTypeError(f"{where}: {exc}") from exc
    return cx
