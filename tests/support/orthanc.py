"""A real Orthanc PACS (Debian package ``orthanc``) for the tests: its own configuration on free
loopback ports, no authentication, storage in a test folder. Skips the calling test with a reason
when Orthanc is not installed (``.ci/run`` installs it)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

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


@contextmanager
def running_orthanc(folder: Path, **settings: Any) -> Iterator[Orthanc]:
    """Start Orthanc with its data in ``folder`` (``settings`` added to its configuration, e.g.
    ``DicomModalities``); stop it on exit."""
    binary = orthanc_binary()
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "xdsi-test",
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
        **settings,
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
