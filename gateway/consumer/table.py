"""Stored-query results for people (a table) and for programs (JSON).

Documents are listed with title, date (serviceStartTime, else creationTime), modality (the
eventCodeList codes of DICOM CID 29, RAD TF-3 §4.68.4.1.2.3.2), Study Instance UID (the
referenceIdList value of type ``urn:ihe:iti:xds:2016:studyInstanceUID``, ITI TF-3 §4.2.3.2.28),
availability status, uniqueId and, when the answer names them (an Initiating Gateway's, XCA),
the community (homeCommunityId); other objects with the attributes that identify them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from gateway.consumer.queries import DCM_SCHEME, STUDY_INSTANCE_UID_TYPE
from gateway.metadata.model import (
    Association,
    DocumentEntry,
    Folder,
    RegistryObject,
    SubmissionSet,
)


def pretty_dtm(value: str | None) -> str:
    """An XDS DTM (UTC) as ``YYYY-MM-DD HH:MM`` (as much as it has)."""
    if not value:
        return ""
    text = value[:4]
    for start, separator in ((4, "-"), (6, "-"), (8, " "), (10, ":")):
        if len(value) > start:
            text += separator + value[start : start + 2]
    return text


def short_status(status: str | None) -> str:
    """``Approved`` from ``urn:oasis:names:tc:ebxml-regrep:StatusType:Approved``."""
    return (status or "").rsplit(":", 1)[-1]


def study_uids(entry: DocumentEntry) -> list[str]:
    """The Study Instance UIDs an entry's referenceIdList names."""
    found = []
    for value in entry.reference_id_list:
        parts = value.split("^")
        if len(parts) >= 5 and parts[4] == STUDY_INSTANCE_UID_TYPE:
            found.append(parts[0])
    return found


def modalities(entry: DocumentEntry) -> list[str]:
    """The acquisition modality codes of an entry's eventCodeList."""
    return [code.code for code in entry.event_code_list if code.scheme == DCM_SCHEME]


def document_row(entry: DocumentEntry) -> dict[str, str]:
    """One table row of a DocumentEntry."""
    return {
        "title": entry.title or "",
        "date": pretty_dtm(entry.service_start_time or entry.creation_time),
        "modality": "/".join(modalities(entry)),
        "study": ", ".join(study_uids(entry)),
        "status": short_status(entry.availability_status),
        "unique_id": entry.unique_id or "",
        "community": entry.home_community_id or "",  # homeCommunityId (XCA)
    }


def _other_row(obj: RegistryObject) -> dict[str, str]:
    if isinstance(obj, SubmissionSet):
        return {
            "kind": "SubmissionSet",
            "id": obj.unique_id or obj.entry_uuid,
            "date": pretty_dtm(obj.submission_time),
            "status": short_status(obj.availability_status),
            "detail": obj.title or "",
        }
    if isinstance(obj, Folder):
        return {
            "kind": "Folder",
            "id": obj.unique_id or obj.entry_uuid,
            "date": pretty_dtm(obj.last_update_time),
            "status": short_status(obj.availability_status),
            "detail": obj.title or "",
        }
    if isinstance(obj, Association):
        return {
            "kind": "Association",
            "id": obj.entry_uuid,
            "date": "",
            "status": short_status(obj.availability_status),
            "detail": f"{obj.association_type.rsplit(':', 1)[-1]} "
            f"{obj.source_object} -> {obj.target_object}",
        }
    return {"kind": "ObjectRef", "id": obj.entry_uuid, "date": "", "status": "", "detail": ""}


_DOCUMENT_COLUMNS = (
    ("title", "TITLE"),
    ("date", "DATE"),
    ("modality", "MODALITY"),
    ("study", "STUDY INSTANCE UID"),
    ("status", "STATUS"),
    ("unique_id", "DOCUMENT UNIQUE ID"),
)
_OTHER_COLUMNS = (
    ("kind", "OBJECT"),
    ("id", "ID"),
    ("date", "DATE"),
    ("status", "STATUS"),
    ("detail", "DETAIL"),
)


def _render(rows: Sequence[dict[str, str]], columns: Sequence[tuple[str, str]]) -> list[str]:
    widths = {key: max([len(title), *(len(row[key]) for row in rows)]) for key, title in columns}
    lines = ["  ".join(title.ljust(widths[key]) for key, title in columns).rstrip()]
    lines += ["  ".join(row[key].ljust(widths[key]) for key, _ in columns).rstrip() for row in rows]
    return lines


def render_table(objects: Sequence[RegistryObject]) -> str:
    """The objects as aligned text: documents first, then any other objects, then a count."""
    documents = [document_row(o) for o in objects if isinstance(o, DocumentEntry)]
    others = [_other_row(o) for o in objects if not isinstance(o, DocumentEntry)]
    lines: list[str] = []
    if documents:
        columns: tuple[tuple[str, str], ...] = _DOCUMENT_COLUMNS
        if any(row["community"] for row in documents):  # answers from several communities
            columns = (*columns, ("community", "COMMUNITY"))
        lines += _render(documents, columns)
    if others:
        lines += ([""] if lines else []) + _render(others, _OTHER_COLUMNS)
    counts = f"{len(documents)} document(s)" + (
        f", {len(others)} other object(s)" if others else ""
    )
    lines.append(counts if lines else "no results")
    return "\n".join(lines)


def _plain(obj: RegistryObject) -> dict[str, Any]:
    data = dataclasses.asdict(obj)
    data = {key: value for key, value in data.items() if value not in (None, [], {}, False)}
    return {"kind": type(obj).__name__, **data}


def render_json(objects: Sequence[RegistryObject], *, status: str, errors: Sequence[str]) -> str:
    """The response as JSON: status, errors, and every object with its model fields."""
    payload = {
        "status": status,
        "errors": list(errors),
        "objects": [_plain(obj) for obj in objects],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)
