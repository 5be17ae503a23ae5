"""MHD test data made in the tests: Provide Document Bundles (ITI-65) with Comprehensive
metadata, as an MHD Document Source sends them (MHD 4.2.2 examples
Bundle-ex-comprehensiveProvideDocumentBundleSimple, described, not copied)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.100"
UID_ROOT = "1.3.6.1.4.1.21367.2024.77"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
FORMAT_SYSTEM = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
COMPREHENSIVE = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


@dataclass(slots=True)
class Document:
    """One document of a Bundle: content, media type, uniqueId, and what to falsify."""

    content: bytes
    mime_type: str = "text/plain"
    unique_id: str = field(default_factory=lambda: f"{UID_ROOT}.{uuid.uuid4().int % 10**12}")
    title: str = "Discharge summary"
    hash_override: str | None = None


def author() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": "author",
        "identifier": [{"system": "urn:oid:1.2.3.9.1789", "value": "DR-7"}],
        "name": [{"family": "Welby", "given": ["Marcus"], "prefix": ["Dr"]}],
        "telecom": [{"system": "email", "value": "marcus.welby@hospital.example"}],
    }


def document_reference(doc: Document, binary_url: str, patient: dict[str, Any]) -> dict[str, Any]:
    """A Comprehensive DocumentReference of ``doc``, its content the Binary at ``binary_url``."""
    return {
        "resourceType": "DocumentReference",
        "meta": {"profile": [f"{COMPREHENSIVE}.DocumentReference"]},
        "contained": [
            author(),
            {
                "resourceType": "Patient",
                "id": "src",
                "identifier": [
                    {"system": "urn:oid:1.3.6.1.4.1.21367.13.20.2000", "value": "MRN-7"}
                ],
                "name": [{"family": "Doe", "given": ["Jane"]}],
                "birthDate": "1970-01-01",
                "gender": "female",
            },
        ],
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{doc.unique_id}"},
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}]},
        "category": [
            {"coding": [{"system": LOINC, "code": "11490-0", "display": "Discharge note"}]}
        ],
        "subject": patient,
        "author": [{"reference": "#author"}],
        "description": "Summary of the stay",
        "securityLabel": [
            {"coding": [{"system": CONFIDENTIALITY, "code": "N", "display": "normal"}]}
        ],
        "content": [
            {
                "attachment": {
                    "contentType": doc.mime_type,
                    "language": "en-US",
                    "url": binary_url,
                    "size": len(doc.content),
                    "hash": doc.hash_override or sha1_b64(doc.content),
                    "title": doc.title,
                    "creation": "2024-03-01T10:15:00+01:00",
                },
                "format": {
                    "system": FORMAT_SYSTEM,
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                    "display": "mimeType Sufficient",
                },
            }
        ],
        "context": {
            "event": [
                {"coding": [{"system": SNOMED, "code": "183807002", "display": "Inpatient stay"}]}
            ],
            "period": {"start": "2024-02-27T08:00:00Z", "end": "2024-03-01T09:00:00Z"},
            "facilityType": {
                "coding": [{"system": SNOMED, "code": "22232009", "display": "Hospital"}]
            },
            "practiceSetting": {
                "coding": [{"system": SNOMED, "code": "394802001", "display": "General medicine"}]
            },
            "sourcePatientInfo": {"reference": "#src"},
            "related": [
                {
                    "identifier": {
                        "type": {
                            "coding": [
                                {
                                    "system": "urn:ietf:rfc:3986",
                                    "code": "urn:ihe:iti:xds:2013:accession",
                                }
                            ]
                        },
                        "system": "urn:oid:1.2.840.113619.6.197",
                        "value": "ACC-77",
                    }
                }
            ],
        },
    }


def submission_set(unique_id: str, patient: dict[str, Any], items: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "meta": {"profile": [f"{COMPREHENSIVE}.SubmissionSet"]},
        "contained": [author()],
        "extension": [
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                "valueIdentifier": {"value": f"urn:oid:{SOURCE_ID}"},
            },
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType",
                "valueCodeableConcept": {
                    "coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}]
                },
            },
        ],
        "identifier": [
            {"use": "usual", "system": "urn:ietf:rfc:3986", "value": f"urn:oid:{unique_id}"}
        ],
        "status": "current",
        "mode": "working",
        "title": "Discharge documents",
        "code": {"coding": [{"system": LIST_TYPES, "code": "submissionset"}]},
        "subject": patient,
        "date": "2024-03-01T10:20:00Z",
        "source": {"reference": "#author"},
        "entry": [{"item": {"reference": item}} for item in items],
    }


def provide_bundle(
    documents: list[Document],
    *,
    patient: dict[str, Any] | None = None,
    patient_id: str = "PAT-1",
    submission_set_uid: str | None = None,
    folder: bool = False,
) -> dict[str, Any]:
    """A transaction Bundle: SubmissionSet, one DocumentReference and Binary per document, and
    optionally a Folder holding the documents."""
    subject = patient or {"reference": f"Patient/{patient_id}"}
    entries: list[dict[str, Any]] = []
    references = []
    for doc in documents:
        ref_url, bin_url = urn(), urn()
        references.append(ref_url)
        entries.append(
            _entry(ref_url, document_reference(doc, bin_url, subject), "DocumentReference")
        )
        binary = {
            "resourceType": "Binary",
            "contentType": doc.mime_type,
            "data": base64.b64encode(doc.content).decode(),
        }
        entries.append(_entry(bin_url, binary, "Binary"))
    items = list(references)
    if folder:
        folder_url = urn()
        items.append(folder_url)
        entries.append(_entry(folder_url, folder_list(subject, references), "List"))
    ss_uid = submission_set_uid or f"{UID_ROOT}.{uuid.uuid4().int % 10**12}"
    entries.insert(0, _entry(urn(), submission_set(ss_uid, subject, items), "List"))
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [f"{COMPREHENSIVE}.ProvideBundle"]},
        "type": "transaction",
        "entry": entries,
    }


def folder_list(subject: dict[str, Any], items: list[str]) -> dict[str, Any]:
    return {
        "resourceType": "List",
        "extension": [
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-designationType",
                "valueCodeableConcept": {
                    "coding": [
                        {"system": SNOMED, "code": "394802001", "display": "General medicine"}
                    ]
                },
            }
        ],
        "identifier": [
            {
                "use": "usual",
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:oid:{UID_ROOT}.{uuid.uuid4().int % 10**12}",
            }
        ],
        "status": "current",
        "mode": "working",
        "title": "Stay of March 2024",
        "code": {"coding": [{"system": LIST_TYPES, "code": "folder"}]},
        "subject": subject,
        "entry": [{"item": {"reference": item}} for item in items],
    }


def _entry(full_url: str, resource: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": kind}}


def adt_a01(patient_id: str, *, control_id: str = "MSG-1") -> bytes:
    """An ITI-8 ADT^A01 feeding ``patient_id`` in the affinity domain, with a local id too."""
    return (
        "MSH|^~\\&|ADT|HOSP|XDS|REGION|20240102101500||ADT^A01^ADT_A01|"
        f"{control_id}|P|2.3.1\r"
        "EVN|A01|20240102101500\r"
        f"PID|||{patient_id}^^^&{DOMAIN}&ISO~L-{patient_id}^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"
        "||Doe^Jane||19700101|F|||1 Main Street^^Springfield^^12345^US\r"
        "PV1||O\r"
    ).encode()
