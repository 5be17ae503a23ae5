"""Acceptance 7 of issue 14: David Clunie's ``dciodvfy`` reports no error (and no warning) for
the manifests of studies that real senders send: dcmtk (``storescu`` of files pydicom wrote,
``dcmsend`` of a Secondary Capture dcmtk's ``img2dcm`` made), Orthanc (C-STORE of a study it
holds, asked through its REST API) and the ``xdsi-gateway demo`` exchange, whose generated
instances are checked as well.

Standard: PS3.3 §A.35.4 (Key Object Selection Document IOD), RAD TF-3 §4.68.4.1.2.2.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset

from gateway.imaging import synthetic
from gateway.imaging.kos import KOS_SOP_CLASS_UID
from tests.integration.consumer.consumer_env import consumer_command, consumer_env
from tests.integration.imaging.conftest import Running, run_storescu, storescu
from tests.support.dciodvfy import dciodvfy, validate
from tests.support.orthanc import running_orthanc
from tests.unit.imaging.support import AE_TITLE, evidence_instances, study_spec

KO_SERIES = (
    synthetic.SeriesSpec(modality="CT", count=3, body_part="CHEST"),
    synthetic.SeriesSpec(
        modality="MR", count=2, body_part="HEAD", transfer_syntax=synthetic.ImplicitVRLittleEndian
    ),
    synthetic.SeriesSpec(
        modality="US", count=2, body_part="ABDOMEN", transfer_syntax=synthetic.JPEGBaseline8Bit
    ),
)


def dcmtk(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"dcmtk {tool} is not installed (apt-get install dcmtk)")
    return found


def published_manifest(running: Running, study_uid: str, instances: int) -> bytes:
    """The Part 10 bytes of the manifest published once ``instances`` instances arrived."""
    result = running.published.wait_for(
        lambda r: r.study_instance_uid == study_uid and r.instances == instances
    )
    assert result.outcome == "published", result
    [published] = [
        p for p in running.repository.received if p.kos.SOPInstanceUID == result.manifest_uid
    ]
    return published.content


def assert_valid(data: bytes) -> None:
    report = validate(data)
    assert report.errors == [] and report.warnings == [], report.text


def bitmap(path: Path, size: int = 16) -> Path:
    """A 24-bit BMP (what img2dcm reads): a colour ramp, rows bottom-up, 4-byte aligned."""
    pixels = b"".join(
        bytes(v for x in range(size) for v in ((x * 16) % 256, (y * 16) % 256, 128))
        for y in range(size)
    )
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, size, size, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    path.write_bytes(header + info + pixels)
    return path


def img2dcm(folder: Path, header: Dataset) -> Path:
    """A Secondary Capture made by dcmtk from a bitmap, in the study of ``header``."""
    keys = {
        "PatientName": str(header.PatientName),
        "PatientID": str(header.PatientID),
        "PatientBirthDate": str(header.PatientBirthDate),
        "PatientSex": str(header.PatientSex),
        "StudyInstanceUID": str(header.StudyInstanceUID),
        "StudyDate": str(header.StudyDate),
        "StudyTime": str(header.StudyTime),
        "StudyID": str(header.StudyID),
        "AccessionNumber": str(header.AccessionNumber),
        "ReferringPhysicianName": str(header.ReferringPhysicianName),
        "Modality": "OT",
        "SeriesNumber": "9",
        "InstanceNumber": "1",
    }
    out = folder / "sc.dcm"
    options = [arg for key, value in keys.items() for arg in ("-k", f"{key}={value}")]
    command = [dcmtk("img2dcm"), "-i", "BMP", str(bitmap(folder / "in.bmp")), str(out)]
    subprocess.run([*command, *options], check=True, capture_output=True, timeout=60)
    return out


def test_manifest_of_a_study_from_dcmtk_is_valid(running: Running, tmp_path: Path) -> None:
    """storescu sends what pydicom wrote (three series, three syntaxes); dcmsend a Secondary
    Capture img2dcm made in the same study. The accession number has no issuer (the issue's
    case: the manifest had an empty Issuer of Accession Number Sequence)."""
    storescu()
    dciodvfy()
    instances = synthetic.make_study(study_spec(series=KO_SERIES, accession_issuer_oid=""))
    paths = synthetic.write_study(instances, tmp_path / "study")
    capture = img2dcm(tmp_path, instances[0])
    run_storescu(running.host, running.port, paths[:5])
    run_storescu(running.host, running.port, paths[5:], "-xy")  # propose JPEG Baseline
    subprocess.run(
        [dcmtk("dcmsend"), "-aec", AE_TITLE, running.host, str(running.port), str(capture)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    kos = published_manifest(running, str(instances[0].StudyInstanceUID), len(paths) + 1)
    assert_valid(kos)
    sc_uid = str(pydicom.dcmread(capture).SOPInstanceUID)
    listed = evidence_instances(pydicom.dcmread(io.BytesIO(kos)))
    assert set(listed) == {str(ds.SOPInstanceUID) for ds in instances} | {sc_uid}


def test_manifest_of_a_study_from_orthanc_is_valid(running: Running, tmp_path: Path) -> None:
    """Orthanc holds the study (uploaded through its REST API) and C-STOREs it to the gateway.
    The instances name their request (Request Attributes Sequence), with no accession issuer."""
    dciodvfy()
    spec = study_spec(series=KO_SERIES, accession_issuer_oid="", requested_procedure_id="RP-7")
    instances = synthetic.make_study(spec)
    paths = synthetic.write_study(instances, tmp_path / "study")
    gateway = [AE_TITLE, running.host, running.port]
    with running_orthanc(tmp_path / "orthanc", DicomModalities={"gateway": gateway}) as orthanc:
        for path in paths:
            answer = requests.post(f"{orthanc.http}/instances", data=path.read_bytes(), timeout=30)
            assert answer.status_code == 200, answer.text
        study_uid = str(instances[0].StudyInstanceUID)
        [found] = requests.post(f"{orthanc.http}/tools/lookup", data=study_uid, timeout=30).json()
        sent = requests.post(
            f"{orthanc.http}/modalities/gateway/store",
            json={"Resources": [found["ID"]], "Synchronous": True},
            timeout=120,
        )
        assert sent.status_code == 200, sent.text
    kos = published_manifest(running, study_uid, len(paths))
    assert_valid(kos)
    manifest = pydicom.dcmread(io.BytesIO(kos))
    assert set(evidence_instances(manifest)) == {str(ds.SOPInstanceUID) for ds in instances}
    assert manifest.ReferencedRequestSequence[0].RequestedProcedureID == "RP-7"


def test_manifest_and_instances_of_the_demo_are_valid(tmp_path: Path) -> None:
    """``xdsi-gateway demo --keep``: the instances it generated and sent, and the manifest the
    repository stored."""
    dciodvfy()
    result = subprocess.run(
        [*consumer_command(), "demo", "--instances", "9", "--keep"],
        env={**consumer_env(tmp_path), "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [folder] = tmp_path.glob("xdsi-demo-*")
    sent = sorted((folder / "sent").rglob("*.dcm"))
    documents = [
        p for p in (folder / "data" / "repository" / "documents").rglob("*") if p.is_file()
    ]
    assert len(sent) == 9 and len(documents) == 1
    for path in [*sent, *documents]:
        assert_valid(path.read_bytes())
    assert pydicom.dcmread(documents[0]).SOPClassUID == KOS_SOP_CLASS_UID
