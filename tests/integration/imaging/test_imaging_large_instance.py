"""A 1 GiB multi-frame instance through ``xdsi-gateway serve`` with bounded memory (issue 13, 4).

The gateway runs as users run it, in its own process, all actors in one. dcmtk ``storescu`` sends
a 1 GiB multi-frame instance (written by the test one frame at a time) by C-STORE; the study is
published (RAD-68, in-process); RAD-69 returns the instance, read by the test into a spool file.
The returned file is the stored file byte for byte, and its data set is the one sent; the
server's peak resident memory (VmHWM from /proc) grows by less than 150 MiB over its resident
memory after a warm-up round of the same path with a small study. The 1 GiB files are removed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

import pytest
import requests
from lxml import etree
from pydicom.dataset import Dataset

from gateway.imaging import synthetic
from gateway.soap import mtom, ns
from gateway.soap.message import Attachment
from gateway.soap.transactions import IMAGING_SOURCE_PATH, RAD_69
from tests.integration.imaging.conftest import storescu
from tests.integration.repository.serve_process import DOMAIN, ServeProcess, feed_patient
from tests.support.process import rss_kib
from tests.support.rawsoap import envelope

MIB = 1024 * 1024
FRAMES = 2048  # 512 x 512 x 16 bit: 512 KiB a frame, 1 GiB in all
SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"  # imaging_source.unique_id's default
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_DICOM = re.compile(r"DICOM listener \S+ on ([^:\s]+):(\d+)")


def spec(patient: str) -> synthetic.StudySpec:
    return synthetic.StudySpec(patient_id=patient, issuer_oid=DOMAIN)


def send(process: ServeProcess, files: list[Path]) -> None:
    found = _DICOM.search(process.log())
    assert found, process.log()
    command = [storescu(), "-aec", "XDSI_SOURCE", "-aet", "MODALITY", found[1], found[2]]
    result = subprocess.run(
        [*command, *map(str, files)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stderr


def wait_published(process: ServeProcess, study_uid: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while f"study {study_uid} published" not in process.log():
        assert time.monotonic() < deadline, process.log()[-3000:]
        time.sleep(0.1)  # polling the log with a deadline


def rad69(process: ServeProcess, header: Dataset, spool: Path) -> Attachment:
    """RAD-69 for one instance; the instance as a file in ``spool`` (read streaming)."""
    body = (
        f'<iherad:RetrieveImagingDocumentSetRequest xmlns:iherad="{ns.IHERAD}" '
        f'xmlns:xdsb="{ns.XDSB}"><iherad:StudyRequest studyInstanceUID="{header.StudyInstanceUID}">'
        f'<iherad:SeriesRequest seriesInstanceUID="{header.SeriesInstanceUID}">'
        f"<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>{SOURCE_UID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{header.SOPInstanceUID}</xdsb:DocumentUniqueId>"
        "</xdsb:DocumentRequest></iherad:SeriesRequest></iherad:StudyRequest>"
        f"<iherad:TransferSyntaxUIDList><iherad:TransferSyntaxUID>{EXPLICIT_LE}"
        "</iherad:TransferSyntaxUID></iherad:TransferSyntaxUIDList>"
        "</iherad:RetrieveImagingDocumentSetRequest>"
    )
    response = requests.post(
        process.base + IMAGING_SOURCE_PATH,
        data=envelope(body, action=RAD_69.action),
        headers={"Content-Type": f'{ns.SOAP12_MEDIA_TYPE}; action="{RAD_69.action}"'},
        stream=True,
        timeout=600,
    )
    with response:
        assert response.status_code == 200
        message = mtom.read_multipart(
            response.raw,
            response.headers["Content-Type"],
            content_length=int(response.headers["Content-Length"]),
            spool_dir=spool,
            memory_threshold=MIB,
            max_root_bytes=MIB,
        )
    root = etree.fromstring(message.root)
    status = next(root.iter(f"{{{ns.RS}}}RegistryResponse")).get("status", "")
    assert status.endswith(":Success"), message.root[:2000]
    (attachment,) = message.attachments.values()
    return attachment


def digests(stream: BinaryIO) -> tuple[str, str]:
    """SHA-256 of the whole Part 10 file and of its data set (after the File Meta), streaming."""
    whole, data_set = hashlib.sha256(), hashlib.sha256()
    head = stream.read(64 * 1024)
    whole.update(head)
    data_set.update(head[synthetic.dataset_offset(head) :])
    while block := stream.read(MIB):
        whole.update(block)
        data_set.update(block)
    return whole.hexdigest(), data_set.hexdigest()


@pytest.mark.slow
def test_one_gibibyte_instance_by_c_store_and_rad69_with_bounded_memory(tmp_path: Path) -> None:
    storescu()
    data_dir = tmp_path / "gateway"
    spool = tmp_path / "spool"
    spool.mkdir()
    big = tmp_path / "big.dcm"
    process = ServeProcess(
        data_dir,
        env={
            "XDSI_IMAGING_SOURCE_ENABLED": "true",
            "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "1",
        },
    )
    try:
        feed_patient(process, f"BIG1^^^&{DOMAIN}&ISO")
        # Warm up the same path (C-STORE, publication, RAD-69) with a small study.
        small = synthetic.make_study(spec("BIG1"))
        send(process, synthetic.write_study(small, tmp_path / "small"))
        wait_published(process, str(small[0].StudyInstanceUID))
        rad69(process, small[0], spool).discard()
        baseline = rss_kib(process.pid)

        header = synthetic.write_multiframe(spec("BIG1"), big, frames=FRAMES)
        assert big.stat().st_size > 1024 * MIB
        with big.open("rb") as handle:
            _sent_whole, sent_data_set = digests(handle)
        send(process, [big])
        wait_published(process, str(header.StudyInstanceUID))
        returned = rad69(process, header, spool)
        peak = rss_kib(process.pid, "VmHWM")

        stored = next((data_dir / "imaging").rglob(f"{header.SOPInstanceUID}.dcm"))
        with returned.open() as handle:
            returned_whole, returned_data_set = digests(handle)
        with stored.open("rb") as handle:
            stored_whole, _ = digests(handle)
        assert returned_data_set == sent_data_set  # the data set exactly as sent
        assert returned_whole == stored_whole  # RAD-69 returns the stored file byte for byte
        # Received data sets wait in the process's own folder below .tmp/incoming (whose
        # .owners holds the lock files of live processes): no data set is left there.
        incoming = data_dir / "imaging" / ".tmp" / "incoming"
        left = [p for p in incoming.rglob("*") if p.is_file() and p.parent.name != ".owners"]
        assert left == []
        growth = (peak - baseline) / 1024
        print(f"server RSS {baseline / 1024:.0f} MiB after warm-up, peak {peak / 1024:.0f} MiB")
        assert growth < 150, f"peak RSS grew by {growth:.0f} MiB"
    finally:
        process.stop()
        big.unlink(missing_ok=True)
        shutil.rmtree(spool, ignore_errors=True)
        shutil.rmtree(data_dir, ignore_errors=True)
