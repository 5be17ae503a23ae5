"""Model objects -> table rows: the indexed columns, the JSON body and the side-table rows.

Pure functions (no database): the caller gives the sequence number and the registration time.
Column meanings are those of ``schema.py``; times are normalised with ``codec.normalise_dtm``.
Standard: ITI TF-3 §4.2.3 (attributes), §4.2.3.2 (availabilityStatus Approved on registration),
§4.2.3.4 (Folder.lastUpdateTime is set by the registry).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.model import Association, DocumentEntry, Folder, SubmissionSet
from gateway.registry.codec import normalise_dtm, to_json

# DocumentEntry code attributes: (model field, object_code.attribute, column prefix or None)
_DE_CODES: tuple[tuple[str, str, str | None], ...] = (
    ("class_code", "classCode", "class"),
    ("type_code", "typeCode", "type"),
    ("format_code", "formatCode", "format"),
    ("practice_setting_code", "practiceSettingCode", "practice_setting"),
    ("healthcare_facility_type_code", "healthcareFacilityTypeCode", "healthcare_facility_type"),
    ("confidentiality_code", "confidentialityCode", None),
    ("event_code_list", "eventCodeList", None),
)


def _time(value: str | None) -> str | None:
    return normalise_dtm(value) if value else None


def _codes(value: Code | list[Code] | None) -> list[Code]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _code_rows(object_id: str, attribute: str, codes: list[Code]) -> Iterator[dict[str, str]]:
    seen: set[tuple[str, str]] = set()
    for code in codes:
        if (code.code, code.scheme) in seen:
            continue
        seen.add((code.code, code.scheme))
        yield {"object_id": object_id, "attribute": attribute, "code": code.code,
               "scheme": code.scheme}  # fmt: skip


def document_entry_row(entry: DocumentEntry, *, submission_set_id: str, seq: int) -> dict[str, Any]:
    """The ``document_entry`` row of an entry being registered (status from the model)."""
    row: dict[str, Any] = {
        "id": entry.entry_uuid,
        "logical_id": entry.logical_id or entry.entry_uuid,
        "version": 1,  # every ITI-42 object is the first version (ITI TF-3 §4.2.3.2 version)
        "unique_id": entry.unique_id,
        "patient_id": entry.patient_id,
        "status": entry.availability_status or v.STATUS_APPROVED,
        "object_type": entry.object_type or v.DOCUMENT_ENTRY_STABLE,
        "creation_time": _time(entry.creation_time),
        "service_start_time": _time(entry.service_start_time),
        "service_stop_time": _time(entry.service_stop_time),
        "repository_unique_id": entry.repository_unique_id,
        "hash": entry.hash,
        "size": entry.size,
        "mime_type": entry.mime_type,
        "home_community_id": entry.home_community_id,
        "submission_set_id": submission_set_id,
        "seq": seq,
        "body": to_json(entry),
    }
    for field, _attribute, prefix in _DE_CODES:
        if prefix is None:
            continue
        code = getattr(entry, field)
        row[f"{prefix}_code"] = code.code if code else None
        row[f"{prefix}_scheme"] = code.scheme if code else None
    return row


def submission_set_row(submission_set: SubmissionSet, *, seq: int) -> dict[str, Any]:
    """The ``submission_set`` row of a SubmissionSet being registered."""
    code = submission_set.content_type_code
    return {
        "id": submission_set.entry_uuid,
        "unique_id": submission_set.unique_id,
        "patient_id": submission_set.patient_id,
        "status": submission_set.availability_status or v.STATUS_APPROVED,
        "source_id": submission_set.source_id,
        "submission_time": _time(submission_set.submission_time),
        "content_type_code": code.code if code else None,
        "content_type_scheme": code.scheme if code else None,
        "home_community_id": submission_set.home_community_id,
        "seq": seq,
        "body": to_json(submission_set),
    }


def folder_row(folder: Folder, *, seq: int) -> dict[str, Any]:
    """The ``folder`` row of a Folder being registered (lastUpdateTime from the model)."""
    return {
        "id": folder.entry_uuid,
        "logical_id": folder.logical_id or folder.entry_uuid,
        "version": 1,
        "unique_id": folder.unique_id,
        "patient_id": folder.patient_id,
        "status": folder.availability_status or v.STATUS_APPROVED,
        "last_update_time": _time(folder.last_update_time),
        "home_community_id": folder.home_community_id,
        "seq": seq,
        "body": to_json(folder),
    }


def association_row(association: Association, *, seq: int) -> dict[str, Any]:
    """The ``association`` row of an Association being registered."""
    return {
        "id": association.entry_uuid,
        "association_type": association.association_type,
        "source_id": association.source_object,
        "target_id": association.target_object,
        "status": association.availability_status or v.STATUS_APPROVED,
        "submission_set_status": association.submission_set_status,
        "seq": seq,
        "body": to_json(association),
    }


def code_rows(obj: DocumentEntry | SubmissionSet | Folder) -> list[dict[str, str]]:
    """``object_code`` rows: every code of the object under its XDS attribute name."""
    rows: list[dict[str, str]] = []
    if isinstance(obj, DocumentEntry):
        for field, attribute, _prefix in _DE_CODES:
            rows.extend(_code_rows(obj.entry_uuid, attribute, _codes(getattr(obj, field))))
    elif isinstance(obj, SubmissionSet):
        codes = _codes(obj.content_type_code)
        rows.extend(_code_rows(obj.entry_uuid, "contentTypeCode", codes))
    else:
        rows.extend(_code_rows(obj.entry_uuid, "codeList", obj.code_list))
    return rows


def author_rows(obj: DocumentEntry | SubmissionSet) -> list[dict[str, str]]:
    """``object_author`` rows: the authorPerson of each author that has one."""
    persons = dict.fromkeys(a.person for a in obj.author if a.person)
    return [{"object_id": obj.entry_uuid, "person": person} for person in persons]


def reference_id_rows(entry: DocumentEntry) -> list[dict[str, str]]:
    """``reference_id`` rows: the referenceIdList values of a DocumentEntry."""
    values = dict.fromkeys(entry.reference_id_list)
    return [{"object_id": entry.entry_uuid, "value": value} for value in values]
