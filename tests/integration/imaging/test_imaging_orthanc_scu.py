"""Orthanc (a real PACS, DCMTK inside) as the C-STORE SCU of the imaging source: a study uploaded
to Orthanc over its REST API is pushed to the listener with ``/modalities/{id}/store``, in one
association, uncompressed and JPEG-LS; every instance lands as sent.

Standard: DICOM PS3.4 Annex B (Storage), PS3.8 §9.3.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pydicom
import pytest
import requests

from gateway.imaging import synthetic
from gateway.imaging.storescp import UNCOMPRESSED_TRANSFER_SYNTAXES
from tests.integration.imaging.conftest import Running
from tests.support.orthanc import running_orthanc
from tests.unit.imaging.support import AE_TITLE, study_spec


def upload(http: str, paths: list[Path]) -> list[str]:
    """Orthanc instance ids of the uploaded files."""
    ids = []
    for path in paths:
        answer = requests.post(f"{http}/instances", data=path.read_bytes(), timeout=30)
        answer.raise_for_status()
        ids.append(answer.json()["ID"])
    return ids


@pytest.mark.parametrize("compressed", [False, True])
def test_orthanc_pushes_a_study_to_the_listener(
    running: Running, tmp_path: Path, compressed: bool
) -> None:
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=6),))
    )
    paths = synthetic.write_study(instances, tmp_path / "study")
    if compressed:
        encoder = shutil.which("dcmcjpls")
        if encoder is None:
            pytest.skip("dcmtk dcmcjpls is not installed (apt-get install dcmtk)")
        for path in paths:
            subprocess.run([encoder, str(path), str(path)], check=True)
    modality = [AE_TITLE, running.host, running.port]
    with running_orthanc(tmp_path / "orthanc", DicomModalities={"xdsi": modality}) as orthanc:
        ids = upload(orthanc.http, paths)
        answer = requests.post(
            f"{orthanc.http}/modalities/xdsi/store",
            json={"Resources": ids, "Synchronous": True},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        report = answer.json()
        assert report.get("FailedInstancesCount", 0) == 0, report
    for path in paths:
        sent = pydicom.dcmread(path, stop_before_pixels=True)
        record = running.source.index.instance(str(sent.SOPInstanceUID))
        assert record is not None
        kept = running.source.store.path(record.path).read_bytes()
        stored = pydicom.dcmread(running.source.store.path(record.path), stop_before_pixels=True)
        kept_syntax = str(stored.file_meta.TransferSyntaxUID)
        if kept_syntax == str(sent.file_meta.TransferSyntaxUID):
            assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(path.read_bytes())
        else:  # Orthanc decompressed for the syntax negotiation chose (choose_transfer_syntax)
            assert compressed and kept_syntax in UNCOMPRESSED_TRANSFER_SYNTAXES
        assert stored.SOPInstanceUID == sent.SOPInstanceUID
        assert stored.file_meta.SourceApplicationEntityTitle == "ORTHANC"
