"""DICOM forwarding to a real dcmtk storescp (acceptance 2): every matching instance received by
C-STORE or STOW-RS is sent on, in the study's order, from the durable outbox; with the receiver
down for the first 20 seconds and the gateway restarted in between, every instance still arrives
once, in order."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.imaging import synthetic
from tests.integration.imaging.conftest import run_storescu
from tests.integration.notify.support import outbox_settles, start_gateway

STORESCP = shutil.which("storescp")
pytestmark = pytest.mark.skipif(STORESCP is None, reason="dcmtk storescp is not installed")
_STORED = re.compile(r"storing DICOM file: .*/[A-Z]{2}\.(\S+)$")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StoreScp:
    """dcmtk storescp on ``port``; :attr:`received` lists SOP Instance UIDs in arrival order
    (one per C-STORE, repeats included: its verbose log names every file it stores)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.log = folder / "storescp.log"
        folder.mkdir(parents=True, exist_ok=True)
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = folder = self.folder / "files"
        folder.mkdir(exist_ok=True)
        with open(self.log, "ab") as log:
            assert STORESCP is not None
            self._process = subprocess.Popen(
                [STORESCP, "-v", "-od", str(out), "-uf", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    @property
    def received(self) -> list[str]:
        if not self.log.exists():
            return []
        lines = self.log.read_text(errors="replace").splitlines()
        return [m.group(1) for line in lines if (m := _STORED.search(line.strip()))]

    def wait_for(self, count: int, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.received


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[StoreScp]:
    scp = StoreScp(tmp_path / "storescp", _free_port())
    yield scp
    scp.stop()


def _study(folder: Path, series: tuple[synthetic.SeriesSpec, ...]) -> tuple[list[str], list[Path]]:
    instances = synthetic.make_study(synthetic.StudySpec(series=series))
    files = synthetic.write_study(instances, folder)
    return [str(ds.SOPInstanceUID) for ds in instances], files


def _rules(port: int, **filters: str) -> str:
    return json.dumps([{"destination": f"FWD_SCP@127.0.0.1:{port}", **filters}])


@pytest.mark.slow
def test_receiver_down_20_s_and_a_restart_lose_nothing_and_keep_the_order(
    tmp_path: Path, receiver: StoreScp
) -> None:
    started = time.monotonic()
    extra = {"XDSI_IMAGING_SOURCE_FORWARD": _rules(receiver.port, modality="CT")}
    series = (
        synthetic.SeriesSpec(modality="CT", count=5),
        synthetic.SeriesSpec(modality="MR", count=2),
        synthetic.SeriesSpec(modality="CT", count=4),
    )
    uids, files = _study(tmp_path / "in", series)
    sent_order = [uid for uid, path in zip(uids, files, strict=True)]
    ct = [uid for uid, f in zip(sent_order, files, strict=True) if _modality(f) == "CT"]
    data = tmp_path / "data"
    gw = start_gateway(data, **extra)
    try:
        assert gw.imaging is not None
        run_storescu(*gw.imaging.address, files)
        time.sleep(4)  # a few failed attempts: connection refused
        assert gw.notifier is not None
        assert gw.notifier.health()["outbox"]["forward"] == {"pending": len(ct)}
    finally:
        gw.stop()
    gw = start_gateway(data, **extra)  # the restart: the queue is on the disk
    try:
        time.sleep(max(0.0, 20 - (time.monotonic() - started)))
        assert receiver.received == []
        receiver.start()  # 20 s after the first instance was sent to the gateway
        got = receiver.wait_for(len(ct), timeout=60)
        time.sleep(1)  # anything more would be a repeat
        assert receiver.received == ct  # each once, in the order the gateway received them
        assert gw.notifier is not None
        assert outbox_settles(gw, "forward", {"sent": len(ct)}) == {"sent": len(ct)}
        assert got == ct
        # byte for byte as received: storescp's copy equals the gateway's
        for uid in ct:
            stored = gw.imaging.index.instance(uid)  # type: ignore[union-attr]
            assert stored is not None
            mine = gw.imaging.store.path(stored.path).read_bytes()  # type: ignore[union-attr]
            theirs = (receiver.folder / "files" / f"CT.{uid}").read_bytes()
            assert _dataset(theirs) == _dataset(mine)
    finally:
        gw.stop()


def test_stow_rs_and_the_calling_ae_filter_reach_the_same_hook(
    tmp_path: Path, receiver: StoreScp
) -> None:
    receiver.start()
    rules = json.dumps(
        [
            {"destination": f"A@127.0.0.1:{receiver.port}", "calling_ae_title": "DCMTK_SCU"},
            {"destination": f"B@127.0.0.1:{receiver.port}", "study_description": "*knee*"},
        ]
    )
    gw = start_gateway(tmp_path / "data", XDSI_IMAGING_SOURCE_FORWARD=rules)
    try:
        assert gw.imaging is not None
        uids, files = _study(tmp_path / "a", (synthetic.SeriesSpec(modality="CT", count=2),))
        run_storescu(*gw.imaging.address, files)  # calling AE DCMTK_SCU: rule A
        knee = synthetic.make_study(
            synthetic.StudySpec(
                study_description="MR KNEE LEFT",
                series=(synthetic.SeriesSpec(modality="MR", count=1),),
            )
        )
        other = synthetic.make_study(synthetic.StudySpec(study_description="Head"))
        host, port = gw.http.address
        for instance in (*knee, *other):  # STOW-RS: no calling AE; rule B by description
            boundary = "xdsi-boundary"
            body = (
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + synthetic.encode(instance)
                + f"\r\n--{boundary}--\r\n".encode()
            )
            answer = requests.post(
                f"http://{host}:{port}/dicomweb/studies",
                data=body,
                headers={
                    "Content-Type": f'multipart/related; type="application/dicom"; '
                    f"boundary={boundary}",
                    "Accept": "application/dicom+json",
                },
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
        expected = [*uids, str(knee[0].SOPInstanceUID)]
        got = receiver.wait_for(len(expected), timeout=30)
        time.sleep(1)
        assert sorted(receiver.received) == sorted(expected)
        assert [uid for uid in got if uid in uids] == uids  # the study's order
    finally:
        gw.stop()


def _modality(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).Modality)


def _dataset(data: bytes) -> object:
    """The data set without its File Meta Information (storescp writes its own meta)."""
    import io

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.file_meta
    return ds
