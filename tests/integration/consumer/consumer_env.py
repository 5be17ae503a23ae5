"""What the consumer's integration tests share: gateways in processes, a study sent over DICOM,
the consumer command in its own process, and a counting, gating RAD-69 proxy."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

from gateway.consumer.settings import ConsumerSettings
from gateway.demo import send_files, wait_for_manifest
from gateway.imaging import synthetic
from gateway.metadata.model import DocumentEntry
from gateway.soap.transactions import IMAGING_SOURCE_PATH
from tests.integration.repository.serve_process import DOMAIN, ROOT, ServeProcess

_DICOM = re.compile(r"DICOM listener (\S+) on ([^:\s]+):(\d+)")
SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"
REPOSITORY_UID = "1.3.6.1.4.1.21367.13.40.100"


def dicom_address(process: ServeProcess) -> tuple[str, str, int]:
    """(AE title, host, port) of a gateway process's DICOM listener, from its log."""
    found = process._wait_for(_DICOM, lambda m: (m[1], m[2], int(m[3])))
    return found


def source_url(process: ServeProcess) -> str:
    return process.base + IMAGING_SOURCE_PATH


@dataclass(slots=True)
class SentStudy:
    spec: synthetic.StudySpec
    paths: list[Path]
    patient: str

    @property
    def by_uid(self) -> dict[str, bytes]:
        from pydicom import dcmread

        return {
            str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p.read_bytes()
            for p in self.paths
        }


def make_study(folder: Path, patient_local: str, counts: Sequence[int] = (10, 10, 10)) -> SentStudy:
    """A CT (explicit) / MR (implicit) / US (JPEG) study of the affinity-domain patient."""
    kinds = (
        ("CT", synthetic.ExplicitVRLittleEndian),
        ("MR", synthetic.ImplicitVRLittleEndian),
        ("US", synthetic.JPEGBaseline8Bit),
    )
    series = tuple(
        synthetic.SeriesSpec(modality=kinds[i % 3][0], count=n, transfer_syntax=kinds[i % 3][1])
        for i, n in enumerate(counts)
    )
    spec = synthetic.StudySpec(patient_id=patient_local, issuer_oid=DOMAIN, series=series)
    paths = synthetic.write_study(synthetic.make_study(spec), folder)
    return SentStudy(spec=spec, paths=paths, patient=f"{patient_local}^^^&{DOMAIN}&ISO")


def send_and_wait(
    source: ServeProcess, registry_url: str, study: SentStudy, timeout: float = 90
) -> DocumentEntry:
    """C-STORE the study to ``source`` and wait until its manifest is registered."""
    assert send_files(dicom_address(source), study.paths) == len(study.paths)
    return wait_for_manifest(
        ConsumerSettings(registry_url=registry_url), study.patient, study.spec.study_uid, timeout
    )


def consumer_command() -> list[str]:
    """The consumer's command line: ``xdsi-gateway`` once gateway/cli.py has the consumer
    commands, else the same commands from ``gateway.consumer.cli``."""
    from gateway import cli

    help_text = cli._parser().format_help()
    module = "gateway" if "fetch-study" in help_text else "gateway.consumer.cli"
    return [sys.executable, "-m", module]


def consumer_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a consumer process: nothing of the test gateways' XDSI_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env["PYTHONPATH"] = str(ROOT)
    env["XDSI_GATEWAY_DATA_DIR"] = str(tmp_path / "consumer-data")
    return env


def run_consumer(
    tmp_path: Path, *argv: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run a consumer command to completion in its own process."""
    return subprocess.run(
        [*consumer_command(), *argv],
        cwd=ROOT,
        env=consumer_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def count_rad69(process: ServeProcess) -> int:
    """RAD-69 requests a gateway process served, from its access log lines."""
    return len(re.findall(r"/xdsi/source RAD-69 ", process.log()))


@dataclass
class Rad69Proxy:
    """An HTTP proxy in front of a RAD-69 endpoint that counts requests and the instances they
    name, and can hold requests at a gate (``close()``) until ``open()``."""

    target: str
    requests: list[list[str]] = field(default_factory=list)
    waiting: threading.Event = field(default_factory=threading.Event)
    _gate: threading.Event = field(default_factory=threading.Event)
    _limit: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        proxy = self
        self._gate.set()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                proxy._hold()
                uids = re.findall(rb"DocumentUniqueId>([0-9.]+)<", body)
                with proxy._lock:
                    proxy.requests.append([u.decode() for u in uids])
                answer = requests.post(
                    proxy.target,
                    data=body,
                    headers={"Content-Type": self.headers["Content-Type"]},
                    timeout=60,
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers["Content-Type"])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                return None

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address
        return f"http://{host}:{port}{IMAGING_SOURCE_PATH}"

    def hold_after(self, count: int) -> None:
        """Let ``count`` requests through, then hold the next ones until :meth:`release`."""
        self._limit = count

    def _hold(self) -> None:
        with self._lock:
            passed = len(self.requests)
            hold = self._limit is not None and passed >= self._limit
            if hold:
                self._gate.clear()
        if hold:
            self.waiting.set()
            self._gate.wait(60)

    def release(self) -> None:
        self._limit = None
        self._gate.set()

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
