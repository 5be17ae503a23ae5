"""Acceptance 2: the gateway and Orthanc with its DICOMweb plugin, holding the same study, agree.

Orthanc (Debian ``orthanc`` and ``orthanc-dicomweb``, started on loopback ports) gets the study
through its REST API, the gateway through the imaging source's ingest. The same QIDO-RS searches
must find the same studies, series and instances, with the same values of the attributes PS3.18
Tables 10.6.3-3..5 require (Retrieve URL compared below the service root), and WADO-RS metadata
must agree attribute by attribute. Deliberate differences (README, "DICOMweb"): Orthanc also
returns study attributes in series and instance searches of one study (not required), and writes
``BulkDataURI`` without ``vr`` and leaves the Pixel Data of compressed instances out of
the metadata; the gateway returns Instance Availability (ONLINE) and the empty
required attributes Orthanc leaves out.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pydicom.datadict import tag_for_keyword
from pydicom.uid import JPEGLSLossless

from gateway.app import Gateway
from gateway.dicomweb import qido
from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import root, start_gateway
from tests.support import compressed
from tests.support.orthanc import Orthanc, running_orthanc

PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SPEC = synthetic.StudySpec(
    patient_id="PAT-O",
    patient_name="Orthanc^Olga",
    study_date="20240315",
    accession_number="ACC-O",
    requested_procedure_id="RP-1",
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Orthanc, str]]:
    if not PLUGIN.exists():
        pytest.skip("orthanc-dicomweb is not installed (apt-get install orthanc-dicomweb)")
    tmp = tmp_path_factory.mktemp("orthanc")
    pairs = compressed.study_files(
        tmp / "study", [("CT", "1.2.840.10008.1.2.1"), ("MR", JPEGLSLossless)], spec=SPEC
    )
    files = [plain for plain, _ in pairs[:2]] + [c for _, c in pairs[2:]]
    gw = start_gateway(tmp)
    try:
        for path in files:
            gw.imaging.ingest.store_file(path)
        settings = {"Plugins": [str(PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
        with running_orthanc(tmp / "orthanc", **settings) as orthanc:
            for path in files:
                requests.post(f"{orthanc.http}/instances", data=path.read_bytes(), timeout=30)
            yield gw, orthanc, f"{orthanc.http}/dicom-web"
    finally:
        gw.stop()


def _get(url: str) -> list[dict[str, Any]]:
    answer = requests.get(url, headers={"Accept": "application/dicom+json"}, timeout=30)
    assert answer.status_code in (200, 204), answer.text
    return answer.json() if answer.status_code == 200 else []


def _key(item: dict[str, Any]) -> str:
    for tag in ("00080018", "0020000E", "0020000D"):
        if tag in item:
            return str(item[tag]["Value"][0])
    raise AssertionError(item)


def _same_required(ours: dict[str, Any], theirs: dict[str, Any], fields: tuple[str, ...]) -> None:
    for keyword in fields:
        tag = f"{tag_for_keyword(keyword):08X}"
        if "Value" not in theirs.get(tag, {}):
            continue  # Orthanc leaves out empty values and Instance Availability
        assert tag in ours, f"{keyword} missing"
        if keyword == "RetrieveURL":
            mine = ours[tag]["Value"][0].split("/dicomweb", 1)[1]
            other = theirs[tag]["Value"][0].split("/dicom-web", 1)[1]
            assert mine == other
        else:
            assert ours[tag]["Value"] == theirs[tag]["Value"], keyword


QUERIES = [
    ("/studies?PatientID=PAT-O", qido.STUDY_FIELDS),
    ("/studies?StudyDate=20240301-20240331", qido.STUDY_FIELDS),
    ("/studies?ModalitiesInStudy=MR", qido.STUDY_FIELDS),
    ("/studies?PatientName=Orthanc*", qido.STUDY_FIELDS),
    (f"/studies/{SPEC.study_uid}/series", qido.SERIES_FIELDS),
    (f"/studies/{SPEC.study_uid}/series?Modality=CT", qido.SERIES_FIELDS),
    (f"/studies/{SPEC.study_uid}/instances", qido.INSTANCE_FIELDS),
]


@pytest.mark.parametrize(("query", "fields"), QUERIES)
def test_qido_answers_agree(
    both: tuple[Gateway, Orthanc, str], query: str, fields: tuple[str, ...]
) -> None:
    gw, _, theirs_root = both
    ours = {_key(item): item for item in _get(root(gw) + query)}
    theirs = {_key(item): item for item in _get(theirs_root + query)}
    assert set(ours) == set(theirs) and ours
    for key, item in theirs.items():
        _same_required(ours[key], item, fields)


def test_wado_rs_metadata_agrees_attribute_by_attribute(
    both: tuple[Gateway, Orthanc, str],
) -> None:
    gw, _, theirs_root = both
    path = f"/studies/{SPEC.study_uid}/metadata"
    ours = {_key(item): item for item in _get(root(gw) + path)}
    theirs = {_key(item): item for item in _get(theirs_root + path)}
    assert set(ours) == set(theirs) and len(ours) == 4
    for uid, other in theirs.items():
        mine = ours[uid]
        # Orthanc 1.7 leaves the Pixel Data of compressed instances out of the metadata; the
        # gateway names them by BulkDataURI, as PS3.18 §F.2.6 asks (a deliberate difference)
        assert set(mine) - set(other) <= {"7FE00010"} and set(other) <= set(mine), uid
        for tag, element in other.items():
            if "BulkDataURI" in element:  # URLs of two servers; we also say the VR
                assert "BulkDataURI" in mine[tag], tag
                continue
            assert mine[tag] == element, f"{uid} {tag}"
