"""The metadata ``xdsi-gateway provide`` submits: a template filled in for one file.

The template is either a file (an ``lcm:SubmitObjectsRequest`` or a whole
``xdsb:ProvideAndRegisterDocumentSetRequest`` in ebRIM 3.0, holding exactly one DocumentEntry)
or the built-in one: a SubmissionSet, one DocumentEntry and their HasMember association, coded
with values of the NIST Connectathon code set (``formatCode``
urn:ihe:iti:xds:2017:mimeTypeSufficient, the IHE format code for documents whose mimeType says
enough). Whatever the template holds,
:func:`fill` sets the patient id everywhere, fresh uniqueIds (unless kept), the submission
time, and the file's mimeType, size and hash; options replace codes and the title.

Standard: ITI TF-3 §4.1-§4.2 (metadata), Table 4.3.1-3 (attributes a Document Source sends),
ITI TF-3 §4.2.3.2 formatCode (mimeTypeSufficient), ISO/IEC 9834-8 (``2.25.<UUID>`` OIDs).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, format_dtm
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.model import Association, DocumentEntry, Folder, Submission, SubmissionSet
from gateway.soap.safexml import parse_bytes

DEFAULT_CODES: Mapping[str, Code] = {
    "class_code": Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
    "type_code": Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
    "format_code": Code(
        "urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3", "mimeType Sufficient"
    ),
    "confidentiality_code": Code("N", "2.16.840.1.113883.5.25", "normal"),
    "healthcare_facility_type_code": Code("22232009", "2.16.840.1.113883.6.96", "Hospital"),
    "practice_setting_code": Code(
        "309964003", "2.16.840.1.113883.6.96", "Radiology department (environment)"
    ),
    "content_type_code": Code("22232009", "2.16.840.1.113883.6.96", "Hospital"),
}
CODE_OPTIONS = tuple(DEFAULT_CODES)
# A stable sourceId for submissions made with this command (UUID v5 of its name, as an OID).
DEFAULT_SOURCE_ID = "2.25." + str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:xdsi-gateway:provide").int)


class TemplateError(ValueError):
    """The template file is unreadable, not ebRIM 3.0 metadata, or not one DocumentEntry."""


def new_oid() -> str:
    """A fresh globally unique OID ``2.25.<random UUID as an integer>`` (ISO/IEC 9834-8)."""
    return f"2.25.{uuid.uuid4().int}"


def parse_code(value: str) -> Code:
    """Read ``code^display^codingScheme`` (display may be empty: ``code^^scheme``).

    Raises:
        ValueError: not three components, or an empty code or scheme.
    """
    parts = value.split("^")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise ValueError(f"{value!r} is not code^display^codingScheme")
    return Code(parts[0], parts[2], parts[1] or None)


@dataclass(slots=True, kw_only=True)
class FillOptions:
    """What the command line says about the submission."""

    patient_id: str
    mime_type: str | None = None
    title: str | None = None
    source_id: str | None = None
    codes: dict[str, Code] = field(default_factory=dict)  # model field name -> code
    keep_ids: bool = False


def default_submission() -> Submission:
    """The built-in template: SubmissionSet01, Document01 and their HasMember association."""
    submission_set = SubmissionSet(
        entry_uuid="SubmissionSet01",
        content_type_code=DEFAULT_CODES["content_type_code"],
        source_id=DEFAULT_SOURCE_ID,
    )
    entry = DocumentEntry(
        entry_uuid="Document01",
        class_code=DEFAULT_CODES["class_code"],
        type_code=DEFAULT_CODES["type_code"],
        format_code=DEFAULT_CODES["format_code"],
        confidentiality_code=[DEFAULT_CODES["confidentiality_code"]],
        healthcare_facility_type_code=DEFAULT_CODES["healthcare_facility_type_code"],
        practice_setting_code=DEFAULT_CODES["practice_setting_code"],
        language_code="en-US",
    )
    association = Association(
        entry_uuid="HasMember01",
        association_type=v.HAS_MEMBER,
        source_object=submission_set.entry_uuid,
        target_object=entry.entry_uuid,
        submission_set_status=v.SUBMISSION_SET_STATUS_ORIGINAL,
    )
    return Submission(
        submission_set=submission_set, document_entries=[entry], associations=[association]
    )


def load_template(path: Path) -> Submission:
    """Read a template file. Raises: TemplateError."""
    try:
        root = parse_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    try:
        submission = parse_submit_objects_request(root)
    except Exception as exc:  # XDSErrorList: structural problems, all listed in the message
        raise TemplateError(f"{path}: not ebRIM 3.0 submission metadata: {exc}") from exc
    if len(submission.document_entries) != 1 or submission.submission_set is None:
        raise TemplateError(f"{path}: a template holds one SubmissionSet and one DocumentEntry")
    return submission


def fill(
    submission: Submission,
    options: FillOptions,
    *,
    file_name: str,
    size: int | None,
    sha1: str | None,
    now: datetime | None = None,
    new_uid: Callable[[], str] = new_oid,
) -> DocumentEntry:
    """Complete the template for one file; return its DocumentEntry.

    Standard: ITI TF-3 §4.2.3.2-§4.2.3.3 (patientId on SubmissionSet, DocumentEntry and
    Folder alike, ITI TF-2 §3.42.4.1.3; submissionTime; uniqueId; hash; size).
    """
    moment = now or datetime.now(UTC)
    [entry] = submission.document_entries
    submission_set = submission.submission_set
    assert submission_set is not None
    objects: list[SubmissionSet | DocumentEntry | Folder] = [
        submission_set,
        entry,
        *submission.folders,
    ]
    for obj in objects:
        obj.patient_id = options.patient_id
        if not options.keep_ids or not obj.unique_id:
            obj.unique_id = new_uid()
    entry.source_patient_id = entry.source_patient_id or options.patient_id
    submission_set.submission_time = format_dtm(moment)
    submission_set.source_id = options.source_id or submission_set.source_id or DEFAULT_SOURCE_ID
    entry.creation_time = entry.creation_time or format_dtm(moment)
    entry.mime_type = options.mime_type or entry.mime_type or "application/octet-stream"
    entry.title = options.title or entry.title or file_name
    entry.size, entry.hash = size, sha1
    for name, code in options.codes.items():
        if name == "content_type_code":
            submission_set.content_type_code = code
        elif name == "confidentiality_code":
            entry.confidentiality_code = [code]
        else:
            setattr(entry, name, code)
    return entry
