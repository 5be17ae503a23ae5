"""`xdsi-gateway serve` as users run it: all actors up, /health ready, owner-only files, exit 0."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def _wait_ready(url: str) -> dict[str, object]:
    """/health answers 503 while actors start (the listener is bound first): poll to a deadline."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def test_serve_starts_every_actor_writes_owner_only_files_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {
        **os.environ,
        "XDSI_GATEWAY_DATA_DIR": str(data),
        "XDSI_HTTP_PORT": "0",
        "XDSI_HL7_MLLP_PORT": "0",
        "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        umask=0o022,
    )
    try:
        port = None
        assert proc.stderr is not None
        for line in proc.stderr:
            found = re.search(r"HTTP listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
                break
        assert port, "serve never said where it listens"
        health = _wait_ready(f"http://127.0.0.1:{port}/health")
        assert health["status"] == "ready"
        assert set(health["actors"]) == {"registry", "hl7", "repository", "imaging_source"}
        written = [data, *data.rglob("*")]
        assert written
        for path in written:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
