"""The stored queries of ITI-18 and their parameters, as the Technical Framework tabulates them.

One :class:`QuerySpec` per query of ITI TF-2 §3.18.4.1.2.4 (Table 3.18.4.1.2.4-1, query ids) with
the parameter table of its section §3.18.4.1.2.3.7.x: name, value kind, single or multiple
values, required or optional, and whether repeated slots combine with AND. ``one_of`` lists the
parameter groups marked "R*" (exactly one of them is required), e.g. entryUUID or uniqueId.

Parameters of the Metadata Update option (ITI TF-2 §3.18.4.1.2.3.5.1): ``$MetadataLevel`` (1 or 2)
is accepted by every query and read by ``run.metadata_level``; GetDocuments also takes
``$XDSDocumentEntryLogicalID`` (all versions of the logical DocumentEntries), GetFolders
``$XDSFolderLogicalID``. Parameters a query
does not define are ignored (ebRS 3.0 §6.3.2.1; NIST test 11897/practicesetting_scheme sends one
and expects Success).

Standard: ITI TF-2 §3.18.4.1.2.3.7.1-§3.18.4.1.2.3.7.14 and §3.18.4.1.2.4 (rev. 19.0 read).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from gateway.metadata.vocabulary import (
    FIND_DOCUMENTS,
    FIND_DOCUMENTS_BY_REFERENCE_ID,
    FIND_FOLDERS,
    FIND_SUBMISSION_SETS,
    GET_ALL,
    GET_ASSOCIATIONS,
    GET_DOCUMENTS,
    GET_DOCUMENTS_AND_ASSOCIATIONS,
    GET_FOLDER_AND_CONTENTS,
    GET_FOLDERS,
    GET_FOLDERS_FOR_DOCUMENT,
    GET_RELATED_DOCUMENTS,
    GET_SUBMISSION_SET_AND_CONTENTS,
    GET_SUBMISSION_SETS,
    UUID,
)


class Kind(Enum):
    """How the Value text of a parameter is coded (ITI TF-2 §3.18.4.1.2.3.5)."""

    STRING = "string"  # a quoted string: status URNs, uniqueIds, sourceIds, reference ids
    UUID = "uuid"  # a quoted urn:uuid: (entryUUIDs, $uuid)
    PATIENT = "patient"  # a quoted CX patient id
    DTM = "dtm"  # a number: a DTM of any precision (ITI TF-2 §3.18.4.1.2.3.3 time coding)
    CODE = "code"  # a quoted code^^codingScheme (ITI TF-2 §3.18.4.1.2.3.4)
    PATTERN = "pattern"  # a quoted SQL LIKE pattern with % and _ (authorPerson)


@dataclass(frozen=True, slots=True)
class Param:
    """One stored-query parameter as a query's table defines it."""

    name: str
    kind: Kind
    multiple: bool = False
    required: bool = False
    # Repeated slots of this parameter are AND-ed, the values of one slot OR-ed
    # (ITI TF-2 §3.18.4.1.2.3.5, AND/OR semantics of code parameters).
    and_or: bool = False


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A stored query: id, name, TF section, parameter table and its "R*" groups."""

    id: UUID
    section: str
    params: tuple[Param, ...]
    one_of: tuple[tuple[str, ...], ...] = ()

    @property
    def name(self) -> str:
        return self.id.name

    def param(self, name: str) -> Param | None:
        """The parameter of this query called ``name`` (``None``: not defined, to be ignored)."""
        for param in self.params:
            if param.name == name:
                return param
        return None


def _one(name: str, kind: Kind, *, required: bool = False) -> Param:
    return Param(name, kind, multiple=False, required=required)


def _many(name: str, kind: Kind, *, required: bool = False) -> Param:
    # Every multi-valued code parameter takes the AND/OR form: for the multi-valued attributes
    # (eventCodeList, confidentialityCode, Folder codeList) the TF names it explicitly; for the
    # single-valued ones AND of two lists is simply their intersection, so one rule fits all.
    return Param(name, kind, multiple=True, required=required, and_or=kind is Kind.CODE)


# --- parameter names -----------------------------------------------------------------------------
DE = "$XDSDocumentEntry"
DE_PATIENT_ID = DE + "PatientId"
DE_CLASS_CODE = DE + "ClassCode"
DE_TYPE_CODE = DE + "TypeCode"
DE_PRACTICE_SETTING_CODE = DE + "PracticeSettingCode"
DE_CREATION_TIME_FROM = DE + "CreationTimeFrom"
DE_CREATION_TIME_TO = DE + "CreationTimeTo"
DE_SERVICE_START_TIME_FROM = DE + "ServiceStartTimeFrom"
DE_SERVICE_START_TIME_TO = DE + "ServiceStartTimeTo"
DE_SERVICE_STOP_TIME_FROM = DE + "ServiceStopTimeFrom"
DE_SERVICE_STOP_TIME_TO = DE + "ServiceStopTimeTo"
DE_HEALTHCARE_FACILITY_TYPE_CODE = DE + "HealthcareFacilityTypeCode"
DE_EVENT_CODE_LIST = DE + "EventCodeList"
DE_CONFIDENTIALITY_CODE = DE + "ConfidentialityCode"
DE_AUTHOR_PERSON = DE + "AuthorPerson"
DE_FORMAT_CODE = DE + "FormatCode"
DE_STATUS = DE + "Status"
DE_TYPE = DE + "Type"
DE_REFERENCE_ID_LIST = DE + "ReferenceIdList"
DE_ENTRY_UUID = DE + "EntryUUID"
DE_UNIQUE_ID = DE + "UniqueId"
DE_LOGICAL_ID = DE + "LogicalID"  # Metadata Update option
METADATA_LEVEL = "$MetadataLevel"  # Metadata Update option, every query

SS = "$XDSSubmissionSet"
SS_PATIENT_ID = SS + "PatientId"
SS_SOURCE_ID = SS + "SourceId"
SS_SUBMISSION_TIME_FROM = SS + "SubmissionTimeFrom"
SS_SUBMISSION_TIME_TO = SS + "SubmissionTimeTo"
SS_AUTHOR_PERSON = SS + "AuthorPerson"
SS_CONTENT_TYPE = SS + "ContentType"
SS_STATUS = SS + "Status"
SS_ENTRY_UUID = SS + "EntryUUID"
SS_UNIQUE_ID = SS + "UniqueId"

FOL = "$XDSFolder"
FOL_PATIENT_ID = FOL + "PatientId"
FOL_LAST_UPDATE_TIME_FROM = FOL + "LastUpdateTimeFrom"
FOL_LAST_UPDATE_TIME_TO = FOL + "LastUpdateTimeTo"
FOL_CODE_LIST = FOL + "CodeList"
FOL_STATUS = FOL + "Status"
FOL_ENTRY_UUID = FOL + "EntryUUID"
FOL_UNIQUE_ID = FOL + "UniqueId"
FOL_LOGICAL_ID = FOL + "LogicalID"  # Metadata Update option

PATIENT_ID = "$patientId"
UUIDS = "$uuid"
ASSOCIATION_TYPES = "$AssociationTypes"

# Parameters shared by FindDocuments and FindDocumentsByReferenceId (§3.18.4.1.2.3.7.1/.14).
_FIND_DOCUMENTS_PARAMS: tuple[Param, ...] = (
    _one(DE_PATIENT_ID, Kind.PATIENT, required=True),
    _many(DE_CLASS_CODE, Kind.CODE),
    _many(DE_TYPE_CODE, Kind.CODE),
    _many(DE_PRACTICE_SETTING_CODE, Kind.CODE),
    _one(DE_CREATION_TIME_FROM, Kind.DTM),
    _one(DE_CREATION_TIME_TO, Kind.DTM),
    _one(DE_SERVICE_START_TIME_FROM, Kind.DTM),
    _one(DE_SERVICE_START_TIME_TO, Kind.DTM),
    _one(DE_SERVICE_STOP_TIME_FROM, Kind.DTM),
    _one(DE_SERVICE_STOP_TIME_TO, Kind.DTM),
    _many(DE_HEALTHCARE_FACILITY_TYPE_CODE, Kind.CODE),
    _many(DE_EVENT_CODE_LIST, Kind.CODE),
    _many(DE_CONFIDENTIALITY_CODE, Kind.CODE),
    _many(DE_AUTHOR_PERSON, Kind.PATTERN),
    _many(DE_FORMAT_CODE, Kind.CODE),
    _many(DE_STATUS, Kind.STRING, required=True),
    _many(DE_TYPE, Kind.STRING),
)
# The DocumentEntry filters of the "contents" queries (§3.18.4.1.2.3.7.4/.10/.11).
_CONTENT_FILTERS: tuple[Param, ...] = (
    _many(DE_FORMAT_CODE, Kind.CODE),
    _many(DE_CONFIDENTIALITY_CODE, Kind.CODE),
    _many(DE_TYPE, Kind.STRING),
)
_BY_DOCUMENT = ((DE_ENTRY_UUID, DE_UNIQUE_ID),)
_BY_FOLDER = ((FOL_ENTRY_UUID, FOL_UNIQUE_ID),)


QUERIES: tuple[QuerySpec, ...] = (
    QuerySpec(id=FIND_DOCUMENTS, section="§3.18.4.1.2.3.7.1", params=_FIND_DOCUMENTS_PARAMS),
    QuerySpec(
        id=FIND_DOCUMENTS_BY_REFERENCE_ID,
        section="§3.18.4.1.2.3.7.14",
        params=(
            *_FIND_DOCUMENTS_PARAMS,
            Param(DE_REFERENCE_ID_LIST, Kind.STRING, multiple=True, required=True, and_or=True),
        ),
    ),
    QuerySpec(
        id=FIND_SUBMISSION_SETS,
        section="§3.18.4.1.2.3.7.2",
        params=(
            _one(SS_PATIENT_ID, Kind.PATIENT, required=True),
            _many(SS_SOURCE_ID, Kind.STRING),
            _one(SS_SUBMISSION_TIME_FROM, Kind.DTM),
            _one(SS_SUBMISSION_TIME_TO, Kind.DTM),
            _one(SS_AUTHOR_PERSON, Kind.PATTERN),
            _many(SS_CONTENT_TYPE, Kind.CODE),
            _many(SS_STATUS, Kind.STRING, required=True),
        ),
    ),
    QuerySpec(
        id=FIND_FOLDERS,
        section="§3.18.4.1.2.3.7.3",
        params=(
            _one(FOL_PATIENT_ID, Kind.PATIENT, required=True),
            _one(FOL_LAST_UPDATE_TIME_FROM, Kind.DTM),
            _one(FOL_LAST_UPDATE_TIME_TO, Kind.DTM),
            _many(FOL_CODE_LIST, Kind.CODE),
            _many(FOL_STATUS, Kind.STRING, required=True),
        ),
    ),
    QuerySpec(
        id=GET_ALL,
        section="§3.18.4.1.2.3.7.4",
        params=(
            _one(PATIENT_ID, Kind.PATIENT, required=True),
            _many(DE_STATUS, Kind.STRING, required=True),
            _many(SS_STATUS, Kind.STRING, required=True),
            _many(FOL_STATUS, Kind.STRING, required=True),
            *_CONTENT_FILTERS,
        ),
    ),
    QuerySpec(
        id=GET_DOCUMENTS,
        section="§3.18.4.1.2.3.7.5",
        params=(
            _many(DE_ENTRY_UUID, Kind.UUID),
            _many(DE_UNIQUE_ID, Kind.STRING),
            _many(DE_LOGICAL_ID, Kind.UUID),
        ),
        one_of=((DE_ENTRY_UUID, DE_UNIQUE_ID, DE_LOGICAL_ID),),
    ),
    QuerySpec(
        id=GET_FOLDERS,
        section="§3.18.4.1.2.3.7.6",
        params=(
            _many(FOL_ENTRY_UUID, Kind.UUID),
            _many(FOL_UNIQUE_ID, Kind.STRING),
            _many(FOL_LOGICAL_ID, Kind.UUID),
        ),
        one_of=((FOL_ENTRY_UUID, FOL_UNIQUE_ID, FOL_LOGICAL_ID),),
    ),
    QuerySpec(
        id=GET_ASSOCIATIONS,
        section="§3.18.4.1.2.3.7.7",
        params=(_many(UUIDS, Kind.UUID, required=True),),
    ),
    QuerySpec(
        id=GET_DOCUMENTS_AND_ASSOCIATIONS,
        section="§3.18.4.1.2.3.7.8",
        params=(_many(DE_ENTRY_UUID, Kind.UUID), _many(DE_UNIQUE_ID, Kind.STRING)),
        one_of=_BY_DOCUMENT,
    ),
    QuerySpec(
        id=GET_SUBMISSION_SETS,
        section="§3.18.4.1.2.3.7.9",
        params=(_many(UUIDS, Kind.UUID, required=True),),
    ),
    QuerySpec(
        id=GET_SUBMISSION_SET_AND_CONTENTS,
        section="§3.18.4.1.2.3.7.10",
        params=(
            _one(SS_ENTRY_UUID, Kind.UUID),
            _one(SS_UNIQUE_ID, Kind.STRING),
            *_CONTENT_FILTERS,
        ),
        one_of=((SS_ENTRY_UUID, SS_UNIQUE_ID),),
    ),
    QuerySpec(
        id=GET_FOLDER_AND_CONTENTS,
        section="§3.18.4.1.2.3.7.11",
        params=(
            _one(FOL_ENTRY_UUID, Kind.UUID),
            _one(FOL_UNIQUE_ID, Kind.STRING),
            *_CONTENT_FILTERS,
        ),
        one_of=_BY_FOLDER,
    ),
    QuerySpec(
        id=GET_FOLDERS_FOR_DOCUMENT,
        section="§3.18.4.1.2.3.7.12",
        params=(_one(DE_ENTRY_UUID, Kind.UUID), _one(DE_UNIQUE_ID, Kind.STRING)),
        one_of=_BY_DOCUMENT,
    ),
    QuerySpec(
        id=GET_RELATED_DOCUMENTS,
        section="§3.18.4.1.2.3.7.13",
        params=(
            _one(DE_ENTRY_UUID, Kind.UUID),
            _one(DE_UNIQUE_ID, Kind.STRING),
            _many(ASSOCIATION_TYPES, Kind.STRING, required=True),
            _many(DE_TYPE, Kind.STRING),
        ),
        one_of=_BY_DOCUMENT,
    ),
)

BY_ID: MappingProxyType[str, QuerySpec] = MappingProxyType({str(q.id): q for q in QUERIES})
