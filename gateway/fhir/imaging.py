"""ImagingStudy (FHIR R4) from the published KOS manifests: ``GET /fhir/ImagingStudy``, ``/{id}``.

A patient's studies are the Approved KOS DocumentEntries of the registry (FindDocuments with
formatCode 1.2.840.10008.5.1.4.1.1.88.59, RAD TF-3 §4.68.4.1.2.3.2; ``identifier`` =
``urn:dicom:uid|urn:oid:<Study Instance UID>`` narrows to FindDocumentsByReferenceId on the
``urn:ihe:iti:xds:2016:studyInstanceUID`` reference id); each manifest is retrieved from its
repository (ITI-43) and read (``kos``). The ImagingStudy id is the manifest's entryUUID; a
replaced manifest keeps its ImagingStudy readable as it listed the study.

Mapping (FHIR R4 imagingstudy.html, its DICOM mappings): identifier = Study Instance UID as
``urn:oid:`` (system ``urn:dicom:uid``) and the accession number (type ACSN); started =
serviceStartTime, else the KOS Study Date/Time; series.uid, series.instance.uid/sopClass from
the evidence sequence; numberOfSeries/numberOfInstances counted from it; series.modality,
series.number and instance.number from the imaging source's index when it holds the instance,
else the modality of the DocumentEntry's eventCodeList when it names one, else the usual
modality of the SOP Class, else ``OT``; modality = the series' modalities.

Endpoints (FHIR R4 endpoint.html, CodeSystem endpoint-connection-type): when this gateway's
DICOMweb service is enabled and serves the series' Retrieve Location, a ``dicom-wado-rs``
Endpoint at its service root (WADO-RS: ``{address}/studies/{uid}``, DICOM PS3.18 §10.4);
otherwise, when the RAD-69 endpoint of that location is known, an ``ihe-xds`` Endpoint at it
with the Retrieve Location UID as identifier (RAD-69 is an XDS-I.b web service; ``ihe-iid``
would announce an Invoke Image Display launch URL, RAD-106, which this gateway does not serve).
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.datatypes import (
    URN_OID,
    datetime_of_dtm,
    patient_id_in_domain,
    resource_id_of_uuid,
)
from gateway.fhir.docref import Links
from gateway.fhir.iti67 import find_entry
from gateway.fhir.kos import ManifestCache, ManifestError, SeriesRef, StudyManifest, read_manifest
from gateway.fhir.outcomes import run_query
from gateway.fhir.ports import Backends, InstanceFacts
from gateway.fhir.search import Params, patient_ids, split_or, token
from gateway.fhir.searchset import Page, searchset
from gateway.fhir.wire import FhirError, Issue
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, format_code_param
from gateway.metadata.model import DocumentEntry
from gateway.metadata.query import AdhocQuery
from gateway.metadata.query_values import quote, quote_list
from gateway.metadata.retrieve import DocumentRequest

TRANSACTION = "ITI-67"  # a search of the patient's KOS document references
SEARCH_PARAMETERS = ("patient", "patient.identifier", "identifier")
KOS_FORMAT = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")
DCM = "http://dicom.nema.org/resources/ontology/DCM"
DCM_SCHEME = "1.2.840.10008.2.16.4"
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
STUDY_UID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"
ACCESSION_TYPE = "urn:ihe:iti:xds:2013:accession"
# The modality a SOP Class usually comes from (DICOM PS3.3 Annex A, IOD descriptions).
SOP_MODALITIES = {
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.1.2": "MG",
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.2.1": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.4.1": "MR",
    "1.2.840.10008.5.1.4.1.1.6.1": "US",
    "1.2.840.10008.5.1.4.1.1.3.1": "US",
    "1.2.840.10008.5.1.4.1.1.12.1": "XA",
    "1.2.840.10008.5.1.4.1.1.12.2": "RF",
    "1.2.840.10008.5.1.4.1.1.20": "NM",
    "1.2.840.10008.5.1.4.1.1.128": "PT",
    "1.2.840.10008.5.1.4.1.1.88.59": "KO",
    "1.2.840.10008.5.1.4.1.1.11.1": "PR",
    "1.2.840.10008.5.1.4.1.1.66.4": "SEG",
}


def find_manifests(params: Params, domain_oid: str) -> AdhocQuery:
    """The stored query of an ImagingStudy search: the patient's Approved KOS entries."""
    studies = []
    for item in [i for value in params.all("identifier") for i in split_or(value)]:
        system, value = token(item)
        if system not in (None, "", "urn:dicom:uid") or not value.startswith(URN_OID):
            raise FhirError.of(
                400,
                f"identifier: {item!r} is not urn:dicom:uid|urn:oid:<UID>",
                code="value",
                expression="identifier",
            )
        studies.append(f"{value[len(URN_OID) :]}^^^^{STUDY_UID_TYPE}")
    query = AdhocQuery(query_id=v.FIND_DOCUMENTS_BY_REFERENCE_ID if studies else v.FIND_DOCUMENTS)
    query.add("$XDSDocumentEntryPatientId", quote(patient_ids(params, domain_oid)[0]))
    query.add("$XDSDocumentEntryStatus", quote_list([v.STATUS_APPROVED]))
    query.add("$XDSDocumentEntryFormatCode", quote_list([format_code_param(KOS_FORMAT)]))
    if studies:
        query.add("$XDSDocumentEntryReferenceIdList", quote_list(studies))
    return query


