"""dcmtk's ``storescp`` as a PACS for the tests: on a free loopback port, writing what it receives
into a folder. With no transfer syntax option it accepts only the uncompressed syntaxes (Explicit
VR Little and Big Endian, Implicit VR Little Endian: dcmtk's ``+x=`` default) and refuses every
compressed one. Skips the calling test when dcmtk is not installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.orthanc import free_port

STORESCP_AET = "STORESCP"


@dataclass(frozen=True, slots=True)
class StoreScp:
    port: int
    folder: Path

    @property
    def target(self) -> str:
        """``AET@host:port`` for ``fetch-study --store-to``."""
        return f"{STORESCP_AET}@127.0.0.1:{self.port}"

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@contextmanager
def running_storescp(folder: Path, *options: str) -> Iterator[StoreScp]:
    """Start ``storescp -aet STORESCP -od folder [options] port``; stop it on exit."""
    binary = shutil.which("storescp")
    if binary is None:
        pytest.skip("dcmtk storescp is not installed (apt-get install dcmtk)")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [binary, "-aet", STORESCP_AET, "-od", str(folder), *options, str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:  # until it listens, or gives up
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    error = process.stderr.read().decode() if process.stderr else ""
                    raise RuntimeError(f"storescp did not start: {error}") from None
                time.sleep(0.05)
        yield StoreScp(port=port, folder=folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
