"""The stored queries a consumer can run, and how friendly options become their parameters.

Query ids: ITI TF-2 §3.18.4.1.2.4 (Table 3.18.4.1.2.4-1); parameters per query:
§3.18.4.1.2.3.7.1-§3.18.4.1.2.3.7.14 (rev. 19.0 read). Value coding (§3.18.4.1.2.3.5, shared
with the registry in :mod:`gateway.metadata.query_values`): strings in single quotes with an
inner quote doubled, numbers (DTM times, §3.18.4.1.2.3.3) bare, several values as a
parenthesised comma-separated list; codes as ``code^^codingScheme`` (§3.18.4.1.2.3.4).

:class:`QueryOptions` holds what a person asks for ("this patient's approved CT documents since
January"); :func:`build_slots` names the parameters of the chosen query for it and refuses an
option the query does not define (a typo should not silently widen a query).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType

from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, format_code_param, parse_code_param
from gateway.metadata.query import QuerySlot
from gateway.metadata.query_values import quote, quote_list

# name -> query id (ITI TF-2 Table 3.18.4.1.2.4-1), from the shared vocabulary.
QUERY_IDS = MappingProxyType({query.name: str(query) for query in v.STORED_QUERIES})

DCM_SCHEME = "1.2.840.10008.2.16.4"  # DICOM Controlled Terminology: CID 29 modality codes
DICOM_UID_REGISTRY = "1.2.840.10008.2.6.1"  # formatCode scheme of XDS-I (RAD TF-3 §4.68.4.1.2.3.2)
KOS_FORMAT_CODE = Code("1.2.840.10008.5.1.4.1.1.88.59", DICOM_UID_REGISTRY)  # KOS SOP Class
STUDY_INSTANCE_UID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"  # ITI TF-3 §4.2.3.2.28
ACCESSION_TYPE = "urn:ihe:iti:xds:2013:accession"

STATUSES = MappingProxyType(
    {
        "approved": v.STATUS_APPROVED,
        "deprecated": v.STATUS_DEPRECATED,
        "submitted": v.STATUS_SUBMITTED,
    }
)
ASSOCIATION_PREFIX = "urn:ihe:iti:2007:AssociationType:"  # ITI TF-3 Table 4.2.2-1

_FIND_DOCUMENTS = ("FindDocuments", "FindDocumentsByReferenceId")
_DE, _SS, _FOL = "$XDSDocumentEntry", "$XDSSubmissionSet", "$XDSFolder"
# Which parameter prefix names the object an id option (--uuid/--unique-id) points at.
_ID_OWNER = MappingProxyType(
    {
        "GetDocuments": _DE,
        "GetDocumentsAndAssociations": _DE,
        "GetFoldersForDocument": _DE,
        "GetRelatedDocuments": _DE,
        "GetFolders": _FOL,
        "GetFolderAndContents": _FOL,
        "GetSubmissionSetAndContents": _SS,
    }
)
# Get queries whose id parameter is single-valued (§3.18.4.1.2.3.7.10-.13).
_SINGLE_ID = frozenset(
    {
        "GetFolderAndContents",
        "GetFoldersForDocument",
        "GetRelatedDocuments",
        "GetSubmissionSetAndContents",
    }
)
_DOCUMENT_CODES = (
    ("class_codes", "ClassCode"),
    ("type_codes", "TypeCode"),
    ("practice_setting_codes", "PracticeSettingCode"),
    ("facility_type_codes", "HealthcareFacilityTypeCode"),
    ("event_codes", "EventCodeList"),
    ("confidentiality_codes", "ConfidentialityCode"),
    ("format_codes", "FormatCode"),
)
_CONTENT_QUERIES = ("GetAll", "GetSubmissionSetAndContents", "GetFolderAndContents")
_DTM_INPUT = re.compile(
    r"^(\d{4})(?:-?(\d{2}))?(?:-?(\d{2}))?(?:[T ]?(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?)?$"
)


class QueryUsageError(ValueError):
    """The options do not make a valid request for the chosen stored query."""


def query_id(name: str) -> tuple[str, str]:
    """``(name, urn:uuid id)`` of a stored query given by name (any case) or by its id."""
    for known, uuid in QUERY_IDS.items():
        if name.lower() in (known.lower(), uuid):
            return known, uuid
    raise QueryUsageError(
        f"unknown stored query {name!r}; one of: {', '.join(QUERY_IDS)} (or its urn:uuid)"
    )


def dtm(text: str) -> str:
    """A date/time as a person writes it (``2024-01-02``, ``2024-01-02T10:15``, ``20240102``)
    as the digits of an XDS DTM (UTC; ITI TF-3 Table 4.2.3.1.7-2, ITI TF-2 §3.18.4.1.2.3.3)."""
    found = _DTM_INPUT.match(text.strip())
    if not found:
        raise QueryUsageError(f"{text!r} is not a date (YYYY[-MM[-DD[THH[:MM[:SS]]]]])")
    return "".join(part for part in found.groups() if part)


def parse_code(text: str) -> Code:
    """A code option: ``code^^codingScheme`` (the stored-query form)."""
    try:
        return parse_code_param(text)
    except ValueError as exc:
        raise QueryUsageError(str(exc)) from exc


def modality_code(modality: str) -> Code:
    """The eventCodeList code of an acquisition modality (DICOM CID 29, scheme DCM; RAD TF-3
    §4.68.4.1.2.3.2)."""
    return Code(modality.strip().upper(), DCM_SCHEME)


def association_type(text: str) -> str:
    """An association type from its short name (``RPLC``) or full URN (ITI TF-3 Table 4.2.2-1)."""
    return text if text.startswith("urn:") else ASSOCIATION_PREFIX + text


def study_reference_id(study_uid: str) -> str:
    """The referenceIdList value (CXi) of a Study Instance UID (ITI TF-3 §4.2.3.2.28)."""
    return f"{study_uid}^^^^{STUDY_INSTANCE_UID_TYPE}"


@dataclass(slots=True, kw_only=True)
class QueryOptions:
    """What to ask a registry, in a person's terms; empty fields are not sent."""

    query: str = "FindDocuments"
    patient_id: str | None = None
    statuses: list[str] = field(default_factory=lambda: ["approved"])
    class_codes: list[Code] = field(default_factory=list)
    type_codes: list[Code] = field(default_factory=list)
    practice_setting_codes: list[Code] = field(default_factory=list)
    facility_type_codes: list[Code] = field(default_factory=list)
    event_codes: list[Code] = field(default_factory=list)
    confidentiality_codes: list[Code] = field(default_factory=list)
    format_codes: list[Code] = field(default_factory=list)
    time_from: str | None = None  # serviceStartTime / submissionTime / lastUpdateTime
    time_to: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    entry_uuids: list[str] = field(default_factory=list)
    unique_ids: list[str] = field(default_factory=list)
    reference_ids: list[str] = field(default_factory=list)
    association_types: list[str] = field(default_factory=list)
    raw: list[tuple[str, str]] = field(default_factory=list)  # (name, coded Value text)