class StudyBuilder:
    """Builds ImagingStudy resources; holds the per-process cache of read manifests."""

    def __init__(self, backends: Backends, cache: ManifestCache | None = None) -> None:
        self.backends = backends
        self.cache = cache or ManifestCache()

    def manifest(self, entry: DocumentEntry) -> StudyManifest:
        """The read KOS of a manifest entry (ITI-43 at its repository). Raises: ManifestError."""
        key = f"{entry.repository_unique_id}|{entry.unique_id}"
        found = self.cache.get(key)
        if found is not None:
            return found
        repository = self.backends.repositories.get(entry.repository_unique_id or "")
        if repository is None or not entry.unique_id:
            raise ManifestError(
                f"repository {entry.repository_unique_id} is not reachable from here"
            )
        answer = repository(
            [
                DocumentRequest(
                    repository_unique_id=entry.repository_unique_id or "",
                    document_unique_id=entry.unique_id,
                )
            ]
        )
        try:
            if not answer.documents:
                raise ManifestError("; ".join(str(e) for e in answer.errors) or "not returned")
            manifest = read_manifest(answer.documents[0].attachment.read_bytes())
        finally:
            answer.discard()
        self.cache.put(key, manifest)
        return manifest

    def build(self, entry: DocumentEntry, links: Links) -> dict[str, Any]:
        """The ImagingStudy of one KOS entry. Raises: ManifestError."""
        manifest = self.manifest(entry)
        uids = [i.sop_instance_uid for s in manifest.series for i in s.instances]
        facts = dict(self.backends.instances(uids)) if self.backends.instances else {}
        endpoints: dict[str, dict[str, Any]] = {}
        series = [self._series(s, entry, facts, endpoints, links) for s in manifest.series]
        resource: dict[str, Any] = {
            "resourceType": "ImagingStudy",
            "id": resource_id_of_uuid(entry.entry_uuid),
        }
        if endpoints:
            resource["contained"] = list(endpoints.values())
        resource["identifier"] = _identifiers(manifest, entry)
        resource["status"] = "available"
        modalities = list(dict.fromkeys(s["modality"]["code"] for s in series))
        resource["modality"] = [{"system": DCM, "code": m} for m in modalities]
        resource["subject"] = links.patient(
            entry.patient_id or "", patient_id_in_domain(entry.patient_id, self.backends.domain_oid)
        )
        started = datetime_of_dtm(entry.service_start_time) or _kos_started(manifest)
        if started:
            resource["started"] = started
        if endpoints:
            resource["endpoint"] = [{"reference": f"#{e['id']}"} for e in endpoints.values()]
        resource["numberOfSeries"] = len(series)
        resource["numberOfInstances"] = manifest.instance_count
        description = manifest.study_description or entry.title
        if description:
            resource["description"] = description
        resource["series"] = series
        return resource

    def _series(
        self,
        series: SeriesRef,
        entry: DocumentEntry,
        facts: dict[str, InstanceFacts],
        endpoints: dict[str, dict[str, Any]],
        links: Links,
    ) -> dict[str, Any]:
        known = [facts[i.sop_instance_uid] for i in series.instances if i.sop_instance_uid in facts]
        modality = next((f.modality for f in known if f.modality), None) or _modality(entry, series)
        item: dict[str, Any] = {"uid": series.series_instance_uid}
        number = next((f.series_number for f in known if f.series_number is not None), None)
        if number is not None:
            item["number"] = number
        item["modality"] = {"system": DCM, "code": modality}
        item["numberOfInstances"] = len(series.instances)
        endpoint = self._endpoint(series.retrieve_location_uid, endpoints, links)
        if endpoint is not None:
            item["endpoint"] = [{"reference": f"#{endpoint}"}]
        instances = []
        for ref in series.instances:
            instance: dict[str, Any] = {
                "uid": ref.sop_instance_uid,
                "sopClass": {"system": "urn:ietf:rfc:3986", "code": URN_OID + ref.sop_class_uid},
            }
            fact = facts.get(ref.sop_instance_uid)
            if fact is not None and fact.instance_number is not None:
                instance["number"] = fact.instance_number
            instances.append(instance)
        item["instance"] = instances
        return item

    def _endpoint(
        self, location: str | None, endpoints: dict[str, dict[str, Any]], links: Links
    ) -> str | None:
        if not location:
            return None
        if location in endpoints:
            return str(endpoints[location]["id"])
        backends = self.backends
        if backends.wado_rs and location in backends.wado_rs_locations:
            kind, address = "dicom-wado-rs", links.absolute(backends.wado_rs)
        elif location in backends.rad69_urls:
            kind, address = "ihe-xds", links.absolute(backends.rad69_urls[location])
        else:
            return None
        endpoint = {
            "resourceType": "Endpoint",
            "id": f"ep{len(endpoints) + 1}",
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": URN_OID + location}],
            "status": "active",
            "connectionType": {"system": CONNECTION_TYPES, "code": kind},
            "payloadType": [{"text": "DICOM"}],
            "payloadMimeType": ["application/dicom"],
            "address": address,
        }
        endpoints[location] = endpoint
        return str(endpoint["id"])


