"""Fixtures: a whole gateway (registry, repository, imaging source, DICOMweb) on 127.0.0.1:0 with
the WADO-RS option on (``dicomweb.public_url`` is this gateway's own ``/dicomweb``), and helpers to
put studies into it and wait for their publication."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages
from gateway.imaging import synthetic
from tests.support.waiting import published, wait_for  # noqa: F401 (used by the tests)

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


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
    # The port is known only now: the service root written into RetrieveURL and the KOS.
    root = gw.base_url + "/dicomweb"
    assert gw.dicomweb is not None and gw.imaging is not None
    gw.dicomweb.public_url = root
    config = gw.imaging.publisher.config
    gw.imaging.publisher.config = dataclasses.replace(config, wado_rs_root=root)
    return gw


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path)
    try:
        yield gw
    finally:
        gw.stop()


def root(gw: Gateway) -> str:
    return gw.base_url + "/dicomweb"


def feed(gw: Gateway, patient: str) -> None:
    """ITI-8: make the patient known to the registry (in the affinity domain)."""
    message = "\r".join(
        [
            "MSH|^~\\&|TEST|TEST|XDSI|XDSI|20240101000000||ADT^A01^ADT_A01|"
            f"{uuid.uuid4().hex[:20]}|P|2.5",
            "EVN|A01|20240101000000",
            f"PID|||{patient}^^^&{DOMAIN}&ISO||Doe^Jane||19700101|F",
            "PV1||O",
        ]
    ).encode()
    assert gw.mllp_address is not None
    [ack] = send_messages(*gw.mllp_address, [message], timeout=30)
    assert b"MSA|AA" in ack


def load(gw: Gateway, folder: Path, spec: synthetic.StudySpec) -> list[Path]:
    """Write a synthetic study to ``folder`` and import it (the same ingest as C-STORE)."""
    paths = synthetic.write_study(synthetic.make_study(spec), folder)
    assert gw.imaging is not None
    report = gw.imaging.load_directory(folder)
    assert not report.rejected
    return paths
