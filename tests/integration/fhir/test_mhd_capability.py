"""Acceptance 3: the CapabilityStatement lists exactly what is served: every resource type it
names answers read and search, every other type is 404; every token, date and reference search
parameter it names is read (a malformed value is refused with 400, not ignored); the
transaction interaction is there only when this process has a repository."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from gateway.app import Gateway
from tests.integration.fhir.conftest import fhir_base
from tests.support.fhir_check import check_resource

REQUIRED = {
    "DocumentReference": {"patient": "PAT-1"},
    "List": {"patient": "PAT-1"},
    "ImagingStudy": {"patient": "PAT-1"},
    "Patient": {"identifier": "urn:oid:1.3.6.1.4.1.21367.13.20.1000|PAT-1"},
}
MALFORMED = {"token": "|no-system", "date": "sa2024", "reference": "a/b c"}
# Parameters that filter by any value, so no value is malformed (tested by their searches).
ANY_VALUE = {"identifier", "_id", "sourceId", "related", "status"}
STATUS_VALUE = "nonsense"


def statement(gw: Gateway) -> dict[str, Any]:
    body = requests.get(fhir_base(gw) + "/metadata", timeout=30).json()
    check_resource(body)
    return body


def test_every_listed_type_and_parameter_is_served(gateway: Gateway) -> None:
    body = statement(gateway)
    base = fhir_base(gateway)
    resources = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(resources) == {"Binary", "DocumentReference", "ImagingStudy", "List", "Patient"}
    for kind, resource in resources.items():
        interactions = {i["code"] for i in resource["interaction"]}
        unknown = requests.get(f"{base}/{kind}/0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", timeout=30)
        assert unknown.status_code == 404 and "read" in interactions, kind
        assert "no resource type" not in unknown.text
        if "search-type" not in interactions:
            continue
        found = requests.get(f"{base}/{kind}", params=REQUIRED[kind], timeout=30)
        assert found.status_code == 200, (kind, found.text)
        check_resource(found.json())
        for param in resource["searchParam"]:
            name = param["name"]
            if param["type"] == "string" or name in ANY_VALUE - {"status"}:
                continue
            value = STATUS_VALUE if name == "status" else MALFORMED[param["type"]]
            params = {**REQUIRED[kind], name: value}
            refused = requests.get(f"{base}/{kind}", params=params, timeout=30)
            assert refused.status_code == 400, (kind, name, refused.text)
    for kind in ("Observation", "Encounter", "DocumentManifest"):
        assert requests.get(f"{base}/{kind}", timeout=30).status_code == 404


def test_no_repository_no_transaction_no_binary(start_gateway: Callable[..., Gateway]) -> None:
    gw = start_gateway(XDSI_REPOSITORY_ENABLED="false", XDSI_IMAGING_SOURCE_ENABLED="false")
    body = statement(gw)
    assert "interaction" not in body["rest"][0]
    kinds = {r["type"] for r in body["rest"][0]["resource"]}
    assert kinds == {"DocumentReference", "List", "Patient"}
    answer = requests.post(
        fhir_base(gw),
        json={"resourceType": "Bundle"},
        headers={"Content-Type": "application/fhir+json"},
        timeout=30,
    )
    assert answer.status_code == 501
    for path in ("/ImagingStudy?patient=PAT-1", "/Binary/0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"):
        assert requests.get(fhir_base(gw) + path, timeout=30).status_code == 404  # not listed