def build_slots(options: QueryOptions) -> tuple[str, list[QuerySlot]]:
    """The stored query's id and its parameter slots for ``options``.

    Standard: ITI TF-2 §3.18.4.1.2.3.7 (parameter names per query).
    Raises: QueryUsageError for an option the query does not define or a missing required one.
    """
    name, uuid = query_id(options.query)
    slots: list[QuerySlot] = []
    _patient_and_status(name, options, slots)
    _codes(name, options, slots)
    _times(name, options, slots)
    _identifiers(name, options, slots)
    slots.extend(QuerySlot(raw_name, (text,)) for raw_name, text in options.raw)
    return uuid, slots


def _refuse(option: str, name: str) -> QueryUsageError:
    return QueryUsageError(f"{option} does not apply to the {name} stored query")


def _status_values(options: QueryOptions) -> str:
    urns: list[str] = []
    for status in options.statuses:
        key = status.lower()
        if key == "all":
            urns.extend(STATUSES.values())
        elif key in STATUSES:
            urns.append(STATUSES[key])
        elif status.startswith("urn:"):
            urns.append(status)
        else:
            raise QueryUsageError(
                f"unknown status {status!r}: approved, deprecated, submitted, all"
            )
    if not urns:
        raise QueryUsageError("give at least one status: approved, deprecated, submitted, all")
    return quote_list(dict.fromkeys(urns))


