"""The XDS metadata model: plain dataclasses named after the ITI TF-3 attributes.

Every attribute of ITI TF-3 §4.2.3 (rev. 19.0) is a field whose name is the XDS attribute name in
snake_case (``repositoryUniqueId`` -> ``repository_unique_id``, ``author`` -> ``author``). Values
keep their wire form (HL7 v2.5 CX/XCN/XON/XTN and DTM stay strings; ``gateway.metadata.datatypes``
parses them) so a model read from ebRIM writes back exactly; ``size`` is the only integer.
Multi-valued attributes are lists, absent single values are ``None``.

What the attribute tables do not name but ebRIM can carry, and a faithful round trip needs:
``title_lang``/``title_charset`` and ``comments_lang``/``comments_charset`` (the ``xml:lang`` and
``charset`` of the LocalizedString), ``extra_slots`` (slots ITI TF-3 does not define, in document
order; ITI TF-3 §4.2.3.1.5 "Extra Metadata Attributes", NIST test 12379) and ``Author.extra_slots``.

No XML here: ``gateway.metadata.ebrim`` maps these classes to and from ebRIM 3.0.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.metadata import vocabulary
from gateway.metadata.datatypes import Code

__all__ = [
    "Association",
    "Author",
    "Code",
    "DocumentEntry",
    "Folder",
    "ObjectRef",
    "RegistryObject",
    "Submission",
    "SubmissionSet",
]


@dataclass(slots=True, kw_only=True)
class Author:
    """One author of a DocumentEntry or SubmissionSet (ITI TF-3 §4.2.3.1.4).

    ``person`` is an XCN, ``institution`` XONs, ``telecom`` XTNs (slot authorTelecommunication);
    ``role`` and ``specialty`` are free text or coded strings as sent.
    """

    person: str | None = None
    institution: list[str] = field(default_factory=list)
    role: list[str] = field(default_factory=list)
    specialty: list[str] = field(default_factory=list)
    telecom: list[str] = field(default_factory=list)
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class DocumentEntry:
    """XDSDocumentEntry: the metadata of one document (ITI TF-3 §4.1.1, §4.2.3.2).

    ``entry_uuid`` is the ebRIM ``id`` (symbolic like ``Document01`` in a submission, a
    ``urn:uuid:`` once registered); ``object_type`` tells Stable from On-Demand entries.
    """

    entry_uuid: str
    object_type: str | None = vocabulary.DOCUMENT_ENTRY_STABLE
    logical_id: str | None = None
    version: str | None = None
    availability_status: str | None = None
    home_community_id: str | None = None
    mime_type: str | None = None
    title: str | None = None
    title_lang: str | None = None
    title_charset: str | None = None
    comments: str | None = None
    comments_lang: str | None = None
    comments_charset: str | None = None
    author: list[Author] = field(default_factory=list)
    class_code: Code | None = None
    confidentiality_code: list[Code] = field(default_factory=list)
    creation_time: str | None = None
    event_code_list: list[Code] = field(default_factory=list)
    format_code: Code | None = None
    hash: str | None = None
    healthcare_facility_type_code: Code | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None
    patient_id: str | None = None
    practice_setting_code: Code | None = None
    reference_id_list: list[str] = field(default_factory=list)
    repository_unique_id: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    size: int | None = None
    source_patient_id: str | None = None
    source_patient_info: list[str] = field(default_factory=list)
    type_code: Code | None = None
    unique_id: str | None = None
    uri: str | None = None
    document_availability: str | None = None
    limited_metadata: bool = False
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class SubmissionSet:
    """XDSSubmissionSet: the packing slip of one submission (ITI TF-3 §4.1.1, §4.2.3.3).

    ``intended_recipient`` values are ``XON|XCN|XTN`` strings as sent.
    """

    entry_uuid: str
    availability_status: str | None = None
    home_community_id: str | None = None
    title: str | None = None
    title_lang: str | None = None
    title_charset: str | None = None
    comments: str | None = None
    comments_lang: str | None = None
    comments_charset: str | None = None
    author: list[Author] = field(default_factory=list)
    content_type_code: Code | None = None
    intended_recipient: list[str] = field(default_factory=list)
    patient_id: str | None = None
    source_id: str | None = None
    submission_time: str | None = None
    unique_id: str | None = None
    limited_metadata: bool = False
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Folder:
    """XDSFolder: a collection of related DocumentEntries (ITI TF-3 §4.1.1, §4.2.3.4)."""

    entry_uuid: str
    logical_id: str | None = None
    version: str | None = None
    availability_status: str | None = None
    home_community_id: str | None = None
    title: str | None = None
    title_lang: str | None = None
    title_charset: str | None = None
    comments: str | None = None
    comments_lang: str | None = None
    comments_charset: str | None = None
    code_list: list[Code] = field(default_factory=list)
    last_update_time: str | None = None
    patient_id: str | None = None
    unique_id: str | None = None
    limited_metadata: bool = False
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Association:
    """An ebRIM Association: HasMember or a document relationship (ITI TF-3 §4.1.2, §4.2.2).

    ``association_type`` is the full URN (``vocabulary.HAS_MEMBER``, ``vocabulary.RPLC`` ...);
    ``submission_set_status`` is the SubmissionSetStatus slot (``Original``/``Reference``),
    ``association_documentation`` the codes of the association documentation classification.
    """

    entry_uuid: str
    association_type: str
    source_object: str
    target_object: str
    availability_status: str | None = None
    home_community_id: str | None = None
    submission_set_status: str | None = None
    previous_version: str | None = None
    association_propagation: str | None = None
    association_documentation: list[Code] = field(default_factory=list)
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class ObjectRef:
    """A reference to an object held elsewhere, e.g. in query results (ebRIM 3.0 §2.5.2)."""

    entry_uuid: str
    home_community_id: str | None = None
    extra_slots: dict[str, list[str]] = field(default_factory=dict)


RegistryObject = DocumentEntry | SubmissionSet | Folder | Association | ObjectRef


@dataclass(slots=True, kw_only=True)
class Submission:
    """One SubmitObjectsRequest (ITI-41 / ITI-42 metadata) as a model (ITI TF-3 §4.1.1).

    ``object_refs`` are the ebRIM ObjectRefs the submitter listed for objects outside the request.
    """

    submission_set: SubmissionSet | None = None
    document_entries: list[DocumentEntry] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    associations: list[Association] = field(default_factory=list)
    object_refs: list[ObjectRef] = field(default_factory=list)

    def objects(self) -> Iterator[RegistryObject]:
        """Yield every object of the submission: SubmissionSet, Folders, entries, associations."""
        if self.submission_set is not None:
            yield self.submission_set
        yield from self.folders
        yield from self.document_entries
        yield from self.associations
        yield from self.object_refs

    def patient_ids(self) -> list[str]:
        """The patient ids the submission names, the SubmissionSet's first, each once."""
        patients = [e.patient_id for e in self.document_entries if e.patient_id]
        if self.submission_set is not None and self.submission_set.patient_id:
            patients.insert(0, self.submission_set.patient_id)
        return list(dict.fromkeys(patients))

    def audit_facts(self) -> dict[str, Any]:
        """What an ITI-41/ITI-42/RAD-68 audit record says about this submission: the patient ids
        and the SubmissionSet uniqueId (keys of ``gateway.audit.model.FACT_KEYS``), the same
        for the sender and the receiver of the submission.

        Standard: ITI TF-2 §3.41.5.1, §3.42.5.1 (Patient and SubmissionSet ParticipantObjects);
        RAD TF-3 §4.68.4.1.4.
        """
        submission_set = self.submission_set
        return {
            "patient_ids": self.patient_ids(),
            "submission_set_unique_id": submission_set.unique_id if submission_set else None,
        }