def _identifiers(manifest: StudyManifest, entry: DocumentEntry) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [
        {"system": "urn:dicom:uid", "value": URN_OID + manifest.study_instance_uid}
    ]
    for cxi in entry.reference_id_list:
        parts = [*cxi.split("^"), "", "", "", "", ""]
        if parts[4] == ACCESSION_TYPE and parts[0]:
            identifier: dict[str, Any] = {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}
                    ]
                },
                "value": parts[0],
            }
            authority = parts[3].split("&")
            if len(authority) == 3 and authority[2] == "ISO" and authority[1]:
                identifier["system"] = URN_OID + authority[1]
            found.append(identifier)
    return found


def _kos_started(manifest: StudyManifest) -> str | None:
    # Study Time is local time without a UTC offset in the KOS: no time zone can be claimed,
    # so only the Study Date is given.
    date = manifest.study_date
    return datetime_of_dtm(date) if len(date) == 8 and date.isdigit() else None


def _modality(entry: DocumentEntry, series: SeriesRef) -> str:
    event_modalities = [c.code for c in entry.event_code_list if c.scheme == DCM_SCHEME]
    if len(event_modalities) == 1:
        return event_modalities[0]
    classes = {i.sop_class_uid for i in series.instances}
    found = {SOP_MODALITIES[c] for c in classes if c in SOP_MODALITIES}
    return found.pop() if len(found) == 1 else "OT"


def search(
    params: Params, builder: StudyBuilder, links: Links, *, default_count: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Answer an ImagingStudy search: the searchset Bundle and the audit facts."""
    backends = builder.backends
    page = Page.of(params, default_count)
    query = find_manifests(params, backends.domain_oid)
    entries = [o for o in run_query(backends.query, query) if isinstance(o, DocumentEntry)]
    entries.sort(
        key=lambda e: ((e.service_start_time or "").ljust(14, "0"), e.unique_id or ""), reverse=True
    )
    resources, warnings = [], []
    for entry in page.cut(entries):
        try:
            resources.append(
                (
                    f"{links.base}/ImagingStudy/{resource_id_of_uuid(entry.entry_uuid)}",
                    builder.build(entry, links),
                )
            )
        except ManifestError as exc:
            warnings.append(
                Issue(
                    severity="warning",
                    code="incomplete",
                    diagnostics=f"manifest {entry.unique_id}: {exc}",
                )
            )
    facts = {
        "patient_ids": [patient_ids(params, backends.domain_oid)[0]],
        "query_id": query.query_id,
    }
    return searchset(
        f"{links.base}/ImagingStudy", params, page, len(entries), resources, warnings
    ), facts


def read(
    resource_id: str, builder: StudyBuilder, links: Links
) -> tuple[dict[str, Any], DocumentEntry]:
    """``GET /ImagingStudy/{id}``: the study a manifest entry lists. Raises: FhirError 404."""
    entry, _associations = find_entry(resource_id, builder.backends)
    if entry.format_code is None or not entry.format_code.matches(KOS_FORMAT):
        raise FhirError.of(404, f"ImagingStudy/{resource_id} does not exist", code="not-found")
    try:
        return builder.build(entry, links), entry
    except ManifestError as exc:
        raise FhirError.of(
            502,
            f"the manifest of ImagingStudy/{resource_id} cannot be read: {exc}",
            code="exception",
        ) from exc
