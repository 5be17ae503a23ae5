"""Attribute checks of single metadata objects (used by ``gateway.metadata.validate``).

Each check appends an XDS error and carries on, so one run reports every problem. The value
rules are a table from model field to checker, as ITI TF-3 §4.2.3 lists a data type per attribute
(Table 4.2.3.1.7-2 for the types; rev. 19.0).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from gateway.errors import XDSError
from gateway.metadata import vocabulary as v
from gateway.metadata.codes import CodeSet
from gateway.metadata.datatypes import (
    Code,
    DataTypeError,
    check_document_unique_id,
    is_home_community_id,
    is_oid,
    is_uuid_urn,
    parse_cx,
    parse_cxi,
    parse_dtm,
    parse_source_patient_info,
    parse_xcn,
    parse_xon,
    parse_xtn,
)
from gateway.metadata.model import (
    Association,
    Author,
    DocumentEntry,
    Folder,
    ObjectRef,
    SubmissionSet,
)

SLOT_VALUE_MAX_LENGTH = 256  # ebRIM 3.0 LongName; ITI TF-3 §4.2.3.1.1 (attribute value length)

_HASH = re.compile(r"^[0-9a-fA-F]{40}$")  # SHA-1, hexBinary (TF-3 DocumentEntry.hash)
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")  # RFC 5646 tag (languageCode)
_MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(;.*)?$")  # RFC 2045 (mimeType)

# Model field -> the classification scheme of its codes (for the optional code set check).
_CODE_SCHEMES: dict[str, str] = {
    "class_code": v.DOCUMENT_ENTRY_CLASS_CODE,
    "confidentiality_code": v.DOCUMENT_ENTRY_CONFIDENTIALITY_CODE,
    "event_code_list": v.DOCUMENT_ENTRY_EVENT_CODE_LIST,
    "format_code": v.DOCUMENT_ENTRY_FORMAT_CODE,
    "healthcare_facility_type_code": v.DOCUMENT_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
    "practice_setting_code": v.DOCUMENT_ENTRY_PRACTICE_SETTING_CODE,
    "type_code": v.DOCUMENT_ENTRY_TYPE_CODE,
    "content_type_code": v.SUBMISSION_SET_CONTENT_TYPE_CODE,
    "code_list": v.FOLDER_CODE_LIST,
    "association_documentation": v.ASSOCIATION_DOCUMENTATION,
}

# XDS attribute names where snake_case -> camelCase is not enough.
_XDS_NAMES = {
    "entry_uuid": "entryUUID",
    "logical_id": "logicalID",
    "uri": "URI",
    "association_type": "associationType",
    "submission_set_status": "SubmissionSetStatus",
}


def xds_name(attr: str) -> str:
    """The ITI TF-3 name of a model field (``healthcare_facility_type_code`` ->
    ``healthcareFacilityTypeCode``)."""
    if attr in _XDS_NAMES:
        return _XDS_NAMES[attr]
    head, *rest = attr.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _check(predicate: Callable[[str], bool], message: str) -> Callable[[str], None]:
    def check(value: str) -> None:
        if not predicate(value):
            raise DataTypeError(f"{value!r} {message}")

    return check


def _one_of(allowed: frozenset[str]) -> Callable[[str], None]:
    return _check(lambda value: value in allowed, f"is not one of {sorted(allowed)}")


def _source_cx(value: str) -> None:
    """sourcePatientId: a CX with ID and assigning authority (the source's local domain, which
    need not use an OID; ITI TF-3 §4.2.3.2 DocumentEntry.sourcePatientId)."""
    parts = value.split("^")
    if not parts[0] or len(parts) < 4 or not parts[3]:
        raise DataTypeError(f"{value!r} is not a CX with ID (CX.1) and assigning authority (CX.4)")


def _intended_recipient(value: str) -> None:
    """``XON|XCN|XTN``; at least an organization or a person or a telecom address
    (ITI TF-3 §4.2.3.3 SubmissionSet.intendedRecipient)."""
    organization, person, telecom = ([*value.split("|"), "", ""])[:3]
    if value.count("|") > 2 or not (organization or person or telecom):
        raise DataTypeError(f"{value!r} is not of the form XON|XCN|XTN")
    if organization:
        parse_xon(organization)
    if person:
        parse_xcn(person)
    if telecom:
        parse_xtn(telecom)


# Model field -> check of one value (ITI TF-3 §4.2.3.2 - §4.2.3.4, data types of Table 4.2.3.1.7-2).
_VALUE_CHECKS: dict[str, Callable[[str], Any]] = {
    "patient_id": parse_cx,
    "source_patient_id": _source_cx,
    "creation_time": parse_dtm,
    "service_start_time": parse_dtm,
    "service_stop_time": parse_dtm,
    "submission_time": parse_dtm,
    "last_update_time": parse_dtm,
    "hash": _check(lambda value: bool(_HASH.match(value)), "is not a SHA-1 hash in hex"),
    "language_code": _check(lambda value: bool(_LANGUAGE.match(value)), "is not a language tag"),
    "legal_authenticator": parse_xcn,
    "mime_type": _check(lambda value: bool(_MIME.match(value)), "is not a MIME type"),
    "repository_unique_id": _check(is_oid, "is not an OID"),
    "source_id": _check(is_oid, "is not an OID"),
    "home_community_id": _check(is_home_community_id, "is not urn:oid: followed by an OID"),
    "logical_id": _check(is_uuid_urn, "is not a urn:uuid: (logicalID is never symbolic)"),
    "availability_status": _one_of(v.AVAILABILITY_STATUSES),
    "document_availability": _one_of(v.DOCUMENT_AVAILABILITIES),
    "submission_set_status": _one_of(v.SUBMISSION_SET_STATUSES),
}
_LIST_CHECKS: dict[str, Callable[[str], Any]] = {
    "reference_id_list": parse_cxi,
    "source_patient_info": lambda value: parse_source_patient_info([value]),
    "intended_recipient": _intended_recipient,
}


def _missing(value: Any) -> bool:
    return value is None or value == "" or value == []


class ObjectChecker:
    """Checks the attributes of single objects and collects the errors in ``errors``."""

    def __init__(self, metadata_error: type[XDSError], code_set: CodeSet | None) -> None:
        self.metadata_error = metadata_error
        self.code_set = code_set
        self.errors: list[XDSError] = []

    def metadata(self, where: str, message: str) -> None:
        """Record a metadata error (XDSRegistryMetadataError or XDSRepositoryMetadataError)."""
        self.errors.append(self.metadata_error(f"{where}: {message}", location=where))

    # --- per object type ----------------------------------------------------------------------
    def document_entry(
        self,
        entry: DocumentEntry,
        required: frozenset[str],
        *,
        object_types: frozenset[str],
        allow_limited: bool,
    ) -> None:
        """Check a DocumentEntry (ITI TF-3 §4.2.3.2)."""
        where = f"DocumentEntry {entry.entry_uuid}"
        self._common(entry, required, where, allow_limited=allow_limited)
        if entry.unique_id:
            self._value(where, "uniqueId", entry.unique_id, check_document_unique_id)
        if entry.object_type and entry.object_type not in object_types:
            self.metadata(where, f"objectType {entry.object_type} is not accepted here")
        if entry.size is not None and entry.size < 0:
            self.metadata(where, f"size {entry.size} is negative")
        if (
            entry.mime_type
            and self.code_set
            and not self.code_set.allows_mime_type(entry.mime_type)
        ):
            self.metadata(where, f"mimeType {entry.mime_type} is not in the affinity domain")

    def submission_set(
        self, submission_set: SubmissionSet, required: frozenset[str], *, allow_limited: bool
    ) -> None:
        """Check the SubmissionSet (ITI TF-3 §4.2.3.3)."""
        where = f"SubmissionSet {submission_set.entry_uuid}"
        self._common(submission_set, required, where, allow_limited=allow_limited)
        self._oid(where, "uniqueId", submission_set.unique_id)

    def folder(self, folder: Folder, required: frozenset[str], *, allow_limited: bool) -> None:
        """Check a Folder (ITI TF-3 §4.2.3.4)."""
        where = f"Folder {folder.entry_uuid}"
        self._common(folder, required, where, allow_limited=allow_limited)
        self._oid(where, "uniqueId", folder.unique_id)

    def association(
        self, association: Association, required: frozenset[str], types: frozenset[str]
    ) -> None:
        """Check one Association's own attributes (ITI TF-3 §4.2.2); links are checked by
        ``_references``."""
        where = f"Association {association.entry_uuid or '(without id)'}"
        self._common(association, required, where, allow_limited=False)
        if association.association_type and association.association_type not in types:
            self.metadata(where, f"associationType {association.association_type} not allowed")

    def object_ref(self, ref: ObjectRef) -> None:
        """An ObjectRef names an object already in the registry: a UUID (ebRS 3.0 §2.5)."""
        if not is_uuid_urn(ref.entry_uuid):
            self.metadata(f"ObjectRef {ref.entry_uuid}", "the id of an ObjectRef must be a UUID")
        self._extra_slots(ref.extra_slots, f"ObjectRef {ref.entry_uuid}")

    # --- shared -------------------------------------------------------------------------------
    def _common(
        self, obj: Any, required: frozenset[str], where: str, *, allow_limited: bool
    ) -> None:
        for attr in sorted(required):
            if _missing(getattr(obj, attr)):
                self.metadata(where, f"{xds_name(attr)} is missing")
        for field_ in fields(obj):
            value = getattr(obj, field_.name)
            if not _missing(value):
                self._field(where, field_.name, value)
        if obj.entry_uuid.startswith("urn:uuid:") and not is_uuid_urn(obj.entry_uuid):
            self.metadata(where, "entryUUID starts with urn:uuid: but is not a UUID")
        for index, author in enumerate(getattr(obj, "author", [])):
            self._author(f"{where} author {index + 1}", author)
        if getattr(obj, "limited_metadata", False) and not allow_limited:
            self.metadata(where, "limitedMetadata is only allowed in XDR and XDM")
        self._extra_slots(obj.extra_slots, where)

    def _field(self, where: str, attr: str, value: Any) -> None:
        """Check one present attribute by the rule its name maps to."""
        if attr in _VALUE_CHECKS:
            self._value(where, xds_name(attr), value, _VALUE_CHECKS[attr])
        elif attr in _LIST_CHECKS:
            for item in value:
                self._value(where, xds_name(attr), item, _LIST_CHECKS[attr])
        elif attr in _CODE_SCHEMES:
            for code in value if isinstance(value, list) else [value]:
                self._code(where, attr, code)

    def _value(self, where: str, name: str, value: str, check: Callable[[str], Any]) -> None:
        try:
            check(value)
        except DataTypeError as exc:
            self.metadata(where, f"{name}: {exc}")

    def _oid(self, where: str, name: str, value: str | None) -> None:
        if value and not is_oid(value):
            self.metadata(where, f"{name} {value!r} is not an OID of at most 64 characters")

    def _code(self, where: str, attr: str, code: Code) -> None:
        """A code needs code, codingScheme and display name (ITI TF-3 §4.2.3.1.2)."""
        name = xds_name(attr)
        if not code.code:
            self.metadata(where, f"{name} has no code (nodeRepresentation)")
        if not code.scheme:
            self.metadata(where, f"{name} {code.code!r} has no codingScheme")
        if not code.display_name:
            self.metadata(where, f"{name} {code.code!r} has no display name (Name)")
        scheme = _CODE_SCHEMES[attr]
        if self.code_set is not None and not self.code_set.allows(scheme, code):
            self.metadata(
                where, f"{name} {code.code}^^{code.scheme} is not in the affinity domain code set"
            )

    def _author(self, where: str, author: Author) -> None:
        """ITI TF-3 §4.2.3.1.4: authorPerson, authorInstitution or authorTelecommunication."""
        if not (author.person or author.institution or author.telecom):
            self.metadata(where, "needs authorPerson, authorInstitution or authorTelecommunication")
        if author.person:
            self._value(where, "authorPerson", author.person, parse_xcn)
        for institution in author.institution:
            self._value(where, "authorInstitution", institution, parse_xon)
        for telecom in author.telecom:
            self._value(where, "authorTelecommunication", telecom, parse_xtn)
        for values in (author.institution, author.role, author.specialty, author.telecom):
            self._lengths(where, values)
        self._extra_slots(author.extra_slots, where)

    def _extra_slots(self, slots: dict[str, list[str]], where: str) -> None:
        """Extra metadata slots: a URN name that is not an IHE slot (ITI TF-3 §4.2.3.1.5)."""
        for name, values in slots.items():
            if name in v.SLOT_NAMES:
                self.metadata(where, f"slot {name!r} is not allowed on this object")
            elif not name.startswith("urn:"):
                self.metadata(where, f"extra metadata slot {name!r} must be named by a URN")
            self._lengths(where, values)

    def _lengths(self, where: str, values: list[str]) -> None:
        for value in values:
            if len(value) > SLOT_VALUE_MAX_LENGTH:
                self.metadata(
                    where, f"slot value longer than {SLOT_VALUE_MAX_LENGTH}: {value[:40]}…"
                )