def _patient_and_status(name: str, options: QueryOptions, slots: list[QuerySlot]) -> None:
    owners = {
        "FindDocuments": [_DE],
        "FindDocumentsByReferenceId": [_DE],
        "FindSubmissionSets": [_SS],
        "FindFolders": [_FOL],
        "GetAll": [_DE, _SS, _FOL],
    }.get(name)
    if owners is None:
        if options.patient_id:
            raise _refuse("--patient", name)
        return
    if not options.patient_id:
        raise QueryUsageError(f"the {name} stored query needs --patient")
    patient_param = "$patientId" if name == "GetAll" else owners[0] + "PatientId"
    slots.append(QuerySlot(patient_param, (quote(options.patient_id),)))
    statuses = _status_values(options)
    slots.extend(QuerySlot(owner + "Status", (statuses,)) for owner in owners)


def _codes(name: str, options: QueryOptions, slots: list[QuerySlot]) -> None:
    for attribute, suffix in _DOCUMENT_CODES:
        codes: list[Code] = getattr(options, attribute)
        if not codes:
            continue
        content_filter = suffix in ("FormatCode", "ConfidentialityCode")
        if name not in _FIND_DOCUMENTS and not (content_filter and name in _CONTENT_QUERIES):
            raise _refuse("--" + attribute[:-1].replace("_", "-"), name)
        values = quote_list([format_code_param(code) for code in codes])
        slots.append(QuerySlot(_DE + suffix, (values,)))


def _times(name: str, options: QueryOptions, slots: list[QuerySlot]) -> None:
    ranges = {
        "FindDocuments": _DE + "ServiceStartTime",
        "FindDocumentsByReferenceId": _DE + "ServiceStartTime",
        "FindSubmissionSets": _SS + "SubmissionTime",
        "FindFolders": _FOL + "LastUpdateTime",
    }
    for value, suffix, option in (
        (options.time_from, "From", "--from"),
        (options.time_to, "To", "--to"),
    ):
        if value:
            if name not in ranges:
                raise _refuse(option, name)
            slots.append(QuerySlot(ranges[name] + suffix, (dtm(value),)))
    created = ((options.created_from, "From"), (options.created_to, "To"))
    for value, suffix in created:
        if value:
            if name not in _FIND_DOCUMENTS:
                raise _refuse("--created-" + suffix.lower(), name)
            slots.append(QuerySlot(_DE + "CreationTime" + suffix, (dtm(value),)))


def _identifiers(name: str, options: QueryOptions, slots: list[QuerySlot]) -> None:
    for values, suffix, option in (
        (options.entry_uuids, "EntryUUID", "--uuid"),
        (options.unique_ids, "UniqueId", "--unique-id"),
    ):
        if not values:
            continue
        if name in ("GetSubmissionSets", "GetAssociations") and suffix == "EntryUUID":
            slots.append(QuerySlot("$uuid", (quote_list(values),)))
            continue
        owner = _ID_OWNER.get(name)
        if owner is None:
            raise _refuse(option, name)
        if name in _SINGLE_ID:
            if len(values) > 1:
                raise QueryUsageError(f"the {name} stored query takes one {option}")
            slots.append(QuerySlot(owner + suffix, (quote(values[0]),)))
        else:
            slots.append(QuerySlot(owner + suffix, (quote_list(values),)))
    if options.reference_ids:
        if name != "FindDocumentsByReferenceId":
            raise _refuse("--reference-id", name)
        slots.append(QuerySlot(_DE + "ReferenceIdList", (quote_list(options.reference_ids),)))
    if options.association_types:
        if name != "GetRelatedDocuments":
            raise _refuse("--association-type", name)
        types = [association_type(t) for t in options.association_types]
        slots.append(QuerySlot("$AssociationTypes", (quote_list(types),)))
