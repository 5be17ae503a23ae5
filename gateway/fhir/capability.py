"""``GET /fhir/metadata``: the CapabilityStatement of exactly what this server answers.

Standard: FHIR R4 capabilitystatement.html and http.html §3.1.0.13 "capabilities"; ITI TF-2x
Appendix Z.3 (MHD actors publish one); MHD 4.2.2 requirement CapabilityStatements, named in
``instantiates``: IHE.MHD.DocumentResponder (ITI-66, ITI-67, ITI-68) and
IHE.MHD.DocumentRecipient.Comprehensive (ITI-65 with the Comprehensive Metadata option; the
recipient is grouped with an XDS Document Source, the "XDS on FHIR" option). Resources, search
parameters and interactions are listed only when the backing actor is present in this process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.fhir import imaging as imaging_study
from gateway.fhir import iti66, iti67
from gateway.fhir import patient as patients
from gateway.fhir.ports import Backends

MHD_CS = "https://profiles.ihe.net/ITI/MHD/CapabilityStatement"
MHD_SP = "https://profiles.ihe.net/ITI/MHD/SearchParameter"
MHD_SD = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
CORE_SP = "http://hl7.org/fhir/SearchParameter"

# name -> (type, definition); chained parameters have no SearchParameter of their own.
_TYPES: dict[str, tuple[str, str | None]] = {
    "_id": ("token", f"{CORE_SP}/Resource-id"),
    "patient": ("reference", f"{CORE_SP}/clinical-patient"),
    "patient.identifier": ("token", None),
    "identifier": ("token", f"{CORE_SP}/clinical-identifier"),
    "author.given": ("string", None),
    "author.family": ("string", None),
    "source.given": ("string", None),
    "source.family": ("string", None),
    "creation": ("date", f"{MHD_SP}/DocumentReference-Creation"),
    "designationType": ("token", f"{MHD_SP}/List-DesignationType"),
    "sourceId": ("token", f"{MHD_SP}/List-SourceId"),
}
_DOCUMENT_REFERENCE = {
    "status": ("token", f"{CORE_SP}/DocumentReference-status"),
    "category": ("token", f"{CORE_SP}/DocumentReference-category"),
    "type": ("token", f"{CORE_SP}/clinical-type"),
    "setting": ("token", f"{CORE_SP}/DocumentReference-setting"),
    "period": ("date", f"{CORE_SP}/DocumentReference-period"),
    "facility": ("token", f"{CORE_SP}/DocumentReference-facility"),
    "event": ("token", f"{CORE_SP}/DocumentReference-event"),
    "security-label": ("token", f"{CORE_SP}/DocumentReference-security-label"),
    "format": ("token", f"{CORE_SP}/DocumentReference-format"),
    "related": ("reference", f"{CORE_SP}/DocumentReference-related"),
}
_LIST = {
    "code": ("token", f"{CORE_SP}/clinical-code"),
    "status": ("token", f"{CORE_SP}/List-status"),
    "date": ("date", f"{CORE_SP}/clinical-date"),
}
_IMAGING = {"identifier": ("token", f"{CORE_SP}/ImagingStudy-identifier")}
_PATIENT = {"identifier": ("token", f"{CORE_SP}/Patient-identifier")}


def _params(
    names: tuple[str, ...], specific: Mapping[str, tuple[str, str | None]]
) -> list[dict[str, Any]]:
    found = []
    for name in names:
        kind, definition = specific.get(name) or _TYPES[name]
        param: dict[str, Any] = {"name": name, "type": kind}
        if definition:
            param["definition"] = definition
        found.append(param)
    return found


def _searchable(
    kind: str, names: tuple[str, ...], specific: Mapping[str, tuple[str, str | None]], doc: str
) -> dict[str, Any]:
    return {
        "type": kind,
        "documentation": doc,
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": _params(names, specific),
    }


def capability_statement(
    backends: Backends, *, base: str, version: str, date: str
) -> dict[str, Any]:
    """The CapabilityStatement of this server (``date``: FHIR dateTime of the build)."""
    resources: list[dict[str, Any]] = [
        {
            **_searchable(
                "DocumentReference",
                (*iti67.SEARCH_PARAMETERS, "_id"),
                _DOCUMENT_REFERENCE,
                "ITI-67 Find Document References (ITI-18 FindDocuments)",
            ),
            "supportedProfile": [f"{MHD_SD}/IHE.MHD.Comprehensive.DocumentReference"],
        },
        {
            **_searchable(
                "List",
                (*iti66.SEARCH_PARAMETERS, "_id"),
                _LIST,
                "ITI-66 Find Document Lists (ITI-18 FindSubmissionSets, FindFolders)",
            ),
            "supportedProfile": [
                f"{MHD_SD}/IHE.MHD.Comprehensive.SubmissionSet",
                f"{MHD_SD}/IHE.MHD.Comprehensive.Folder",
            ],
        },
    ]
    if backends.repositories:
        resources.append(
            {
                "type": "Binary",
                "documentation": "ITI-68 Retrieve Document: DocumentReference attachment.url",
                "interaction": [{"code": "read"}],
            }
        )
        resources.append(
            _searchable(
                "ImagingStudy",
                imaging_study.SEARCH_PARAMETERS,
                _IMAGING,
                "Studies of the published KOS manifests",
            )
        )
    if backends.patients is not None:
        resources.append(
            _searchable(
                "Patient",
                patients.SEARCH_PARAMETERS,
                _PATIENT,
                "Patients known from the ITI-8 feed (PDQm-like read)",
            )
        )
    rest: dict[str, Any] = {
        "mode": "server",
        "documentation": "IHE MHD Document Responder (XDS on FHIR) over the XDS registry",
        "security": {
            "description": "TLS with client certificates of the affinity domain when [tls] is "
            "on (ITI-19); access rules per transaction (ITI-65, ITI-66, ITI-67, ITI-68, ITI-78)"
        },
        "resource": sorted(resources, key=lambda r: str(r["type"])),
    }
    instantiates = [f"{MHD_CS}/IHE.MHD.DocumentResponder"]
    if backends.provide is not None:
        rest["interaction"] = [
            {"code": "transaction", "documentation": "ITI-65 Provide Document Bundle (ITI-41)"}
        ]
        instantiates.append(f"{MHD_CS}/IHE.MHD.DocumentRecipient.Comprehensive")
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "xdsi-gateway",
        "kind": "instance",
        "instantiates": instantiates,
        "software": {"name": "xdsi-gateway", "version": version},
        "implementation": {"description": "xdsi-gateway MHD facade", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [rest],
    }
