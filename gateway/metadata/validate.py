"""Validation of submitted XDS metadata: pure functions that report every problem at once.

What is checked here needs nothing but the submission itself (ITI TF-3 §4.1, §4.2, rev. 19.0;
ITI TF-2 §3.42.4.1.3 and §3.41.4.1.3): required attributes per object and per transaction,
value formats (OID, CX, DTM, UUID, XCN, XON, XTN ...), references between the objects of the
request, one patient per submission, unique uniqueIds, the SubmissionSetStatus of HasMember
associations and, optionally, codes against the affinity domain's code set.

What needs the registry's database is left to the registry: XDSUnknownPatientId,
XDSDuplicateUniqueIdInRegistry, XDSNonIdenticalHash/Size, lifecycle rules on the targets of
RPLC/APND/XFRM, and whether the external UUIDs :func:`check_submission` returns exist
(UnresolvedReferenceException, ebRS 3.0 §2.4).

Which attributes a transaction requires is data (:class:`Rules`, IPF's idea of tables per
transaction): ITI-42 requires hash, size and repositoryUniqueId on DocumentEntries, ITI-41 does
not (the repository computes them), per ITI TF-3 Table 4.3.1-3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.errors import (
    XDSError,
    XDSErrorList,
    XDSPatientIdDoesNotMatch,
    XDSRegistryDuplicateUniqueIdInMessage,
    XDSRegistryMetadataError,
    XDSRepositoryDuplicateUniqueIdInMessage,
    XDSRepositoryMetadataError,
)
from gateway.metadata import vocabulary as v
from gateway.metadata._checks import ObjectChecker
from gateway.metadata._references import check_references
from gateway.metadata.codes import CodeSet
from gateway.metadata.datatypes import is_uuid_urn, new_uuid_urn
from gateway.metadata.model import Association, DocumentEntry, Folder, Submission, SubmissionSet

__all__ = [
    "ITI_41",
    "ITI_42",
    "TRANSACTION_RULES",
    "CodeSet",
    "Rules",
    "assign_uuids",
    "check_submission",
    "validate_submission",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rules:
    """What one transaction requires of the metadata it carries.

    Attribute names are model field names (``repository_unique_id``); ``object_types`` are the
    DocumentEntry objectTypes the transaction accepts.
    """

    transaction: str
    document_entry: frozenset[str]
    submission_set: frozenset[str]
    folder: frozenset[str]
    object_types: frozenset[str]
    association_types: frozenset[str]
    limited_metadata: bool = False
    association: frozenset[str] = field(
        default=frozenset({"association_type", "source_object", "target_object"})
    )


# Required ("R") attributes of ITI TF-3 Table 4.3.1-3 (Sending Actor Metadata Attribute
# Optionality), XDS Document Source column, for DocumentEntry, SubmissionSet and Folder.
_DOCUMENT_ENTRY_SOURCE = frozenset(
    {
        "entry_uuid",
        "class_code",
        "confidentiality_code",
        "creation_time",
        "format_code",
        "healthcare_facility_type_code",
        "language_code",
        "mime_type",
        "object_type",
        "patient_id",
        "practice_setting_code",
        "source_patient_id",
        "type_code",
        "unique_id",
    }
)
_SUBMISSION_SET = frozenset(
    {"entry_uuid", "content_type_code", "patient_id", "source_id", "submission_time", "unique_id"}
)
_FOLDER = frozenset({"entry_uuid", "code_list", "patient_id", "title", "unique_id"})
# Association types a Register / Provide and Register request may carry (ITI TF-3 §4.2.2;
# IsSnapshotOf belongs to On-Demand ITI-61, UpdateAvailabilityStatus/SubmitAssociation to ITI-57).
_SUBMIT_ASSOCIATIONS = frozenset({v.HAS_MEMBER, v.RPLC, v.XFRM, v.APND, v.XFRM_RPLC, v.SIGNS})

ITI_41 = Rules(
    transaction="ITI-41",
    document_entry=_DOCUMENT_ENTRY_SOURCE,
    submission_set=_SUBMISSION_SET,
    folder=_FOLDER,
    object_types=frozenset({v.DOCUMENT_ENTRY_STABLE}),
    association_types=_SUBMIT_ASSOCIATIONS,
)
ITI_42 = Rules(
    transaction="ITI-42",
    document_entry=_DOCUMENT_ENTRY_SOURCE | {"hash", "size", "repository_unique_id"},
    submission_set=_SUBMISSION_SET,
    folder=_FOLDER,
    object_types=frozenset({v.DOCUMENT_ENTRY_STABLE}),
    association_types=_SUBMIT_ASSOCIATIONS,
)
TRANSACTION_RULES: MappingProxyType[str, Rules] = MappingProxyType(
    {"ITI-41": ITI_41, "ITI-42": ITI_42}
)


def check_submission(
    submission: Submission,
    *,
    rules: Rules = ITI_42,
    repository: bool = False,
    code_set: CodeSet | None = None,
) -> tuple[list[XDSError], frozenset[str]]:
    """Check a submission; return ``(errors, external_uuids)`` without raising.

    ``external_uuids`` are the ``urn:uuid:`` references that name no object of the submission:
    the registry must find them in its database (else UnresolvedReferenceException).
    With ``repository=True`` metadata problems are XDSRepositoryMetadataError and duplicate
    uniqueIds XDSRepositoryDuplicateUniqueIdInMessage (ITI-41), else the Registry codes.

    Standard: ITI TF-2 §3.42.4.1.3 / §3.41.4.1.3; ITI TF-3 §4.1, §4.2; codes ITI TF-3
    Table 4.2.4.1-2. Errors: XDSRegistryMetadataError, XDSPatientIdDoesNotMatch,
    XDSRegistryDuplicateUniqueIdInMessage, UnresolvedReferenceException.
    """
    metadata_error = XDSRepositoryMetadataError if repository else XDSRegistryMetadataError
    checker = ObjectChecker(metadata_error, code_set)
    if submission.submission_set is None:
        checker.metadata("SubmitObjectsRequest", "there is no SubmissionSet")
    else:
        checker.submission_set(
            submission.submission_set, rules.submission_set, allow_limited=rules.limited_metadata
        )
    for folder in submission.folders:
        checker.folder(folder, rules.folder, allow_limited=rules.limited_metadata)
    for entry in submission.document_entries:
        checker.document_entry(
            entry,
            rules.document_entry,
            object_types=rules.object_types,
            allow_limited=rules.limited_metadata,
        )
    for association in submission.associations:
        checker.association(association, rules.association, rules.association_types)
    for ref in submission.object_refs:
        checker.object_ref(ref)
    errors = checker.errors
    errors.extend(_check_patient_ids(submission))
    errors.extend(_check_unique_ids(submission, repository=repository))
    reference_errors, external = check_references(submission, metadata_error)
    errors.extend(reference_errors)
    return errors, external


def validate_submission(
    submission: Submission,
    *,
    rules: Rules = ITI_42,
    repository: bool = False,
    code_set: CodeSet | None = None,
) -> frozenset[str]:
    """Validate a submission; return the external UUIDs the registry must resolve.

    Standard: as :func:`check_submission`. Raises: XDSErrorList with every problem found.
    """
    errors, external = check_submission(
        submission, rules=rules, repository=repository, code_set=code_set
    )
    if errors:
        raise XDSErrorList(errors)
    return external


def _check_patient_ids(submission: Submission) -> list[XDSError]:
    """All DocumentEntries and Folders carry the SubmissionSet's patientId.

    Standard: ITI TF-2 §3.42.4.1.3 (XDSPatientIdDoesNotMatch).
    """
    members: list[DocumentEntry | Folder] = [*submission.document_entries, *submission.folders]
    reference = submission.submission_set.patient_id if submission.submission_set else None
    reference_owner = "SubmissionSet"
    if not reference:
        first = next((obj for obj in members if obj.patient_id), None)
        if first is None:
            return []
        reference, reference_owner = first.patient_id, first.entry_uuid
    errors: list[XDSError] = []
    for obj in members:
        if obj.patient_id and obj.patient_id != reference:
            errors.append(
                XDSPatientIdDoesNotMatch(
                    f"{type(obj).__name__} {obj.entry_uuid}: patientId {obj.patient_id} does not"
                    f" match patientId {reference} of {reference_owner}",
                    location=obj.entry_uuid,
                )
            )
    return errors


def _check_unique_ids(submission: Submission, *, repository: bool) -> list[XDSError]:
    """No uniqueId is used twice within the request.

    Standard: ITI TF-3 Table 4.2.4.1-2 (XDSRegistryDuplicateUniqueIdInMessage,
    XDSRepositoryDuplicateUniqueIdInMessage).
    """
    error = (
        XDSRepositoryDuplicateUniqueIdInMessage
        if repository
        else XDSRegistryDuplicateUniqueIdInMessage
    )
    owners: dict[str, str] = {}
    errors: list[XDSError] = []
    objects: list[SubmissionSet | Folder | DocumentEntry] = [
        *submission.folders,
        *submission.document_entries,
    ]
    if submission.submission_set is not None:
        objects.insert(0, submission.submission_set)
    for obj in objects:
        if not obj.unique_id:
            continue
        if obj.unique_id in owners:
            errors.append(
                error(
                    f"uniqueId {obj.unique_id} is used by both {owners[obj.unique_id]} and"
                    f" {obj.entry_uuid}",
                    location=obj.entry_uuid,
                )
            )
        else:
            owners[obj.unique_id] = obj.entry_uuid
    return errors


def assign_uuids(
    submission: Submission, *, new_uuid: Callable[[], str] = new_uuid_urn
) -> dict[str, str]:
    """Give every object with a symbolic (or absent) id a ``urn:uuid:`` and rewrite all
    references to it (association source/target, logicalID); return ``{symbolic: uuid}``.

    The submission is changed in place. Objects without any id (tolerated on Associations, which
    nobody can reference) get a UUID too; they do not appear in the mapping.
    Standard: ITI TF-3 §4.2.3.2 entryUUID (symbolic ids are replaced by the receiver),
    ITI TF-2 §3.42.4.1.3.
    """
    mapping: dict[str, str] = {}
    objects: list[SubmissionSet | Folder | DocumentEntry | Association] = [
        *([submission.submission_set] if submission.submission_set else []),
        *submission.folders,
        *submission.document_entries,
        *submission.associations,
    ]
    for obj in objects:
        if is_uuid_urn(obj.entry_uuid):
            continue
        if not obj.entry_uuid:
            obj.entry_uuid = new_uuid()
            continue
        obj.entry_uuid = mapping.setdefault(obj.entry_uuid, new_uuid())
    for obj in objects:
        if isinstance(obj, DocumentEntry | Folder) and obj.logical_id in mapping:
            obj.logical_id = mapping[obj.logical_id]
    for association in submission.associations:
        association.source_object = mapping.get(
            association.source_object, association.source_object
        )
        association.target_object = mapping.get(
            association.target_object, association.target_object
        )
    return mapping
