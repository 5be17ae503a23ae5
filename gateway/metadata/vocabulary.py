"""Every fixed identifier of XDS metadata, as strings that know their Technical Framework name.

pydicom-style: each constant is a ``str`` (so it compares equal to the value on the wire) that
also carries ``.name``, the name ITI TF-3 gives it::

    >>> DOCUMENT_ENTRY_CLASS_CODE == "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    True
    >>> DOCUMENT_ENTRY_CLASS_CODE.name
    'XDSDocumentEntry.classCode'

Standards (ITI TF-3 rev. 19.0 read; section numbers as in that revision):
    - object types and classification nodes: §4.2.1 (DocumentEntry objectType, CP-ITI-544;
      SubmissionSet and Folder labels), limitedMetadata in §4.2.3.2 / §4.2.3.3 / §4.2.3.4;
    - classification schemes and external identifier schemes: the ebRIM tables of §4.2.3.2
      (DocumentEntry), §4.2.3.3 (SubmissionSet), §4.2.3.4 (Folder) and the UUID list of §4.2.5;
    - association types: §4.2.2 (Table 4.2.2-1), signs (DSG, ITI TF-3 §5.5), IsSnapshotOf
      (On-Demand Documents, §4.2.2 / ITI TF-2 §3.61); UpdateAvailabilityStatus and
      SubmitAssociation (XDS Metadata Update, ITI TF-2 §3.57);
    - availabilityStatus and documentAvailability values: §4.2.3.2 (ebRIM 3.0 StatusType);
    - slot names: the attribute tables of §4.2.3.2 - §4.2.3.4 and §4.2.2 (SubmissionSetStatus);
    - ebRIM 3.0 canonical ObjectTypes (ebRIM 3.0 §B.1, "ObjectType" classification scheme).

The tables at the bottom (``CLASSIFICATION_SCHEMES`` …) are immutable; nothing registers itself.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

_UUID_URN = re.compile(
    r"^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class Term(str):
    """A fixed vocabulary value (URN, UUID, slot name) that carries its ITI TF name."""

    name: str

    def __new__(cls, value: str, *, name: str) -> Term:
        obj = super().__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str.__repr__(self)}, name={self.name!r})"

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return (str(self),), {"name": self.name}


class UUID(Term):
    """A ``urn:uuid:`` identifier of ITI TF-3 (classification scheme, node or object type)."""

    def __new__(cls, value: str, *, name: str) -> UUID:
        if not _UUID_URN.match(value):
            raise ValueError(f"not a urn:uuid: value: {value!r}")
        obj = super().__new__(cls, value, name=name)
        assert isinstance(obj, UUID)
        return obj


# --- DocumentEntry (ITI TF-3 §4.2.3.2) -----------------------------------------------------------
DOCUMENT_ENTRY_STABLE = UUID(
    "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1", name="XDSDocumentEntry (Stable)"
)
DOCUMENT_ENTRY_ON_DEMAND = UUID(
    "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248", name="XDSDocumentEntry (On-Demand)"
)
DOCUMENT_ENTRY_AUTHOR = UUID(
    "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d", name="XDSDocumentEntry.author"
)
DOCUMENT_ENTRY_CLASS_CODE = UUID(
    "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a", name="XDSDocumentEntry.classCode"
)
DOCUMENT_ENTRY_CONFIDENTIALITY_CODE = UUID(
    "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f", name="XDSDocumentEntry.confidentialityCode"
)
DOCUMENT_ENTRY_EVENT_CODE_LIST = UUID(
    "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4", name="XDSDocumentEntry.eventCodeList"
)
DOCUMENT_ENTRY_FORMAT_CODE = UUID(
    "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d", name="XDSDocumentEntry.formatCode"
)
DOCUMENT_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE = UUID(
    "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1",
    name="XDSDocumentEntry.healthcareFacilityTypeCode",
)
DOCUMENT_ENTRY_PRACTICE_SETTING_CODE = UUID(
    "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead", name="XDSDocumentEntry.practiceSettingCode"
)
DOCUMENT_ENTRY_TYPE_CODE = UUID(
    "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983", name="XDSDocumentEntry.typeCode"
)
DOCUMENT_ENTRY_LIMITED_METADATA = UUID(
    "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85", name="XDSDocumentEntry.limitedMetadata"
)
DOCUMENT_ENTRY_PATIENT_ID = UUID(
    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427", name="XDSDocumentEntry.patientId"
)
DOCUMENT_ENTRY_UNIQUE_ID = UUID(
    "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab", name="XDSDocumentEntry.uniqueId"
)

# --- SubmissionSet (ITI TF-3 §4.2.3.3) ------------------------------------------------------------
SUBMISSION_SET = UUID("urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd", name="XDSSubmissionSet")
SUBMISSION_SET_AUTHOR = UUID(
    "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d", name="XDSSubmissionSet.author"
)
SUBMISSION_SET_CONTENT_TYPE_CODE = UUID(
    "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500", name="XDSSubmissionSet.contentTypeCode"
)
SUBMISSION_SET_LIMITED_METADATA = UUID(
    "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707", name="XDSSubmissionSet.limitedMetadata"
)
SUBMISSION_SET_PATIENT_ID = UUID(
    "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446", name="XDSSubmissionSet.patientId"
)
SUBMISSION_SET_SOURCE_ID = UUID(
    "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832", name="XDSSubmissionSet.sourceId"
)
SUBMISSION_SET_UNIQUE_ID = UUID(
    "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8", name="XDSSubmissionSet.uniqueId"
)

# --- Folder (ITI TF-3 §4.2.3.4) -------------------------------------------------------------------
FOLDER = UUID("urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2", name="XDSFolder")
FOLDER_CODE_LIST = UUID("urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5", name="XDSFolder.codeList")
FOLDER_LIMITED_METADATA = UUID(
    "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03", name="XDSFolder.limitedMetadata"
)
FOLDER_PATIENT_ID = UUID(
    "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a", name="XDSFolder.patientId"
)
FOLDER_UNIQUE_ID = UUID("urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a", name="XDSFolder.uniqueId")

# --- Association documentation classification (ITI TF-3 §4.2.2, Association documentation) ------
ASSOCIATION_DOCUMENTATION = UUID(
    "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3", name="associationDocumentation"
)

# --- Association types (ITI TF-3 §4.2.2, Table 4.2.2-1) ------------------------------------------
HAS_MEMBER = Term("urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember", name="HasMember")
RPLC = Term("urn:ihe:iti:2007:AssociationType:RPLC", name="RPLC")
XFRM = Term("urn:ihe:iti:2007:AssociationType:XFRM", name="XFRM")
APND = Term("urn:ihe:iti:2007:AssociationType:APND", name="APND")
XFRM_RPLC = Term("urn:ihe:iti:2007:AssociationType:XFRM_RPLC", name="XFRM_RPLC")
SIGNS = Term("urn:ihe:iti:2007:AssociationType:signs", name="signs")
IS_SNAPSHOT_OF = Term("urn:ihe:iti:2010:AssociationType:IsSnapshotOf", name="IsSnapshotOf")
UPDATE_AVAILABILITY_STATUS = Term(
    "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus", name="UpdateAvailabilityStatus"
)
SUBMIT_ASSOCIATION = Term(
    "urn:ihe:iti:2010:AssociationType:SubmitAssociation", name="SubmitAssociation"
)

# --- availabilityStatus (ITI TF-3 §4.2.3.2 availabilityStatus; ebRIM 3.0 StatusType) -------------
STATUS_APPROVED = Term("urn:oasis:names:tc:ebxml-regrep:StatusType:Approved", name="Approved")
STATUS_DEPRECATED = Term("urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated", name="Deprecated")
STATUS_SUBMITTED = Term("urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted", name="Submitted")

# --- documentAvailability (ITI TF-3 §4.2.3.2 documentAvailability) --------------------------------
DOCUMENT_AVAILABILITY_ONLINE = Term("urn:ihe:iti:2010:DocumentAvailability:Online", name="Online")
DOCUMENT_AVAILABILITY_OFFLINE = Term(
    "urn:ihe:iti:2010:DocumentAvailability:Offline", name="Offline"
)

# --- SubmissionSetStatus slot values (ITI TF-3 §4.2.2) -------------------------------------------
SUBMISSION_SET_STATUS_ORIGINAL = Term("Original", name="SubmissionSetStatus Original")
SUBMISSION_SET_STATUS_REFERENCE = Term("Reference", name="SubmissionSetStatus Reference")

# --- ebRIM 3.0 canonical object types (ebRIM 3.0 Appendix B, ObjectType scheme) ------------------
_OT = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"
OBJECT_TYPE_ASSOCIATION = Term(_OT + "Association", name="Association")
OBJECT_TYPE_CLASSIFICATION = Term(_OT + "Classification", name="Classification")
OBJECT_TYPE_EXTERNAL_IDENTIFIER = Term(_OT + "ExternalIdentifier", name="ExternalIdentifier")
OBJECT_TYPE_REGISTRY_PACKAGE = Term(_OT + "RegistryPackage", name="RegistryPackage")

# --- Slot names (attribute tables of ITI TF-3 §4.2.3.2 - §4.2.3.4, §4.2.2) -----------------------
SLOT_AUTHOR_PERSON = Term("authorPerson", name="author.authorPerson")
SLOT_AUTHOR_INSTITUTION = Term("authorInstitution", name="author.authorInstitution")
SLOT_AUTHOR_ROLE = Term("authorRole", name="author.authorRole")
SLOT_AUTHOR_SPECIALTY = Term("authorSpecialty", name="author.authorSpecialty")
SLOT_AUTHOR_TELECOMMUNICATION = Term(
    "authorTelecommunication", name="author.authorTelecommunication"
)
SLOT_CODING_SCHEME = Term("codingScheme", name="Code codingScheme")
SLOT_CREATION_TIME = Term("creationTime", name="XDSDocumentEntry.creationTime")
SLOT_HASH = Term("hash", name="XDSDocumentEntry.hash")
SLOT_LANGUAGE_CODE = Term("languageCode", name="XDSDocumentEntry.languageCode")
SLOT_LEGAL_AUTHENTICATOR = Term("legalAuthenticator", name="XDSDocumentEntry.legalAuthenticator")
SLOT_REPOSITORY_UNIQUE_ID = Term("repositoryUniqueId", name="XDSDocumentEntry.repositoryUniqueId")
SLOT_SERVICE_START_TIME = Term("serviceStartTime", name="XDSDocumentEntry.serviceStartTime")
SLOT_SERVICE_STOP_TIME = Term("serviceStopTime", name="XDSDocumentEntry.serviceStopTime")
SLOT_SIZE = Term("size", name="XDSDocumentEntry.size")
SLOT_SOURCE_PATIENT_ID = Term("sourcePatientId", name="XDSDocumentEntry.sourcePatientId")
SLOT_SOURCE_PATIENT_INFO = Term("sourcePatientInfo", name="XDSDocumentEntry.sourcePatientInfo")
SLOT_URI = Term("URI", name="XDSDocumentEntry.URI")
SLOT_DOCUMENT_AVAILABILITY = Term(
    "documentAvailability", name="XDSDocumentEntry.documentAvailability"
)
SLOT_REFERENCE_ID_LIST = Term(
    "urn:ihe:iti:xds:2013:referenceIdList", name="XDSDocumentEntry.referenceIdList"
)
SLOT_SUBMISSION_TIME = Term("submissionTime", name="XDSSubmissionSet.submissionTime")
SLOT_INTENDED_RECIPIENT = Term("intendedRecipient", name="XDSSubmissionSet.intendedRecipient")
SLOT_LAST_UPDATE_TIME = Term("lastUpdateTime", name="XDSFolder.lastUpdateTime")
SLOT_SUBMISSION_SET_STATUS = Term("SubmissionSetStatus", name="Association.SubmissionSetStatus")
SLOT_PREVIOUS_VERSION = Term("PreviousVersion", name="Association.PreviousVersion")
SLOT_ASSOCIATION_PROPAGATION = Term(
    "AssociationPropagation", name="Association.AssociationPropagation"
)

# --- Tables -------------------------------------------------------------------------------------
SLOT_NAMES: frozenset[str] = frozenset(
    {
        SLOT_AUTHOR_PERSON,
        SLOT_AUTHOR_INSTITUTION,
        SLOT_AUTHOR_ROLE,
        SLOT_AUTHOR_SPECIALTY,
        SLOT_AUTHOR_TELECOMMUNICATION,
        SLOT_CODING_SCHEME,
        SLOT_CREATION_TIME,
        SLOT_HASH,
        SLOT_LANGUAGE_CODE,
        SLOT_LEGAL_AUTHENTICATOR,
        SLOT_REPOSITORY_UNIQUE_ID,
        SLOT_SERVICE_START_TIME,
        SLOT_SERVICE_STOP_TIME,
        SLOT_SIZE,
        SLOT_SOURCE_PATIENT_ID,
        SLOT_SOURCE_PATIENT_INFO,
        SLOT_URI,
        SLOT_DOCUMENT_AVAILABILITY,
        SLOT_REFERENCE_ID_LIST,
        SLOT_SUBMISSION_TIME,
        SLOT_INTENDED_RECIPIENT,
        SLOT_LAST_UPDATE_TIME,
        SLOT_SUBMISSION_SET_STATUS,
        SLOT_PREVIOUS_VERSION,
        SLOT_ASSOCIATION_PROPAGATION,
    }
)

DOCUMENT_ENTRY_OBJECT_TYPES: frozenset[str] = frozenset(
    {DOCUMENT_ENTRY_STABLE, DOCUMENT_ENTRY_ON_DEMAND}
)

CLASSIFICATION_SCHEMES: tuple[UUID, ...] = (
    DOCUMENT_ENTRY_AUTHOR,
    DOCUMENT_ENTRY_CLASS_CODE,
    DOCUMENT_ENTRY_CONFIDENTIALITY_CODE,
    DOCUMENT_ENTRY_EVENT_CODE_LIST,
    DOCUMENT_ENTRY_FORMAT_CODE,
    DOCUMENT_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
    DOCUMENT_ENTRY_PRACTICE_SETTING_CODE,
    DOCUMENT_ENTRY_TYPE_CODE,
    SUBMISSION_SET_AUTHOR,
    SUBMISSION_SET_CONTENT_TYPE_CODE,
    FOLDER_CODE_LIST,
    ASSOCIATION_DOCUMENTATION,
)

CLASSIFICATION_NODES: tuple[UUID, ...] = (
    SUBMISSION_SET,
    FOLDER,
    DOCUMENT_ENTRY_LIMITED_METADATA,
    SUBMISSION_SET_LIMITED_METADATA,
    FOLDER_LIMITED_METADATA,
)

EXTERNAL_IDENTIFIER_SCHEMES: tuple[UUID, ...] = (
    DOCUMENT_ENTRY_PATIENT_ID,
    DOCUMENT_ENTRY_UNIQUE_ID,
    SUBMISSION_SET_PATIENT_ID,
    SUBMISSION_SET_SOURCE_ID,
    SUBMISSION_SET_UNIQUE_ID,
    FOLDER_PATIENT_ID,
    FOLDER_UNIQUE_ID,
)

ASSOCIATION_TYPES: tuple[Term, ...] = (
    HAS_MEMBER,
    RPLC,
    XFRM,
    APND,
    XFRM_RPLC,
    SIGNS,
    IS_SNAPSHOT_OF,
    UPDATE_AVAILABILITY_STATUS,
    SUBMIT_ASSOCIATION,
)

# Relationship associations between two DocumentEntries (ITI TF-3 §4.1.2, §4.2.2).
RELATIONSHIP_TYPES: frozenset[str] = frozenset({RPLC, XFRM, APND, XFRM_RPLC, SIGNS, IS_SNAPSHOT_OF})
# The subset that deprecates its target on registration (ITI TF-2 §3.42.4.1.3, RPLC/XFRM_RPLC).
REPLACEMENT_TYPES: frozenset[str] = frozenset({RPLC, XFRM_RPLC})

# Short association type names of the ebRIM 2.1 era that some published samples (e.g. the IHE
# RegisterDocumentSet-b example) still carry. ebRIM 3.0 requires the URN; readers map these.
SHORT_ASSOCIATION_TYPES: MappingProxyType[str, Term] = MappingProxyType(
    {term.name: term for term in ASSOCIATION_TYPES}
)

AVAILABILITY_STATUSES: frozenset[str] = frozenset(
    {STATUS_APPROVED, STATUS_DEPRECATED, STATUS_SUBMITTED}
)
DOCUMENT_AVAILABILITIES: frozenset[str] = frozenset(
    {DOCUMENT_AVAILABILITY_ONLINE, DOCUMENT_AVAILABILITY_OFFLINE}
)
SUBMISSION_SET_STATUSES: frozenset[str] = frozenset(
    {SUBMISSION_SET_STATUS_ORIGINAL, SUBMISSION_SET_STATUS_REFERENCE}
)

# --- stored query ids (ITI TF-2 §3.18.4.1.2.4, Table 3.18.4.1.2.4-1) ----------------------------
FIND_DOCUMENTS = UUID("urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d", name="FindDocuments")
FIND_DOCUMENTS_BY_REFERENCE_ID = UUID(
    "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492", name="FindDocumentsByReferenceId"
)
FIND_SUBMISSION_SETS = UUID(
    "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9", name="FindSubmissionSets"
)
FIND_FOLDERS = UUID("urn:uuid:958f3006-baad-4929-a4de-ff1114824431", name="FindFolders")
GET_ALL = UUID("urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3", name="GetAll")
GET_DOCUMENTS = UUID("urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4", name="GetDocuments")
GET_FOLDERS = UUID("urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4", name="GetFolders")
GET_ASSOCIATIONS = UUID("urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155", name="GetAssociations")
GET_DOCUMENTS_AND_ASSOCIATIONS = UUID(
    "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a", name="GetDocumentsAndAssociations"
)
GET_SUBMISSION_SETS = UUID(
    "urn:uuid:51224314-5390-4169-9b91-b1980040715a", name="GetSubmissionSets"
)
GET_SUBMISSION_SET_AND_CONTENTS = UUID(
    "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83", name="GetSubmissionSetAndContents"
)
GET_FOLDER_AND_CONTENTS = UUID(
    "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7", name="GetFolderAndContents"
)
GET_FOLDERS_FOR_DOCUMENT = UUID(
    "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578", name="GetFoldersForDocument"
)
GET_RELATED_DOCUMENTS = UUID(
    "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6", name="GetRelatedDocuments"
)

STORED_QUERIES: tuple[UUID, ...] = (
    FIND_DOCUMENTS,
    FIND_DOCUMENTS_BY_REFERENCE_ID,
    FIND_SUBMISSION_SETS,
    FIND_FOLDERS,
    GET_ALL,
    GET_DOCUMENTS,
    GET_FOLDERS,
    GET_ASSOCIATIONS,
    GET_DOCUMENTS_AND_ASSOCIATIONS,
    GET_SUBMISSION_SETS,
    GET_SUBMISSION_SET_AND_CONTENTS,
    GET_FOLDER_AND_CONTENTS,
    GET_FOLDERS_FOR_DOCUMENT,
    GET_RELATED_DOCUMENTS,
)


def _all_terms() -> tuple[Term, ...]:
    return tuple(value for value in globals().values() if isinstance(value, Term))


ALL_TERMS: tuple[Term, ...] = _all_terms()
_BY_VALUE: MappingProxyType[str, Term] = MappingProxyType({str(term): term for term in ALL_TERMS})


def lookup(value: str) -> Term | None:
    """Return the vocabulary term with this wire value (``None`` when it is not an ITI TF-3 term).

    Standard: ITI TF-3 §4.2.5 (metadata vocabulary).
    """
    return _BY_VALUE.get(value)
