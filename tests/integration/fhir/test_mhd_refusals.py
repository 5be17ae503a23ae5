"""Acceptance 4: bad ITI-65 input gets its HTTP status and an OperationOutcome (with the XDS code
in ``issue.details`` where the XDS side refused), nothing is registered and nothing is written;
and the other refusals of ``/fhir``: media types, formats, unknown resources, access rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.app import Gateway
from gateway.metadata import vocabulary as v
from tests.integration.fhir.conftest import fhir_base, registry_objects
from tests.support import mhd
from tests.support.fhir_check import check_resource

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def post(
    gw: Gateway, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(fhir_base(gw), data=data, headers=headers or FHIR_JSON, timeout=60)


def outcome(answer: requests.Response) -> dict[str, Any]:
    """The OperationOutcome of a refusal, checked by both model sets."""
    assert answer.headers["Content-Type"].startswith("application/fhir+json")
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    check_resource(body)
    return body


def xds_codes(body: dict[str, Any]) -> set[str]:
    return {
        coding["code"]
        for issue in body["issue"]
        for coding in (issue.get("details") or {}).get("coding") or []
    }


def nothing_stored(gw: Gateway) -> None:
    """No document, submission set or folder registered for the patient; no document file."""
    patient = f"'PAT-1^^^&{mhd.DOMAIN}&ISO'"
    statuses = f"('{v.STATUS_APPROVED}','{v.STATUS_DEPRECATED}')"
    everything = registry_objects(
        gw,
        v.GET_ALL,
        **{
            "$patientId": patient,
            "$XDSDocumentEntryStatus": statuses,
            "$XDSSubmissionSetStatus": statuses,
            "$XDSFolderStatus": statuses,
        },
    )
    assert everything == []
    documents = Path(gw.settings.data_dir) / "repository" / "documents"
    assert [p for p in documents.rglob("*") if p.is_file()] == []
    staging = [p for p in (Path(gw.settings.data_dir) / "repository").rglob("*.tmp")]
    assert staging == []
    assert gw.repository is not None
    assert not any(gw.repository.index.counts().values())


def _dangling(bundle: dict[str, Any]) -> None:
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["url"] = (
        "urn:uuid:00000000-0000-4000-8000-000000000000"
    )


def _unknown_patient(bundle: dict[str, Any]) -> None:
    for entry in bundle["entry"]:
        if "subject" in entry["resource"]:
            entry["resource"]["subject"] = {"reference": "Patient/NOBODY-9"}


def _batch(bundle: dict[str, Any]) -> None:
    bundle["type"] = "batch"


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], int, str | None]] = {
    "not a transaction": (_batch, 400, None),
    "dangling reference": (_dangling, 400, "UnresolvedReferenceException"),
    "unknown patient": (_unknown_patient, 422, "XDSUnknownPatientId"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_bundles_are_refused_and_nothing_is_stored(gateway: Gateway, case: str) -> None:
    change, status, code = CASES[case]
    bundle = mhd.provide_bundle([mhd.Document(b"one"), mhd.Document(b"two")], folder=True)
    change(bundle)
    answer = post(gateway, bundle)
    assert answer.status_code == status, answer.text
    body = outcome(answer)
    if code:
        assert code in xds_codes(body)
    nothing_stored(gateway)


def test_a_hash_that_disagrees_is_refused_by_the_repository(gateway: Gateway) -> None:
    good = mhd.Document(b"the right content")
    wrong = mhd.Document(b"other bytes", hash_override=mhd.sha1_b64(b"not these bytes"))
    answer = post(gateway, mhd.provide_bundle([good, wrong]))
    assert answer.status_code == 422
    body = outcome(answer)
    assert "XDSRepositoryMetadataError" in xds_codes(body)
    assert any("hash" in issue["diagnostics"] for issue in body["issue"])
    nothing_stored(gateway)


def test_malformed_json_is_400(gateway: Gateway) -> None:
    for body in (
        b'{"resourceType": "Bundle", "type": ',
        b"[1, 2]",
        b"\xff\xfe",
        b'{"a": 1, "a": 2}',
    ):
        answer = post(gateway, body)
        assert answer.status_code == 400, body
        assert outcome(answer)["issue"][0]["code"] == "structure"
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert post(gateway, deep).status_code == 400
    nothing_stored(gateway)


def test_an_oversize_body_is_413_before_it_is_read(start_gateway: Callable[..., Gateway]) -> None:
    gw = start_gateway(XDSI_MHD_MAX_BUNDLE_BYTES="4096")
    bundle = mhd.provide_bundle([mhd.Document(b"x" * 8192)])
    answer = post(gw, bundle)
    assert answer.status_code == 413
    assert "mhd.max_bundle_bytes" in outcome(answer)["issue"][0]["diagnostics"]

    def chunks() -> Any:  # no Content-Length: the limit holds while reading
        data = json.dumps(bundle).encode()
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    answer = requests.post(fhir_base(gw), data=chunks(), headers=FHIR_JSON, timeout=60)
    assert answer.status_code == 413
    nothing_stored(gw)


def test_media_types_formats_and_paths(gateway: Gateway) -> None:
    base = fhir_base(gateway)
    bundle = mhd.provide_bundle([mhd.Document(b"one")])
    xml = post(gateway, json.dumps(bundle).encode(), {"Content-Type": "application/fhir+xml"})
    assert xml.status_code == 415
    outcome(xml)
    for params, headers in (({"_format": "xml"}, {}), ({}, {"Accept": "application/fhir+xml"})):
        answer = requests.get(base + "/metadata", params=params, headers=headers, timeout=30)
        assert answer.status_code == 406
        outcome(answer)
    assert (
        requests.get(base + "/metadata", params={"_format": "json"}, timeout=30).status_code == 200
    )
    assert requests.get(base + "/Observation", timeout=30).status_code == 404
    assert requests.get(base + "/DocumentReference/not-a-uuid", timeout=30).status_code == 404
    missing = requests.get(base + "/DocumentReference", params={"status": "current"}, timeout=30)
    assert missing.status_code == 400
    assert outcome(missing)["issue"][0]["code"] == "required"
    bad_date = requests.get(
        base + "/DocumentReference", params={"patient": "PAT-1", "creation": "sa2024"}, timeout=30
    )
    assert bad_date.status_code == 400
    assert requests.delete(base + "/DocumentReference/x", timeout=30).status_code == 405
    nothing_stored(gateway)


def test_a_replacement_supersedes_the_original(gateway: Gateway) -> None:
    first = mhd.Document(b"version 1")
    answer = post(gateway, mhd.provide_bundle([first]))
    assert answer.status_code == 200, answer.text
    original = answer.json()["entry"][1]["response"]["location"]
    second = mhd.Document(b"version 2")
    bundle = mhd.provide_bundle([second])
    bundle["entry"][1]["resource"]["relatesTo"] = [
        {"code": "replaces", "target": {"reference": original}}
    ]
    update = copy.deepcopy(bundle["entry"][1])
    update["fullUrl"] = f"{fhir_base(gateway)}/{original}"
    update["request"] = {"method": "PUT", "url": original}
    update["resource"]["status"] = "superseded"
    bundle["entry"].append(update)
    replaced = post(gateway, bundle)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["entry"][-1]["response"]["status"] == "200 OK"
    old = requests.get(f"{fhir_base(gateway)}/{original}", timeout=30).json()
    check_resource(old)
    assert old["status"] == "superseded"
    new_location = replaced.json()["entry"][1]["response"]["location"]
    new = requests.get(f"{fhir_base(gateway)}/{new_location}", timeout=30).json()
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": original}}]
    gone = requests.get(old["content"][0]["attachment"]["url"], timeout=30)
    assert gone.status_code == 410  # ITI-68: a deprecated document is Gone


def test_access_rules_refuse_with_403(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[access]\ndefault = "deny"\nanonymous = ["ITI-8", "ITI-67"]\n')
    gw = start_gateway(XDSI_ACCESS_RULES_FILE=str(rules))
    refused = post(gw, mhd.provide_bundle([mhd.Document(b"one")]))
    assert refused.status_code == 403
    assert outcome(refused)["issue"][0]["code"] == "forbidden"
    allowed = requests.get(
        fhir_base(gw) + "/DocumentReference", params={"patient": "PAT-1"}, timeout=30
    )
    assert allowed.status_code == 200
    assert (
        requests.get(fhir_base(gw) + "/List", params={"patient": "PAT-1"}, timeout=30).status_code
        == 403
    )
    nothing_stored(gw)
