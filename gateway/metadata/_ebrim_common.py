"""Tables shared by the ebRIM reader and writer: which slot, classification and external
identifier carries which model attribute.

One row per XDS attribute, read from the ebRIM representation tables of ITI TF-3 §4.2.3.2
(DocumentEntry), §4.2.3.3 (SubmissionSet), §4.2.3.4 (Folder), §4.2.3.1.4 (author) and §4.2.2
(association slots), rev. 19.0. The reader and the writer both walk these rows, which keeps the
two directions symmetric.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import Enum

from gateway.metadata import vocabulary as v
from gateway.soap import ns


class Kind(Enum):
    """How a slot's ValueList maps to a model attribute."""

    ONE = "one"  # exactly one Value -> str
    MANY = "many"  # any number of Values -> list[str]
    INT = "int"  # exactly one Value -> int (size)
    URI = (
        "uri"  # one Value, or several "n|part" Values joined (ITI TF-3 §4.2.3.2 DocumentEntry.URI)
    )


@dataclass(frozen=True, slots=True)
class SlotField:
    slot: str
    attr: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class CodeField:
    scheme: v.UUID
    attr: str
    many: bool


@dataclass(frozen=True, slots=True)
class IdField:
    scheme: v.UUID
    attr: str


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything that maps one XDS object type to ebRIM."""

    slots: tuple[SlotField, ...]
    codes: tuple[CodeField, ...]
    ids: tuple[IdField, ...]
    author_scheme: str | None
    limited_node: str | None
    package_node: str | None  # SubmissionSet / Folder classification node


DOCUMENT_ENTRY = Spec(
    slots=(
        SlotField(v.SLOT_CREATION_TIME, "creation_time", Kind.ONE),
        SlotField(v.SLOT_HASH, "hash", Kind.ONE),
        SlotField(v.SLOT_LANGUAGE_CODE, "language_code", Kind.ONE),
        SlotField(v.SLOT_LEGAL_AUTHENTICATOR, "legal_authenticator", Kind.ONE),
        SlotField(v.SLOT_REPOSITORY_UNIQUE_ID, "repository_unique_id", Kind.ONE),
        SlotField(v.SLOT_SERVICE_START_TIME, "service_start_time", Kind.ONE),
        SlotField(v.SLOT_SERVICE_STOP_TIME, "service_stop_time", Kind.ONE),
        SlotField(v.SLOT_SIZE, "size", Kind.INT),
        SlotField(v.SLOT_SOURCE_PATIENT_ID, "source_patient_id", Kind.ONE),
        SlotField(v.SLOT_SOURCE_PATIENT_INFO, "source_patient_info", Kind.MANY),
        SlotField(v.SLOT_URI, "uri", Kind.URI),
        SlotField(v.SLOT_DOCUMENT_AVAILABILITY, "document_availability", Kind.ONE),
        SlotField(v.SLOT_REFERENCE_ID_LIST, "reference_id_list", Kind.MANY),
    ),
    codes=(
        CodeField(v.DOCUMENT_ENTRY_CLASS_CODE, "class_code", many=False),
        CodeField(v.DOCUMENT_ENTRY_CONFIDENTIALITY_CODE, "confidentiality_code", many=True),
        CodeField(v.DOCUMENT_ENTRY_EVENT_CODE_LIST, "event_code_list", many=True),
        CodeField(v.DOCUMENT_ENTRY_FORMAT_CODE, "format_code", many=False),
        CodeField(
            v.DOCUMENT_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
            "healthcare_facility_type_code",
            many=False,
        ),
        CodeField(v.DOCUMENT_ENTRY_PRACTICE_SETTING_CODE, "practice_setting_code", many=False),
        CodeField(v.DOCUMENT_ENTRY_TYPE_CODE, "type_code", many=False),
    ),
    ids=(
        IdField(v.DOCUMENT_ENTRY_PATIENT_ID, "patient_id"),
        IdField(v.DOCUMENT_ENTRY_UNIQUE_ID, "unique_id"),
    ),
    author_scheme=v.DOCUMENT_ENTRY_AUTHOR,
    limited_node=v.DOCUMENT_ENTRY_LIMITED_METADATA,
    package_node=None,
)

SUBMISSION_SET = Spec(
    slots=(
        SlotField(v.SLOT_SUBMISSION_TIME, "submission_time", Kind.ONE),
        SlotField(v.SLOT_INTENDED_RECIPIENT, "intended_recipient", Kind.MANY),
    ),
    codes=(CodeField(v.SUBMISSION_SET_CONTENT_TYPE_CODE, "content_type_code", many=False),),
    ids=(
        IdField(v.SUBMISSION_SET_UNIQUE_ID, "unique_id"),
        IdField(v.SUBMISSION_SET_SOURCE_ID, "source_id"),
        IdField(v.SUBMISSION_SET_PATIENT_ID, "patient_id"),
    ),
    author_scheme=v.SUBMISSION_SET_AUTHOR,
    limited_node=v.SUBMISSION_SET_LIMITED_METADATA,
    package_node=v.SUBMISSION_SET,
)

FOLDER = Spec(
    slots=(SlotField(v.SLOT_LAST_UPDATE_TIME, "last_update_time", Kind.ONE),),
    codes=(CodeField(v.FOLDER_CODE_LIST, "code_list", many=True),),
    ids=(
        IdField(v.FOLDER_UNIQUE_ID, "unique_id"),
        IdField(v.FOLDER_PATIENT_ID, "patient_id"),
    ),
    author_scheme=None,
    limited_node=v.FOLDER_LIMITED_METADATA,
    package_node=v.FOLDER,
)

ASSOCIATION = Spec(
    slots=(
        SlotField(v.SLOT_SUBMISSION_SET_STATUS, "submission_set_status", Kind.ONE),
        SlotField(v.SLOT_PREVIOUS_VERSION, "previous_version", Kind.ONE),
        SlotField(v.SLOT_ASSOCIATION_PROPAGATION, "association_propagation", Kind.ONE),
    ),
    codes=(CodeField(v.ASSOCIATION_DOCUMENTATION, "association_documentation", many=True),),
    ids=(),
    author_scheme=None,
    limited_node=None,
    package_node=None,
)

AUTHOR_SLOTS: tuple[SlotField, ...] = (
    SlotField(v.SLOT_AUTHOR_PERSON, "person", Kind.ONE),
    SlotField(v.SLOT_AUTHOR_INSTITUTION, "institution", Kind.MANY),
    SlotField(v.SLOT_AUTHOR_ROLE, "role", Kind.MANY),
    SlotField(v.SLOT_AUTHOR_SPECIALTY, "specialty", Kind.MANY),
    SlotField(v.SLOT_AUTHOR_TELECOMMUNICATION, "telecom", Kind.MANY),
)


def rim(local: str) -> str:
    """Clark name of an ebRIM 3.0 element."""
    return ns.qname(ns.RIM, local)


XML_LANG = ns.qname(ns.XML, "lang")

# UUID v5 namespace for ids the writer derives (Classification / ExternalIdentifier ids).
_CHILD_ID_NAMESPACE = uuid.UUID("0f5a0d3e-0c5b-5f4e-9c3e-5d1a8f2b7c61")
_NAMESPACE_BYTES = _CHILD_ID_NAMESPACE.bytes


def child_id(owner_id: str, kind: str, index: int) -> str:
    """A deterministic ``urn:uuid:`` for the index-th child of this kind of the owner object.

    ebRIM 3.0 requires an id on every Classification and ExternalIdentifier; deriving it from the
    owner keeps the output reproducible (same model, same bytes) without any stored state.
    The value is ``uuid.uuid5(namespace, f"{owner_id}|{kind}|{index}")`` (RFC 4122 §4.3).
    """
    return ChildIds(owner_id).child(kind, index)


class ChildIds:
    """:func:`child_id` for the children of one owner: the SHA-1 of the namespace and the owner
    part of the name is computed once and copied for each child (a query answer derives about
    ten ids per object)."""

    __slots__ = ("_prefix",)

    def __init__(self, owner_id: str) -> None:
        self._prefix = hashlib.sha1(
            _NAMESPACE_BYTES + f"{owner_id}|".encode(), usedforsecurity=False
        )

    def child(self, kind: str, index: int) -> str:
        """The ``urn:uuid:`` of the index-th child of this kind."""
        digest = self._prefix.copy()
        digest.update(f"{kind}|{index}".encode())
        text = digest.hexdigest()
        # The first 16 bytes with the version set to 5 (RFC 4122 §4.1.3) and the variant to
        # RFC 4122 (§4.1.1), as uuid.UUID(bytes=..., version=5) does.
        return (
            f"urn:uuid:{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-"
            f"{text[20:32]}"
        )


# The first hex digit of the clock_seq field with the variant bits set to 10 (RFC 4122 §4.1.1).
_VARIANT = {digit: f"{(int(digit, 16) & 0x3) | 0x8:x}" for digit in "0123456789abcdef"}
