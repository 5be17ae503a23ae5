"""Fixtures of the exchange browser tests: a whole gateway on 127.0.0.1:0 with a study of two
series (one of 20 CT instances made here with pydicom, each image different) published, and
headless Chromium (Debian ``chromium`` + ``chromium-driver``) driven by selenium."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from tests.support.waiting import published, wait_for

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTEFACTS = Path(__file__).resolve().parents[2] / "output" / "ui"


def start_gateway(tmp_path: Path, **environ: str) -> Gateway:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
            **environ,
        }
    )
    gw = Gateway(settings)
    gw.start()
    return gw


def feed(gw: Gateway, patient: str, family: str = "Doe", given: str = "Jane") -> str:
    """ITI-8: make the patient known to the registry; returns its CX."""
    message = "\r".join(
        [
            "MSH|^~\\&|TEST|TEST|XDSI|XDSI|20240101000000||ADT^A01^ADT_A01|"
            f"{uuid.uuid4().hex[:20]}|P|2.5",
            "EVN|A01|20240101000000",
            f"PID|||{patient}^^^&{DOMAIN}&ISO||{family}^{given}||19700101|F",
            "PV1||O",
        ]
    ).encode()
    assert gw.mllp_address is not None
    [ack] = send_messages(*gw.mllp_address, [message], timeout=30)
    assert b"MSA|AA" in ack
    return f"{patient}^^^&{DOMAIN}&ISO"


def ct_series(folder: Path, spec: synthetic.StudySpec, count: int = 20) -> list[str]:
    """A CT series of ``count`` 64x64 instances, each with a bright disc at another place (so
    that every image differs), written to ``folder``; returns the SOP Instance UIDs in order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    uids = []
    yy, xx = np.mgrid[0:64, 0:64]
    for number in range(1, count + 1):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        sop = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop
        ds.PatientID, ds.PatientName = spec.patient_id, spec.patient_name
        ds.IssuerOfPatientID = spec.issuer_of_patient_id
        ds.PatientBirthDate, ds.PatientSex = spec.birth_date, spec.sex
        ds.StudyInstanceUID, ds.SeriesInstanceUID = spec.study_uid, series_uid
        ds.StudyDate, ds.StudyTime = spec.study_date, spec.study_time
        ds.AccessionNumber, ds.StudyID = spec.accession_number, "1"
        ds.StudyDescription = spec.study_description
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 2, number
        ds.Rows = ds.Columns = 64
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.WindowCenter, ds.WindowWidth = 1024, 2048
        cy, cx = 8 + (number * 47) % 48, 8 + (number * 3) % 48
        pixels = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < 40, 2000, 100).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"ct{number:03d}.dcm", enforce_file_format=True)
        uids.append(sop)
    return uids


def publish_study(gw: Gateway, folder: Path, patient: str, *, ct: int = 20) -> str:
    """A study of a 2-instance CR series (synthetic) and a ``ct``-instance CT series, published."""
    spec = synthetic.StudySpec(
        patient_id=patient,
        issuer_oid=DOMAIN,
        series=(synthetic.SeriesSpec(modality="CR", count=2, rows=32, columns=32),),
    )
    synthetic.write_study(synthetic.make_study(spec), folder)
    if ct:
        ct_series(folder / "ct", spec, ct)
    assert gw.imaging is not None
    report = gw.imaging.load_directory(folder)
    assert not report.rejected
    wait_for(lambda: published(gw, spec.study_uid), timeout=120)
    return spec.study_uid


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver (the Debian packages), browser logs kept."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs the Debian packages chromium and chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={Path('/tmp') / ('ui-chromium-' + uuid.uuid4().hex)}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def artefacts() -> Path:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    return ARTEFACTS


def copy_to_docs(shot: Path, name: str) -> None:
    """Refresh the README's screenshot ``docs/NAME`` when ``UI_DOCS_SCREENSHOTS=1`` (not on
    every run: a test run should leave the working tree as it was)."""
    if os.environ.get("UI_DOCS_SCREENSHOTS") != "1":
        return
    docs = Path(__file__).resolve().parents[3] / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copyfile(shot, docs / name)
