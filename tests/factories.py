"""Valid XDS metadata for tests (IPF's SampleData idea): every factory returns an object that
passes ``gateway.metadata.validate`` for ITI-42, and takes keyword overrides for any field.

    entry = make_document_entry(unique_id="1.2.3.4.5", mime_type="application/dicom")
    submission = make_submission(entries=2, folder=True)

Codes come from the NIST Connectathon code set (``codes.xml``) so the submissions also pass a
strict code check against it; ids, uniqueIds and patient ids are fixed so tests are reproducible.
"""

from __future__ import annotations

from typing import Any

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    Submission,
    SubmissionSet,
)

PATIENT_ID = "PAT-42^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
SOURCE_PATIENT_ID = "MRN-7^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.13.40.100"
SOURCE_ID = "1.3.6.1.4.1.21367.13.80.100"
UID_ROOT = "1.3.6.1.4.1.21367.2024.99"

CLASS_CODE = Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
CONFIDENTIALITY_CODE = Code("N", "2.16.840.1.113883.5.25", "normal")
FORMAT_CODE = Code(
    "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document"
)
HEALTHCARE_FACILITY_TYPE_CODE = Code("22232009", "2.16.840.1.113883.6.96", "Hospital")
PRACTICE_SETTING_CODE = Code(
    "309964003", "2.16.840.1.113883.6.96", "Radiology department (environment)"
)
TYPE_CODE = Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
EVENT_CODE = Code("CT", "1.2.840.10008.2.16.4", "Computed Tomography")
CONTENT_TYPE_CODE = Code("22232009", "2.16.840.1.113883.6.96", "Hospital")
FOLDER_CODE = Code("Referrals", "1.3.6.1.4.1.21367.2017.3", "Referrals")


def make_author(**overrides: Any) -> Author:
    """An author with person, institution, role, specialty and telecom."""
    values: dict[str, Any] = {
        "person": "^Welby^Marcus^^^Dr^MD",
        "institution": ["Some Hospital^^^^^&1.2.3.9.1789&ISO^^^^45"],
        "role": ["Attending"],
        "specialty": ["Radiology"],
        "telecom": ["^^Internet^marcus.welby@hospital.example"],
    }
    values.update(overrides)
    return Author(**values)


def make_document_entry(**overrides: Any) -> DocumentEntry:
    """A complete, valid stable DocumentEntry (a KOS manifest) with symbolic id ``Document01``."""
    values: dict[str, Any] = {
        "entry_uuid": "Document01",
        "mime_type": "application/dicom",
        "title": "CT chest",
        "comments": "Key images",
        "author": [make_author()],
        "class_code": CLASS_CODE,
        "confidentiality_code": [CONFIDENTIALITY_CODE],
        "creation_time": "20240102030405",
        "event_code_list": [EVENT_CODE],
        "format_code": FORMAT_CODE,
        "hash": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "healthcare_facility_type_code": HEALTHCARE_FACILITY_TYPE_CODE,
        "language_code": "en-US",
        "legal_authenticator": "^Welby^Marcus^^^Dr^MD",
        "patient_id": PATIENT_ID,
        "practice_setting_code": PRACTICE_SETTING_CODE,
        "reference_id_list": ["ACC-1^^^&1.2.840.113619.6.197&ISO^urn:ihe:iti:xds:2013:accession"],
        "repository_unique_id": REPOSITORY_UNIQUE_ID,
        "service_start_time": "20240102",
        "service_stop_time": "202401020400",
        "size": 1024,
        "source_patient_id": SOURCE_PATIENT_ID,
        "source_patient_info": [
            "PID-3|MRN-7^^^&1.3.6.1.4.1.21367.13.20.2000&ISO",
            "PID-5|Doe^Jane",
        ],
        "type_code": TYPE_CODE,
        "unique_id": f"{UID_ROOT}.1",
    }
    values.update(overrides)
    return DocumentEntry(**values)


def make_submission_set(**overrides: Any) -> SubmissionSet:
    """A valid SubmissionSet with symbolic id ``SubmissionSet01``."""
    values: dict[str, Any] = {
        "entry_uuid": "SubmissionSet01",
        "title": "Imaging study",
        "author": [make_author()],
        "content_type_code": CONTENT_TYPE_CODE,
        "intended_recipient": ["Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789|^Welby^Marcus"],
        "patient_id": PATIENT_ID,
        "source_id": SOURCE_ID,
        "submission_time": "20240102030500",
        "unique_id": f"{UID_ROOT}.100",
    }
    values.update(overrides)
    return SubmissionSet(**values)


def make_folder(**overrides: Any) -> Folder:
    """A valid Folder with symbolic id ``Folder01``."""
    values: dict[str, Any] = {
        "entry_uuid": "Folder01",
        "title": "Radiology",
        "code_list": [FOLDER_CODE],
        "patient_id": PATIENT_ID,
        "unique_id": f"{UID_ROOT}.200",
    }
    values.update(overrides)
    return Folder(**values)


def make_has_member(source: str, target: str, **overrides: Any) -> Association:
    """A HasMember association (SubmissionSetStatus Original unless overridden)."""
    values: dict[str, Any] = {
        "entry_uuid": f"HasMember-{source}-{target}",
        "association_type": v.HAS_MEMBER,
        "source_object": source,
        "target_object": target,
        "submission_set_status": v.SUBMISSION_SET_STATUS_ORIGINAL,
    }
    values.update(overrides)
    return Association(**values)


def make_submission(*, entries: int = 1, folder: bool = False, **overrides: Any) -> Submission:
    """A valid Submission: SubmissionSet, ``entries`` DocumentEntries (``Document01``...), an
    optional Folder holding them all, and every HasMember association ITI TF-3 §4.2.2 asks for.
    ``overrides`` replace whole Submission fields (``associations=[...]``)."""
    submission_set = make_submission_set()
    documents = [
        make_document_entry(entry_uuid=f"Document{n:02d}", unique_id=f"{UID_ROOT}.{n}")
        for n in range(1, entries + 1)
    ]
    associations = [make_has_member(submission_set.entry_uuid, d.entry_uuid) for d in documents]
    folders = []
    if folder:
        folders.append(make_folder())
        associations.append(
            make_has_member(submission_set.entry_uuid, "Folder01", submission_set_status=None)
        )
        for document in documents:
            link = make_has_member("Folder01", document.entry_uuid, submission_set_status=None)
            associations.append(link)
            associations.append(
                make_has_member(
                    submission_set.entry_uuid, link.entry_uuid, submission_set_status=None
                )
            )
    values: dict[str, Any] = {
        "submission_set": submission_set,
        "document_entries": documents,
        "folders": folders,
        "associations": associations,
    }
    values.update(overrides)
    return Submission(**values)
