"""Start a gateway (or the test echo gateway) as a separate process on ephemeral ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class GatewayProcess:
    """A gateway in its own process; ``port`` is known once it prints its listening line."""

    def __init__(self, module: str, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.env = {
            **os.environ,
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"{module} did not start: {err}")
        info = json.loads(line)
        self.host, self.port = info["host"], int(info["port"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/health"), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("gateway never became healthy")

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream:
                    stream.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident set size (or VmHWM, the peak) of a process in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@contextmanager
def sigint_at_default() -> Iterator[None]:
    """Start children inside this block with SIGINT at its default action, as an interactive
    shell starts a command, so a test can interrupt them like Ctrl-C does.

    A process whose SIGINT is *ignored* (a background job of a non-interactive shell, ``nohup``,
    some CI runners) hands that disposition down to every child (POSIX exec keeps SIG_IGN), and
    Python then installs no KeyboardInterrupt handler in the child: a SIGINT the test sends is
    silently dropped. Call from the main thread (``signal.signal`` requires it).
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # exec resets it to SIG_DFL
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
