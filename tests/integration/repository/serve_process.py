"""``xdsi-gateway serve`` (``python -m gateway serve``) in a subprocess, on ephemeral ports.

The ports are read back from the process's log (``HTTP listening on http://host:port`` and
``MLLP listening on host:port``), so nothing races for a port chosen in advance. Used by the
tests that need the real registry: two processes, SIGKILL recovery, the 1 GB transfer. They skip
(reason ``registry not wired into app.py yet``) while ``/xds/registry`` answers ITI-42 with
wsa:ActionNotSupported, and likewise for the repository and the ITI-8 listener.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import requests

from gateway.hl7.mllp import send_messages
from gateway.soap import ns
from gateway.soap.transactions import ITI_41, ITI_42, REGISTRY_PATH, REPOSITORY_PATH
from tests.support import rawsoap

ROOT = Path(__file__).resolve().parents[3]
_HTTP = re.compile(r"HTTP listening on (\w+)://([^:\s]+):(\d+)")
_MLLP = re.compile(r"MLLP listening on ([^:\s]+):(\d+)")
DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
T = TypeVar("T")


class ServeProcess:
    """One gateway process with its data in ``data_dir`` and its log beside it."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_HTTP_HOST": "127.0.0.1",
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_HOST": "127.0.0.1",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_IMAGING_SOURCE_ENABLED": "false",
            **(env or {}),
        }
        self.log_path = data_dir.with_name(f"{data_dir.name}-{uuid.uuid4().hex[:6]}.log")
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.base = self._wait_for(_HTTP, lambda m: f"{m[1]}://{m[2]}:{m[3]}")
        self._wait_healthy()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_for(
        self, pattern: re.Pattern[str], value: Callable[[re.Match[str]], T], timeout: float = 60
    ) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(self.log())
            if found:
                return value(found)
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)  # polling the log with a deadline
        raise TimeoutError(f"no {pattern.pattern!r} in the log:\n{self.log()}")

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"gateway not healthy:\n{self.log()}")

    @property
    def registry_url(self) -> str:
        return self.base + REGISTRY_PATH

    @property
    def repository_url(self) -> str:
        return self.base + REPOSITORY_PATH

    def mllp(self) -> tuple[str, int] | None:
        found = _MLLP.search(self.log())
        return (found[1], int(found[2])) if found else None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the gateway."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def _action_supported(host_url: str, path: str, action: str, body: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(host_url)
    answer = rawsoap.post(
        parts.hostname or "127.0.0.1",
        parts.port or 80,
        path,
        rawsoap.envelope(body, action=action),
    )
    codes = answer.fault_codes() if answer.status >= 400 else []
    return not any(code and code.endswith("ActionNotSupported") for code in codes)


def require_registry(process: ServeProcess) -> None:
    """Skip the test while the gateway's /xds/registry has no ITI-42 handler."""
    body = f'<lcm:SubmitObjectsRequest xmlns:lcm="{ns.LCM}"/>'
    if not _action_supported(process.base, REGISTRY_PATH, ITI_42.action, body):
        pytest.skip("registry not wired into app.py yet")


def require_repository(process: ServeProcess) -> None:
    """Skip the test while the gateway's /xds/repository has no ITI-41 handler."""
    body = f'<x:ProvideAndRegisterDocumentSetRequest xmlns:x="{ns.XDSB}"/>'
    if not _action_supported(process.base, REPOSITORY_PATH, ITI_41.action, body):
        pytest.skip("repository not wired into app.py yet")


def feed_patient(process: ServeProcess, patient_id: str) -> None:
    """Register a patient id with the registry process through ITI-8 (ADT^A01 over MLLP)."""
    address = process.mllp()
    if address is None:
        pytest.skip("ITI-8 listener not wired into app.py yet")
    identifier = patient_id.split("^", 1)[0]
    message = "\r".join(
        [
            "MSH|^~\\&|TEST|TEST|XDSI|XDSI|20240101000000||ADT^A01^ADT_A01|"
            f"{uuid.uuid4().hex[:20]}|P|2.5",
            "EVN|A01|20240101000000",
            f"PID|||{identifier}^^^&{DOMAIN}&ISO||Doe^Jane||19700101|F",
            "PV1||O",
        ]
    ).encode()
    [ack] = send_messages(address[0], address[1], [message], timeout=30)
    assert b"MSA|AA" in ack, ack
