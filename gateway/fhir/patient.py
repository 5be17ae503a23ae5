"""Patient resources of the patients ITI-8 fed: ``GET /fhir/Patient?identifier=`` and ``/{id}``.

A read of the demographics the registry holds, in the manner of PDQm (ITI-78 Mobile Patient
Demographics Query, rev. 3.x read: search by ``identifier`` ``system|value``, read by id), so
that a client can resolve the ``subject`` of DocumentReferences and Lists. The id is the
affinity-domain CX.1 (``datatypes.patient_resource_id``); identifiers are the domain id and
the other ids fed with it (HL7 v2 PID-3). A merged patient is returned inactive with a
``replaced-by`` link to the survivor (ITI TF-2 §3.8.4.2.3; FHIR R4 patient.html "link").
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.datatypes import (
    URN_OID,
    patient_cx_of_resource_id,
    patient_id_in_domain,
    patient_identifier,
)
from gateway.fhir.ports import Backends, PatientRecord
from gateway.fhir.search import Params, split_or, token
from gateway.fhir.searchset import Page, searchset
from gateway.fhir.wire import FhirError
from gateway.metadata.datatypes import DataTypeError, format_cx, is_oid

TRANSACTION = "ITI-78"
SEARCH_PARAMETERS = ("identifier", "_id")
_GENDERS = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}


def _name(demographics: dict[str, Any]) -> dict[str, Any] | None:
    name: dict[str, Any] = {}
    if demographics.get("family_name"):
        name["family"] = str(demographics["family_name"])
    if demographics.get("given_name"):
        name["given"] = [str(demographics["given_name"])]
    return name or None


def _birth_date(value: Any) -> str | None:
    text = str(value or "")
    if len(text) >= 8 and text[:8].isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:8]}"
    if len(text) in (4, 6) and text.isdigit():
        return text[:4] + (f"-{text[4:6]}" if len(text) == 6 else "")
    return None


def _address(value: Any) -> dict[str, Any] | None:
    parts = [*str(value or "").split("^"), "", "", "", "", "", ""]
    street, other, city, state, postal, country = (p.split("&")[0] for p in parts[:6])
    address: dict[str, Any] = {}
    lines = [line for line in (street, other) if line]
    if lines:
        address["line"] = lines
    for key, text in (
        ("city", city),
        ("state", state),
        ("postalCode", postal),
        ("country", country),
    ):
        if text:
            address[key] = text
    return address or None


def patient_resource(record: PatientRecord, domain_oid: str) -> dict[str, Any]:
    """The Patient resource of a fed patient."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id_in_domain(record.patient_id, domain_oid),
    }
    identifiers = [patient_identifier(record.patient_id)]
    for other in record.other_ids:
        try:
            identifiers.append(patient_identifier(other))
        except DataTypeError:
            identifiers.append({"value": other})
    resource["identifier"] = identifiers
    resource["active"] = record.active
    demographics = dict(record.demographics)
    name = _name(demographics)
    if name:
        resource["name"] = [name]
    gender = _GENDERS.get(str(demographics.get("sex") or "").upper())
    if gender:
        resource["gender"] = gender
    birth = _birth_date(demographics.get("birth_date"))
    if birth:
        resource["birthDate"] = birth
    address = _address(demographics.get("address"))
    if address:
        resource["address"] = [address]
    survivor = patient_id_in_domain(record.merged_into, domain_oid)
    if not record.active and survivor:
        resource["link"] = [{"other": {"reference": f"Patient/{survivor}"}, "type": "replaced-by"}]
    return resource


def _lookup(backends: Backends, cx: str) -> PatientRecord | None:
    if backends.patients is None:
        raise FhirError.of(501, "this gateway has no patient registry", code="not-supported")
    return backends.patients(cx)


def read(resource_id: str, backends: Backends) -> dict[str, Any]:
    """``GET /Patient/{id}``. Raises: FhirError 404 for a patient the feed never named."""
    cx = patient_cx_of_resource_id(resource_id, backends.domain_oid)
    record = _lookup(backends, cx) if cx else None
    if record is None:
        raise FhirError.of(404, f"Patient/{resource_id} is not known", code="not-found")
    return patient_resource(record, backends.domain_oid)


def _cxs(params: Params, domain_oid: str) -> list[str]:
    found = []
    for item in [i for value in params.all("identifier") for i in split_or(value)]:
        system, value = token(item)
        oid = system[len(URN_OID) :] if system and system.startswith(URN_OID) else ""
        if not is_oid(oid) or not value:
            raise FhirError.of(
                400,
                f"identifier: {item!r} is not urn:oid:<OID>|<id>",
                code="value",
                expression="identifier",
            )
        found.append(format_cx(value, oid))
    for item in [i for value in params.all("_id") for i in split_or(value)]:
        cx = patient_cx_of_resource_id(item, domain_oid)
        if cx:
            found.append(cx)
    if not found:
        raise FhirError.of(
            400, "identifier (or _id) is required", code="required", expression="identifier"
        )
    return list(dict.fromkeys(found))


def search(params: Params, backends: Backends, base: str, *, default_count: int) -> dict[str, Any]:
    """``GET /Patient?identifier=urn:oid:...|id``: the fed patients with those identifiers."""
    page = Page.of(params, default_count)
    records: dict[str, PatientRecord] = {}
    for cx in _cxs(params, backends.domain_oid):
        record = _lookup(backends, cx)
        if record is not None:
            records.setdefault(record.patient_id, record)
    found = [patient_resource(r, backends.domain_oid) for r in records.values()]
    found = [resource for resource in found if resource["id"]]
    shown = [(f"{base}/Patient/{r['id']}", r) for r in page.cut(found)]
    return searchset(f"{base}/Patient", params, page, len(found), shown)
