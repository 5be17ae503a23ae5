"""ITI-67 Find Document References: ``GET /fhir/DocumentReference`` and ``.../{id}``.

Search (XDS on FHIR option, ITI-67 §2:3.67.4.1.3.1, Table 2:3.67.4.1.3.1-1): one ITI-18
FindDocuments (FindDocumentsByReferenceId when ``related`` is given) with

=================================  ===========================================================
patient, patient.identifier        $XDSDocumentEntryPatientId
status                             $XDSDocumentEntryStatus (current = Approved, superseded =
                                   Deprecated; absent: both)
creation ge / lt                   $XDSDocumentEntryCreationTimeFrom / To
period ge / lt                     $XDSDocumentEntryServiceStopTimeFrom / ServiceStartTimeTo
                                   (the service time overlaps the interval searched)
author.given, author.family        $XDSDocumentEntryAuthorPerson (LIKE pattern)
category, type, setting, facility  $XDSDocumentEntryClassCode, TypeCode, PracticeSettingCode,
                                   HealthcareFacilityTypeCode
event, security-label, format      $XDSDocumentEntryEventCodeList, ConfidentialityCode,
                                   FormatCode
related                            $XDSDocumentEntryReferenceIdList
identifier                         the result filtered on masterIdentifier / identifier
=================================  ===========================================================

then one GetAssociations for the documents of the page (relatesTo, §2:3.67.4.2.2.1.4). Read
(``/{id}``): GetDocumentsAndAssociations by entryUUID (ITI TF-2 §3.18.4.1.2.3.7.8).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.fhir import docref
from gateway.fhir.datatypes import (
    patient_id_in_domain,
    resource_id_of_uuid,
    unique_id_of,
    uuid_of_resource_id,
)
from gateway.fhir.outcomes import run_query
from gateway.fhir.ports import Backends
from gateway.fhir.search import (
    Params,
    code_slots,
    date_bounds,
    patient_ids,
    person_pattern,
    split_or,
    status_slot,
    string_values,
    token,
)
from gateway.fhir.searchset import Page, searchset
from gateway.fhir.wire import FhirError
from gateway.metadata import vocabulary as v
from gateway.metadata.model import Association, DocumentEntry
from gateway.metadata.query import AdhocQuery
from gateway.metadata.query_values import quote, quote_list

TRANSACTION = "ITI-67"
DE = "$XDSDocumentEntry"
CODE_PARAMETERS = {
    "category": DE + "ClassCode",
    "type": DE + "TypeCode",
    "setting": DE + "PracticeSettingCode",
    "facility": DE + "HealthcareFacilityTypeCode",
    "event": DE + "EventCodeList",
    "security-label": DE + "ConfidentialityCode",
    "format": DE + "FormatCode",
}
SEARCH_PARAMETERS = (
    "patient",
    "patient.identifier",
    "status",
    "creation",
    "period",
    "author.given",
    "author.family",
    *CODE_PARAMETERS,
    "related",
    "identifier",
)
# The CXi type codes of ITI TF-3 §4.2.3.2.28: a ``related`` token names no type, so a value is
# searched under each of them.
CXI_TYPES = (
    "urn:ihe:iti:xds:2013:uniqueId",
    "urn:ihe:iti:xds:2013:accession",
    "urn:ihe:iti:xds:2013:referral",
    "urn:ihe:iti:xds:2013:order",
    "urn:ihe:iti:xds:2015:encounterId",
    "urn:ihe:iti:xdw:2013:workflowInstanceId",
    "urn:ihe:iti:xds:2016:studyInstanceUID",
)
STATUSES: dict[str, str] = {"current": v.STATUS_APPROVED, "superseded": v.STATUS_DEPRECATED}


def _related_slots(params: Params) -> list[str]:
    slots = []
    for value in params.all("related") + params.all("related.identifier"):
        cxis = []
        for item in split_or(value):
            system, code = token(item)
            if not code:
                raise FhirError.of(400, f"related: {item!r} has no value", expression="related")
            authority = f"&{unique_id_of(system)}&ISO" if system else ""
            cxis += [f"{code}^^^{authority}^{kind}" for kind in CXI_TYPES]
        slots.append(quote_list(cxis))
    return slots


def find_documents(params: Params, domain_oid: str, *, statuses: Sequence[str] = ()) -> AdhocQuery:
    """The FindDocuments (or ...ByReferenceId) stored query of an ITI-67 search.

    ``statuses``: the availabilityStatus searched when ``status`` is absent (default: both
    Approved and Deprecated, as a FHIR search without ``status`` matches every status).
    Standard: ITI-67 Table 2:3.67.4.1.3.1-1; ITI TF-2 §3.18.4.1.2.3.7.1 and .14.
    Raises: FhirError 400 for parameters that cannot be mapped.
    """
    related = _related_slots(params)
    query = AdhocQuery(query_id=v.FIND_DOCUMENTS_BY_REFERENCE_ID if related else v.FIND_DOCUMENTS)
    query.add(DE + "PatientId", quote(patient_ids(params, domain_oid)[0]))
    if params.all("status"):
        query.add(DE + "Status", status_slot(params, "status", STATUSES, default="current"))
    else:
        query.add(DE + "Status", quote_list(list(statuses or STATUSES.values())))
    creation = date_bounds(params, "creation")
    if creation.start:
        query.add(DE + "CreationTimeFrom", creation.start)
    if creation.end:
        query.add(DE + "CreationTimeTo", creation.end)
    period = date_bounds(params, "period")
    if period.start:
        query.add(DE + "ServiceStopTimeFrom", period.start)
    if period.end:
        query.add(DE + "ServiceStartTimeTo", period.end)
    pattern = person_pattern(
        string_values(params, "author.given"), string_values(params, "author.family")
    )
    if pattern:
        query.add(DE + "AuthorPerson", quote_list([pattern]))
    for name, slot in CODE_PARAMETERS.items():
        for value in code_slots(params, name):
            query.add(slot, value)
    for value in related:
        query.add(DE + "ReferenceIdList", value)
    return query


def identifier_filter(params: Params) -> set[str] | None:
    """The uniqueIds / entryUUIDs ``identifier`` and ``_id`` ask for (None: no filter)."""
    values = [token(item)[1] for value in params.all("identifier") for item in split_or(value)]
    ids = [item for value in params.all("_id") for item in split_or(value)]
    if not values and not ids:
        return None
    wanted = {unique_id_of(value) for value in values} | set(values)
    return wanted | {uuid for uuid in map(uuid_of_resource_id, ids) if uuid}


def _order(entry: DocumentEntry) -> tuple[str, str]:
    # Newest first: creationTime is DTM, so the text order is the time order at equal length.
    return (entry.creation_time or "").ljust(14, "0"), entry.unique_id or ""


def associations_of(backends: Backends, uuids: Sequence[str]) -> list[Association]:
    """The associations whose source is one of ``uuids`` (GetAssociations)."""
    if not uuids:
        return []
    query = AdhocQuery(query_id=v.GET_ASSOCIATIONS).add("$uuid", quote_list(list(uuids)))
    return [
        o
        for o in run_query(backends.query, query)
        if isinstance(o, Association) and o.source_object in uuids
    ]


def render(
    entry: DocumentEntry,
    backends: Backends,
    links: docref.Links,
    associations: Sequence[Association],
) -> dict[str, Any]:
    """The DocumentReference of one entry, relatesTo from ``associations``."""
    return docref.document_reference(
        entry,
        links,
        patient_id=patient_id_in_domain(entry.patient_id, backends.domain_oid),
        associations=associations,
    )


def search(
    params: Params, backends: Backends, links: docref.Links, *, default_count: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer an ITI-67 search: the searchset Bundle and the audit facts.

    Standard: ITI-67 §2:3.67.4.1.3, §2:3.67.4.2.2; ITI TF-2 §3.18.5.1 (audit facts).
    Raises: FhirError.
    """
    page = Page.of(params, default_count)
    query = find_documents(params, backends.domain_oid)
    facts = {
        "patient_ids": [patient_ids(params, backends.domain_oid)[0]],
        "query_id": query.query_id,
    }
    wanted = identifier_filter(params)
    entries = [o for o in run_query(backends.query, query) if isinstance(o, DocumentEntry)]
    if wanted is not None:
        entries = [e for e in entries if e.unique_id in wanted or e.entry_uuid in wanted]
    entries.sort(key=_order, reverse=True)
    shown = list(page.cut(entries))
    associations = associations_of(backends, [e.entry_uuid for e in shown])
    resources = [
        (
            f"{links.base}/DocumentReference/{resource_id_of_uuid(e.entry_uuid)}",
            render(e, backends, links, associations),
        )
        for e in shown
    ]
    url = f"{links.base}/DocumentReference"
    return searchset(url, params, page, len(entries), resources), facts


