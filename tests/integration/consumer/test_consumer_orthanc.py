"""Acceptance 2: fetch-study into a real PACS. Orthanc (Debian package ``orthanc``) runs with its
own configuration on free loopback ports, no authentication, storage in tmp_path; the consumer
C-STOREs the study to it and Orthanc's REST API lists every instance. A second run finds them
there by C-FIND and sends nothing again."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.integration.consumer.consumer_env import (
    REPOSITORY_UID,
    SOURCE_UID,
    ServeProcess,
    count_rad69,
    make_study,
    run_consumer,
    send_and_wait,
    source_url,
)
from tests.integration.repository.serve_process import feed_patient

ORTHANC_AET = "ORTHANC"


def orthanc_binary() -> str:
    found = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    if found is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc)")
    return found


def free_port() -> int:
    # Orthanc cannot listen on port 0 and tell us the port, so a free one is picked here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Orthanc:
    process: subprocess.Popen[bytes]
    http: str
    dicom_port: int

    def instances(self) -> set[str]:
        ids = requests.get(f"{self.http}/instances", timeout=10).json()
        uids = set()
        for orthanc_id in ids:
            tags = requests.get(
                f"{self.http}/instances/{orthanc_id}/simplified-tags", timeout=10
            ).json()
            uids.add(tags["SOPInstanceUID"])
        return uids


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    binary = orthanc_binary()
    folder = tmp_path / "orthanc"
    folder.mkdir()
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "xdsi-consumer-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "Plugins": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "StableAge": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        [binary, str(folder / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    server = Orthanc(process, f"http://127.0.0.1:{http_port}", dicom_port)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{server.http}/system", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    "Orthanc did not start:\n"
                    + (folder / "orthanc.log").read_text(errors="replace")
                )
            time.sleep(0.1)  # polling Orthanc's REST API with a deadline
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(
        tmp_path / "gateway",
        env={"XDSI_IMAGING_SOURCE_ENABLED": "true", "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1"},
    )
    try:
        yield process
    finally:
        process.stop()


def test_study_is_fetched_into_orthanc_by_c_store(
    tmp_path: Path, gateway: ServeProcess, orthanc: Orthanc
) -> None:
    study = make_study(tmp_path / "sent", f"PACS-{uuid.uuid4().hex[:6]}", (8, 6, 4))
    feed_patient(gateway, study.patient)
    send_and_wait(gateway, gateway.registry_url, study)
    argv = [
        "fetch-study",
        "--patient", study.patient,
        "--store-to", f"{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}",
        "--registry", gateway.registry_url,
        "--repository", f"{REPOSITORY_UID}={gateway.repository_url}",
        "--imaging-source", f"{SOURCE_UID}={source_url(gateway)}",
        "--no-progress",
    ]  # fmt: skip
    result = run_consumer(tmp_path, *argv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 already present, 18 fetched" in result.stdout
    assert orthanc.instances() == set(study.by_uid)
    requests_before = count_rad69(gateway)

    again = run_consumer(tmp_path, *argv)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "18 already present, 0 fetched" in again.stdout
    assert count_rad69(gateway) == requests_before
