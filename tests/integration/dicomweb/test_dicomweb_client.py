"""Acceptance 1: the third-party ``dicomweb-client`` library against the gateway's /dicomweb.

Studies go in by the imaging source's ingest (the C-STORE path) and by STOW-RS; QIDO-RS finds
them by patient, date range and modality; WADO-RS returns every instance byte for byte (or, where
a compressed instance is converted to the default Explicit VR Little Endian, pixel for pixel),
their metadata with bulk data by reference, frames and rendered images; a study stored by STOW-RS
is found by QIDO-RS and published to the registry as a KOS that carries the WADO-RS Retrieve URL.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, RLELossless
from requests_toolbelt.multipart.decoder import MultipartDecoder

from gateway.app import Gateway
from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import feed, load, published, root, wait_for
from tests.support import compressed

A = synthetic.StudySpec(
    patient_id="PAT-A",
    patient_name="Alpha^Anna",
    study_date="20240102",
    accession_number="ACC-A",
    series=(
        synthetic.SeriesSpec(modality="CT", count=3),
        synthetic.SeriesSpec(modality="MR", count=2),
    ),
)
B = synthetic.StudySpec(
    patient_id="PAT-B",
    patient_name="Beta^Bob",
    study_date="20230505",
    accession_number="ACC-B",
    series=(synthetic.SeriesSpec(modality="CR", count=2),),
)


@pytest.fixture
def client(gateway: Gateway, tmp_path: Path) -> DICOMwebClient:
    load(gateway, tmp_path / "a", A)
    load(gateway, tmp_path / "b", B)
    return DICOMwebClient(root(gateway))


def _uids(results: list[dict]) -> set[str]:
    return {r["0020000D"]["Value"][0] for r in results}


def test_search_for_studies_by_patient_date_and_modality(client: DICOMwebClient) -> None:
    [found] = client.search_for_studies(search_filters={"PatientID": "PAT-A"})
    assert found["0020000D"]["Value"] == [A.study_uid]
    assert found["00100010"]["Value"] == [{"Alphabetic": "Alpha^Anna"}]
    assert found["00080061"]["Value"] == ["CT", "MR"]
    assert found["00201206"]["Value"] == [2] and found["00201208"]["Value"] == [5]
    assert found["00081190"]["Value"][0].endswith(f"/dicomweb/studies/{A.study_uid}")
    in_2024 = client.search_for_studies(search_filters={"StudyDate": "20240101-20241231"})
    assert _uids(in_2024) == {A.study_uid}
    assert _uids(client.search_for_studies(search_filters={"StudyDate": "-20231231"})) == {
        B.study_uid
    }
    assert _uids(client.search_for_studies(search_filters={"ModalitiesInStudy": "CR"})) == {
        B.study_uid
    }
    assert _uids(client.search_for_studies(search_filters={"PatientName": "alpha*"})) == {
        A.study_uid
    }
    assert client.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []
    assert len(client.search_for_studies(limit=1)) == 1


def test_search_for_series_and_instances(client: DICOMwebClient) -> None:
    series = client.search_for_series(A.study_uid)
    counts = sorted((s["00080060"]["Value"][0], s["00201209"]["Value"][0]) for s in series)
    assert counts == [("CT", 3), ("MR", 2)]
    ct = next(s for s in series if s["00080060"]["Value"] == ["CT"])
    series_uid = ct["0020000E"]["Value"][0]
    instances = client.search_for_instances(A.study_uid, series_uid)
    assert sorted(i["00200013"]["Value"][0] for i in instances) == [1, 2, 3]
    assert {i["00280010"]["Value"][0] for i in instances} == {16}
    everywhere = client.search_for_instances(search_filters={"Modality": "MR"})
    assert len(everywhere) == 2


def _stored(tmp_path: Path, name: str) -> dict[str, bytes]:
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes()
        for p in (tmp_path / name).rglob("*.dcm")
    }


def test_retrieve_study_is_byte_identical(
    gateway: Gateway, client: DICOMwebClient, tmp_path: Path
) -> None:
    sent = _stored(tmp_path, "a")
    datasets = client.retrieve_study(A.study_uid)
    assert {str(ds.SOPInstanceUID) for ds in datasets} == set(sent)
    # the same bytes, read by an independent MIME decoder
    answer = requests.get(
        f"{root(gateway)}/studies/{A.study_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"'},
        timeout=30,
    )
    parts = MultipartDecoder(answer.content, answer.headers["Content-Type"]).parts
    assert len(parts) == 5
    for part in parts:
        assert part.headers[b"Content-Type"].endswith(
            f"transfer-syntax={ExplicitVRLittleEndian}".encode()
        )
        uid = str(pydicom.dcmread(io.BytesIO(part.content), stop_before_pixels=True).SOPInstanceUID)
        assert part.content == sent[uid]


def test_metadata_frames_and_rendered(client: DICOMwebClient, tmp_path: Path) -> None:
    sent = _stored(tmp_path, "a")
    [ct] = [s for s in client.search_for_series(A.study_uid) if s["00080060"]["Value"] == ["CT"]]
    series_uid = ct["0020000E"]["Value"][0]
    metadata = client.retrieve_series_metadata(A.study_uid, series_uid)
    assert len(metadata) == 3
    first = metadata[0]
    sop_uid = first["00080018"]["Value"][0]
    original = pydicom.dcmread(io.BytesIO(sent[sop_uid]))
    assert first["00100020"]["Value"] == ["PAT-A"]
    assert first["00280010"]["Value"] == [16]
    pixel_uri = first["7FE00010"]["BulkDataURI"]
    assert pixel_uri.endswith(f"/instances/{sop_uid}/bulkdata/7FE00010")
    assert client.retrieve_bulkdata(pixel_uri) == [original.PixelData]
    [frame] = client.retrieve_instance_frames(A.study_uid, series_uid, sop_uid, frame_numbers=[1])
    assert frame == original.PixelData
    jpeg = client.retrieve_instance_rendered(A.study_uid, series_uid, sop_uid)
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (16, 16)
    png = client.retrieve_instance_rendered(
        A.study_uid,
        series_uid,
        sop_uid,
        media_types=("image/png",),
        params={"viewport": "64,64", "window": "100,200,linear"},
    )
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (64, 64)


def test_compressed_study_converted_or_as_stored(gateway: Gateway, tmp_path: Path) -> None:
    pairs = compressed.study_files(tmp_path / "c", [("CT", JPEGLSLossless), ("CT", RLELossless)])
    report = gateway.imaging.load_directory(tmp_path / "c" / "compressed")
    assert not report.rejected and len(report.stored) == 4
    study_uid = report.studies[0]
    by_uid = {
        str(pydicom.dcmread(c, stop_before_pixels=True).SOPInstanceUID): (plain, c)
        for plain, c in pairs
    }
    client = DICOMwebClient(root(gateway))
    for ds in client.retrieve_study(study_uid):  # default: Explicit VR Little Endian
        plain, _ = by_uid[str(ds.SOPInstanceUID)]
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert np.array_equal(ds.pixel_array, compressed.pixels(plain))
    answer = requests.get(
        f"{root(gateway)}/studies/{study_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=30,
    )
    parts = MultipartDecoder(answer.content, answer.headers["Content-Type"]).parts
    for part in parts:
        uid = str(pydicom.dcmread(io.BytesIO(part.content), stop_before_pixels=True).SOPInstanceUID)
        assert part.content == by_uid[uid][1].read_bytes()  # as stored, byte for byte
    # frames of a JPEG-LS instance in their own media type, as stored
    jls = next(
        c for _, c in pairs if pydicom.dcmread(c).file_meta.TransferSyntaxUID == JPEGLSLossless
    )
    ds = pydicom.dcmread(jls)
    [frame] = client.retrieve_instance_frames(
        study_uid,
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        frame_numbers=[1],
        media_types=(("image/jls", JPEGLSLossless),),
    )
    assert frame == next(generate_frames(ds.PixelData, number_of_frames=1))
    rendered = client.retrieve_instance_rendered(
        study_uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)
    )
    assert Image.open(io.BytesIO(rendered)).size == (64, 64)


def test_store_instances_then_found_and_published(gateway: Gateway, tmp_path: Path) -> None:
    spec = synthetic.StudySpec(patient_id="PAT-S", accession_number="ACC-S")
    sent = synthetic.make_study(spec)
    client = DICOMwebClient(root(gateway))
    answer = client.store_instances(sent)
    assert len(answer.ReferencedSOPSequence) == 3
    assert "FailedSOPSequence" not in answer
    [found] = client.search_for_studies(search_filters={"AccessionNumber": "ACC-S"})
    assert found["00201208"]["Value"] == [3]
    for ds in client.retrieve_study(spec.study_uid):
        original = next(x for x in sent if x.SOPInstanceUID == ds.SOPInstanceUID)
        assert ds.PixelData == original.PixelData and ds.PatientID == "PAT-S"
    feed(gateway, "PAT-S")
    wait_for(lambda: published(gateway, spec.study_uid))
    study = gateway.imaging.index.study(spec.study_uid)
    pending_kos = study.manifest_sop_instance_uid
    assert pending_kos  # a KOS was registered for the study stored by STOW-RS
