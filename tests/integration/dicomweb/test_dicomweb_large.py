"""A 2 GB study goes in by STOW-RS and out by WADO-RS without being held in memory (slow).

Four multi-frame instances of 512 MiB are written to disk, POSTed one per request from a file
stream, and retrieved as one multipart answer read in 1 MiB pieces. The gateway runs in this
process, so this process's resident set (``VmRSS``) is sampled during each transfer: its peak
must stay far below the study's size. The bytes must come back unchanged.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.app import Gateway
from gateway.imaging import synthetic
from tests.integration.dicomweb.conftest import root

FRAMES = 1024  # 512 x 512 x 16 bit = 512 MiB per instance
COUNT = 4
LIMIT_MIB = 300  # far below the 2048 MiB of the study


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class _Peak:
    def __init__(self) -> None:
        self.start = _rss_mib()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _rss_mib())

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak - self.start


def _body(path: Path) -> Iterator[bytes]:
    yield b"--big\r\nContent-Type: application/dicom\r\n\r\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            yield chunk
    yield b"\r\n--big--\r\n"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


@pytest.mark.slow
def test_two_gigabyte_study_streams_in_and_out(gateway: Gateway, tmp_path: Path) -> None:
    spec = synthetic.StudySpec(patient_id="PAT-BIG")
    files = [tmp_path / f"{n}.dcm" for n in range(COUNT)]
    for path in files:
        synthetic.write_multiframe(spec, path, frames=FRAMES)
    sent = {_digest(p) for p in files}
    peak = _Peak()
    for path in files:
        answer = requests.post(
            root(gateway) + "/studies",
            data=_body(path),
            headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=big'},
            timeout=600,
        )
        assert answer.status_code == 200, answer.text
        path.unlink()
    grown_in = peak.stop()
    peak = _Peak()
    received: set[str] = set()
    with requests.get(
        f"{root(gateway)}/studies/{spec.study_uid}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        stream=True,
        timeout=600,
    ) as answer:
        assert answer.status_code == 200
        received = _digests_of_parts(answer)
    grown_out = peak.stop()
    assert received == sent
    assert grown_in < LIMIT_MIB, f"STOW-RS grew the process by {grown_in:.0f} MiB"
    assert grown_out < LIMIT_MIB, f"WADO-RS grew the process by {grown_out:.0f} MiB"


def _digests_of_parts(answer: requests.Response) -> set[str]:
    """SHA-256 of each part's body, reading the stream in pieces (the delimiter found across
    piece edges), never holding a part."""
    boundary = answer.headers["Content-Type"].split("boundary=")[1].strip('"')
    delimiter = f"\r\n--{boundary}".encode()
    digests: set[str] = set()
    buffer = b"\r\n"
    sha: hashlib._Hash | None = None
    for chunk in answer.iter_content(1 << 20):
        buffer += chunk
        while True:
            at = buffer.find(delimiter)
            if at < 0:
                keep = len(delimiter)
                if sha is not None and len(buffer) > keep:
                    sha.update(buffer[:-keep])
                    buffer = buffer[-keep:]
                break
            if sha is not None:
                sha.update(buffer[:at])
                digests.add(sha.hexdigest())
            head_end = buffer.find(b"\r\n\r\n", at)
            if head_end < 0:
                break  # the part's headers continue in the next piece
            sha = hashlib.sha256()
            buffer = buffer[head_end + 4 :]
    return digests
