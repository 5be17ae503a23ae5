"""A real Audit Record Repository for tests: rsyslogd with its GnuTLS driver, on a free port.

The test writes its own rsyslog.conf (imtcp with the gtls stream driver, mutual X.509
authentication against the domain CA, one omfile output in the test's folder) and runs
``rsyslogd -n -f CONF -i PIDFILE`` as a child process; nothing outside ``tmp_path`` is touched
and the system's rsyslog is not involved. Debian: ``apt-get install rsyslog rsyslog-gnutls``.
"""

from __future__ import annotations

import glob
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from gateway.audit import syslog

SEPARATOR = b"|"


def rsyslog_missing() -> str | None:
    """Why rsyslog cannot be used here, or None when it can."""
    if shutil.which("rsyslogd") is None:
        return "rsyslogd is not installed (Debian: apt-get install rsyslog rsyslog-gnutls)"
    if not glob.glob("/usr/lib/*/rsyslog/lmnsd_gtls.so") + glob.glob(
        "/usr/lib/rsyslog/lmnsd_gtls.so"
    ):
        return "rsyslog's GnuTLS driver is missing (Debian: apt-get install rsyslog-gnutls)"
    return None


def require_rsyslog() -> None:
    reason = rsyslog_missing()
    if reason:
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RsyslogReceiver:
    """rsyslogd listening for syslog over TLS (RFC 5425) on 127.0.0.1:``port``."""

    def __init__(
        self,
        folder: Path,
        *,
        ca: Path,
        certificate: Path,
        private_key: Path,
        port: int | None = None,
        auth_mode: str = "x509/certvalid",
    ) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.output = folder / "received.log"
        self.config = folder / "rsyslog.conf"
        self.pidfile = folder / "rsyslogd.pid"
        self.stderr = folder / "rsyslogd.stderr"
        (folder / "work").mkdir(exist_ok=True)
        self.config.write_text(
            f"""
global(
  workDirectory="{folder / "work"}"
  maxMessageSize="64k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{certificate}"
  defaultNetstreamDriverKeyFile="{private_key}"
)
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
       streamDriver.authMode="{auth_mode}")
input(type="imtcp" address="127.0.0.1" port="{self.port}")
template(name="audit" type="string" string="%pri%|%msgid%|%app-name%|%msg%\\n")
action(type="omfile" file="{self.output}" template="audit")
"""
        )
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start rsyslogd and wait until its TLS port accepts connections."""
        with open(self.stderr, "ab") as errors:
            self._process = subprocess.Popen(
                ["rsyslogd", "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                stdout=errors,
                stderr=errors,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {self.stderr.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"rsyslogd did not listen on {self.port}: {self.stderr.read_text()}")

    def stop(self) -> None:
        """Stop rsyslogd (SIGTERM, then SIGKILL) and wait for it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def records(self) -> list[tuple[str, str, str, bytes]]:
        """(PRI, MSGID, APP-NAME, MSG without BOM) of every message received so far."""
        if not self.output.exists():
            return []
        out = []
        for line in self.output.read_bytes().splitlines():
            if not line:
                continue
            pri, msgid, app, msg = line.split(SEPARATOR, 3)
            out.append((pri.decode(), msgid.decode(), app.decode(), msg.removeprefix(syslog.BOM)))
        return out

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[str, str, str, bytes]]:
        """Poll until at least ``count`` messages arrived (or the timeout); return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.records()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        return self.records()
