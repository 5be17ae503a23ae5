"""Acceptance 2: a study published by the imaging source (RAD-68 KOS manifest) appears as a
DocumentReference of format 1.2.840.10008.5.1.4.1.1.88.59 (ITI-67, ITI-68 gives the KOS as
application/dicom) and as an ImagingStudy with the study's series and instance counts, whose
Endpoint is the RAD-69 endpoint that answers for its instances; with DICOMweb enabled the
Endpoint is WADO-RS and answers WADO-RS."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import requests

from gateway.app import Gateway
from gateway.consumer.clients import ImagingSourceClient
from gateway.imaging import synthetic
from gateway.imaging.outcomes import PUBLISHED_OUTCOME
from gateway.metadata.retrieve import DocumentRequest, ImagingDocumentRequest, Status
from tests.integration.fhir.conftest import fhir_base
from tests.support import mhd
from tests.support.fhir_check import check_resource

KOS = "1.2.840.10008.5.1.4.1.1.88.59"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
COUNTS = {"CT": 4, "MR": 3, "US": 2}


def publish(gw: Gateway, folder: Path) -> tuple[synthetic.StudySpec, list[pydicom.Dataset]]:
    """A 3-series study of PAT-1, loaded into the imaging source and published now (RAD-68)."""
    spec = synthetic.StudySpec(
        patient_id="PAT-1",
        accession_number="ACC-9",
        series=tuple(synthetic.SeriesSpec(modality=m, count=n) for m, n in COUNTS.items()),
    )
    instances = synthetic.make_study(spec)
    synthetic.write_study(instances, folder)
    assert gw.imaging is not None
    gw.imaging.load_directory(folder)
    result = gw.imaging.publish_study(spec.study_uid)
    assert result.outcome == PUBLISHED_OUTCOME, result.detail
    return spec, instances


def get(url: str, **params: str) -> dict[str, Any]:
    answer = requests.get(url, params=params, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    check_resource(body)
    return body


def test_published_study_is_a_kos_document_reference(gateway: Gateway, tmp_path: Path) -> None:
    spec, _instances = publish(gateway, tmp_path / "study")
    found = get(
        fhir_base(gateway) + "/DocumentReference",
        patient="PAT-1",
        format=f"urn:oid:1.2.840.10008.2.6.1|{KOS}",
    )
    [entry] = found["entry"]
    attachment = entry["resource"]["content"][0]["attachment"]
    assert entry["resource"]["content"][0]["format"]["code"] == KOS
    assert attachment["contentType"] == "application/dicom"
    kos = requests.get(attachment["url"], timeout=60)
    assert kos.headers["Content-Type"] == "application/dicom"
    manifest = pydicom.dcmread(io.BytesIO(kos.content))
    assert (manifest.SOPClassUID, manifest.StudyInstanceUID) == (KOS, spec.study_uid)
    related = entry["resource"]["context"]["related"]
    assert {r["identifier"]["value"] for r in related} == {spec.study_uid, "ACC-9"}


def test_published_study_is_an_imaging_study(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gateway = start_gateway(XDSI_DICOMWEB_ENABLED="false")  # the Endpoint is then RAD-69's
    spec, instances = publish(gateway, tmp_path / "study")
    found = get(
        fhir_base(gateway) + "/ImagingStudy",
        **{"patient.identifier": f"urn:oid:{mhd.DOMAIN}|PAT-1"},
    )
    assert found["total"] == 1
    study = found["entry"][0]["resource"]
    assert {"system": "urn:dicom:uid", "value": f"urn:oid:{spec.study_uid}"} in study["identifier"]
    assert study["numberOfSeries"] == 3
    assert study["numberOfInstances"] == sum(COUNTS.values())
    by_modality = {s["modality"]["code"]: s for s in study["series"]}
    assert {m: s["numberOfInstances"] for m, s in by_modality.items()} == COUNTS
    expected = {str(ds.SOPInstanceUID) for ds in instances}
    assert {i["uid"] for s in study["series"] for i in s["instance"]} == expected
    assert {m["code"] for m in study["modality"]} == set(COUNTS)
    assert study["started"] == "2024-01-02T10:15:00Z"  # serviceStartTime (DTM, UTC)
    assert study["subject"]["reference"] == "Patient/PAT-1"
    [endpoint] = study["contained"]
    assert endpoint["connectionType"]["code"] == "ihe-xds"
    assert endpoint["address"] == gateway.base_url + "/xdsi/source"
    read = get(f"{fhir_base(gateway)}/ImagingStudy/{study['id']}")
    assert read["series"] == study["series"]
    # The Endpoint answers RAD-69 for the study's instances (Retrieve Location UID = its id).
    location = endpoint["identifier"][0]["value"][len("urn:oid:") :]
    first = study["series"][0]
    request = ImagingDocumentRequest(
        study_instance_uid=spec.study_uid,
        series_instance_uid=first["uid"],
        document=DocumentRequest(
            repository_unique_id=location, document_unique_id=first["instance"][0]["uid"]
        ),
    )
    answer = ImagingSourceClient(endpoint["address"]).retrieve([request], [EXPLICIT_LE])
    try:
        assert answer.status is Status.SUCCESS and len(answer.documents) == 1
    finally:
        answer.discard()
    by_uid = get(
        fhir_base(gateway) + "/ImagingStudy",
        patient="PAT-1",
        identifier=f"urn:dicom:uid|urn:oid:{spec.study_uid}",
    )
    assert by_uid["total"] == 1
    assert (
        get(fhir_base(gateway) + "/ImagingStudy", patient="PAT-1", identifier="urn:oid:1.2.3")[
            "total"
        ]
        == 0
    )


def test_imaging_study_endpoint_answers_wado_rs_when_dicomweb_is_enabled(
    start_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = start_gateway(XDSI_DICOMWEB_ENABLED="true")
    assert gw.dicomweb_root() == "/dicomweb"
    spec, _instances = publish(gw, tmp_path / "study")
    found = get(fhir_base(gw) + "/ImagingStudy", patient="PAT-1")
    [endpoint] = found["entry"][0]["resource"]["contained"]
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert endpoint["address"] == gw.base_url + "/dicomweb"
    metadata = requests.get(
        f"{endpoint['address']}/studies/{spec.study_uid}/metadata",
        headers={"Accept": "application/dicom+json"},
        timeout=60,
    )
    assert metadata.status_code == 200
    assert len(metadata.json()) == sum(COUNTS.values())
