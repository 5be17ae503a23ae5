"""ITI-65 Bundle mapping without the network: structure checks, patient identity, associations."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.iti65 import map_bundle
from gateway.fhir.wire import FhirError
from gateway.metadata import vocabulary as v
from gateway.metadata.validate import ITI_41, check_submission
from tests.support import mhd

BASE = "https://region.example/fhir"
PATIENT = f"PAT-1^^^&{mhd.DOMAIN}&ISO"


def mapped(bundle: dict[str, Any]) -> Any:
    return map_bundle(bundle, base=BASE, domain_oid=mhd.DOMAIN)


def refused(bundle: dict[str, Any]) -> FhirError:
    with pytest.raises(FhirError) as caught:
        mapped(bundle)
    return caught.value


def test_a_comprehensive_bundle_maps_to_a_valid_xds_submission() -> None:
    result = mapped(mhd.provide_bundle([mhd.Document(b"a"), mhd.Document(b"b")], folder=True))
    submission = result.submission
    errors, external = check_submission(submission, rules=ITI_41, repository=True)
    assert errors == [] and external == frozenset()
    assert submission.patient_ids() == [PATIENT]
    kinds = sorted(
        (a.association_type.rsplit(":", 1)[-1], str(a.submission_set_status or "-"))
        for a in submission.associations
    )
    # 2 documents and 1 folder in the set; 2 folder memberships, each a member of the set too
    assert kinds == sorted([("HasMember", "Original")] * 2 + [("HasMember", "-")] * 5)
    assert [content.read_bytes() for _uuid, content in result.contents] == [b"a", b"b"]
    assert result.responses[0] == (
        "201 Created",
        f"List/{submission.submission_set.entry_uuid[9:]}",
    )


def test_entry_uuids_come_from_identifiers_or_fullurls() -> None:
    bundle = mhd.provide_bundle([mhd.Document(b"a")])
    full_url = bundle["entry"][1]["fullUrl"]
    assert mapped(bundle).submission.document_entries[0].entry_uuid == full_url


@pytest.mark.parametrize(
    ("subject", "cx"),
    [
        ({"reference": "Patient/PAT-1"}, PATIENT),
        ({"reference": f"{BASE}/Patient/PAT-1"}, PATIENT),
        ({"identifier": {"system": f"urn:oid:{mhd.DOMAIN}", "value": "PAT-1"}}, PATIENT),
        ({"identifier": {"system": "urn:oid:1.2.3", "value": "X"}}, "X^^^&1.2.3&ISO"),
    ],
)
def test_patient_references(subject: dict[str, Any], cx: str) -> None:
    bundle = mhd.provide_bundle([mhd.Document(b"a")], patient=subject)
    assert mapped(bundle).submission.patient_ids() == [cx]


def test_a_patient_of_the_bundle_is_read_by_its_domain_identifier() -> None:
    bundle = mhd.provide_bundle(
        [mhd.Document(b"a")], patient={"reference": "urn:uuid:7b0e64c5-6f3c-4c8e-9f1e-2d7c1a0b9e11"}
    )
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:oid:1.2.3", "value": "L-1"},
            {"system": f"urn:oid:{mhd.DOMAIN}", "value": "PAT-1"},
        ],
    }
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:7b0e64c5-6f3c-4c8e-9f1e-2d7c1a0b9e11",
            "resource": patient,
            "request": {"method": "GET", "url": "Patient/PAT-1"},
        }
    )
    result = mapped(bundle)
    assert result.submission.patient_ids() == [PATIENT]
    assert result.responses[len(bundle["entry"]) - 1] == ("200 OK", "")
    patient["identifier"] = patient["identifier"][:1]
    error = refused(bundle)
    assert (error.status, error.xds_codes) == (422, ("XDSUnknownPatientId",))


def test_other_servers_are_not_fetched() -> None:
    bundle = mhd.provide_bundle(
        [mhd.Document(b"a")], patient={"reference": "https://elsewhere.example/fhir/Patient/9"}
    )
    error = refused(bundle)
    assert (error.status, error.xds_codes) == (422, ("XDSUnknownPatientId",))


def _without(bundle: dict[str, Any], kind: str) -> dict[str, Any]:
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != kind]
    return bundle


def _observation(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"].append(
        {
            "resource": {"resourceType": "Observation"},
            "request": {"method": "POST", "url": "Observation"},
        }
    )
    return bundle


def _no_request(bundle: dict[str, Any]) -> dict[str, Any]:
    del bundle["entry"][1]["request"]
    return bundle


def _two_sets(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"].append({**bundle["entry"][0], "fullUrl": mhd.urn()})
    return bundle


def _same_full_url(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][2]["fullUrl"] = bundle["entry"][1]["fullUrl"]
    return bundle


def _bad_base64(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][2]["resource"]["data"] = "@@@"
    return bundle


def _relates_elsewhere(bundle: dict[str, Any]) -> dict[str, Any]:
    bundle["entry"][1]["resource"]["relatesTo"] = [
        {"code": "replaces", "target": {"reference": "https://x.example/DocumentReference/1"}}
    ]
    return bundle


def _stray_update(bundle: dict[str, Any]) -> dict[str, Any]:
    update = {
        **bundle["entry"][1],
        "request": {
            "method": "PUT",
            "url": "DocumentReference/0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
        },
    }
    bundle["entry"].append(update)
    return bundle


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        (lambda b: _without(b, "DocumentReference"), 400, None),
        (lambda b: _without(b, "List"), 400, None),
        (lambda b: _without(b, "Binary"), 400, "UnresolvedReferenceException"),
        (_observation, 400, None),
        (_no_request, 400, None),
        (_two_sets, 400, None),
        (_same_full_url, 400, None),
        (_bad_base64, 400, None),
        (_relates_elsewhere, 400, "UnresolvedReferenceException"),
        (_stray_update, 400, None),
    ],
)
def test_malformed_bundles(change: Any, status: int, code: str | None) -> None:
    error = refused(change(mhd.provide_bundle([mhd.Document(b"a")])))
    assert error.status == status
    assert error.xds_codes == ((code,) if code else ())


def test_values_that_do_not_map_are_422_metadata_errors() -> None:
    bundle = mhd.provide_bundle([mhd.Document(b"a")])
    bundle["entry"][1]["resource"]["type"] = {"coding": [{"code": "18842-5"}]}  # no system
    error = refused(bundle)
    assert (error.status, error.xds_codes) == (422, ("XDSRepositoryMetadataError",))
    bundle = mhd.provide_bundle([mhd.Document(b"a")])
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["creation"] = "2024-03-01T10:00:00"
    assert refused(bundle).status == 422


def test_a_replacement_names_the_replaced_entry() -> None:
    bundle = mhd.provide_bundle([mhd.Document(b"a")])
    target = "0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b"
    bundle["entry"][1]["resource"]["relatesTo"] = [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{target}"}}
    ]
    [rplc] = [a for a in mapped(bundle).submission.associations if a.association_type == v.RPLC]
    assert rplc.target_object == f"urn:uuid:{target}"