def read(
    resource_id: str, backends: Backends, links: docref.Links
) -> tuple[dict[str, Any], DocumentEntry]:
    """``GET /DocumentReference/{id}``: the DocumentReference, and the entry (for audit).

    Raises: FhirError 404 when no DocumentEntry has that entryUUID.
    """
    entry, associations = find_entry(resource_id, backends)
    return render(entry, backends, links, associations), entry


def find_entry(resource_id: str, backends: Backends) -> tuple[DocumentEntry, list[Association]]:
    """The DocumentEntry a resource id names and its associations (GetDocumentsAndAssociations).

    Raises: FhirError 404.
    """
    uuid = uuid_of_resource_id(resource_id)
    if uuid is None:
        raise FhirError.of(404, f"DocumentReference/{resource_id} does not exist", code="not-found")
    query = AdhocQuery(query_id=v.GET_DOCUMENTS_AND_ASSOCIATIONS)
    query.add(DE + "EntryUUID", quote_list([uuid]))
    objects = run_query(backends.query, query)
    entries = [o for o in objects if isinstance(o, DocumentEntry) and o.entry_uuid == uuid]
    if not entries:
        raise FhirError.of(404, f"DocumentReference/{resource_id} does not exist", code="not-found")
    associations = [o for o in objects if isinstance(o, Association) and o.source_object == uuid]
    return entries[0], associations
