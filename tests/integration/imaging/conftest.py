"""Imaging integration fixtures: a started imaging source (DICOM listener on 127.0.0.1:0, idle
worker) publishing to a recording repository, with its RAD-69 endpoint behind a real HTTP
server, and DICOM senders (pynetdicom with TCP_NODELAY, dcmtk storescu)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.association import Association

from gateway.imaging.source import ImagingSource
from gateway.imaging.storescp import ACCEPTED_TRANSFER_SYNTAXES, set_nodelay
from gateway.soap import transactions as tx
from gateway.soap.dispatch import Limits, SoapApplication
from gateway.soap.server import HttpServer
from tests.unit.imaging.support import (
    AE_TITLE,
    PublishWatcher,
    RecordingRepository,
    close_sources,
    make_source,
)


@dataclass(slots=True)
class Running:
    source: ImagingSource
    repository: RecordingRepository
    published: PublishWatcher
    host: str
    port: int
    rad69_url: str


def serve_rad69(source: ImagingSource, spool: Path) -> HttpServer:
    """The RAD-69 endpoint of ``source`` behind a real HTTP server on an ephemeral port."""
    app = SoapApplication(Limits(spool_dir=spool))
    endpoint = app.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
    endpoint.bind(tx.RAD_69, source.rad69_handler())
    server = HttpServer(app, host="127.0.0.1", port=0, threads=4, shutdown_timeout=5)
    server.start()
    return server


@pytest.fixture(autouse=True)
def _close_sources() -> Iterator[None]:
    """Every source a test made ends like a stopped process: its lease goes."""
    yield
    close_sources()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    repository = RecordingRepository()
    watcher = PublishWatcher()
    source = make_source(tmp_path, repository, idle=1.0, fsync=True, observers=[watcher])
    host, port = source.start()
    http = serve_rad69(source, tmp_path / "spool")
    http_host, http_port = http.address
    try:
        yield Running(
            source=source,
            repository=repository,
            published=watcher,
            host=host,
            port=port,
            rad69_url=f"http://{http_host}:{http_port}{tx.IMAGING_SOURCE_PATH}",
        )
    finally:
        http.stop()
        source.stop()


def associate(
    host: str,
    port: int,
    sop_classes: Sequence[str],
    *,
    called: str = AE_TITLE,
    syntaxes: Sequence[str] = (*ACCEPTED_TRANSFER_SYNTAXES[:3], "1.2.840.10008.1.2.4.50"),
) -> Association:
    """A pynetdicom association (TCP_NODELAY on our side too) proposing one context per SOP
    Class and transfer syntax, so every file goes in its own transfer syntax."""
    ae = AE(ae_title="TEST_SCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    for sop_class in sop_classes:
        for syntax in syntaxes:
            ae.add_requested_context(sop_class, [UID(syntax)])
    return ae.associate(
        host, port, ae_title=called, evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)]
    )


def storescu() -> str:
    found = shutil.which("storescu")
    if found is None:
        pytest.skip("dcmtk storescu is not installed (apt-get install dcmtk)")
    return found


def run_storescu(host: str, port: int, files: Sequence[Path], *options: str) -> None:
    """Send files with dcmtk's storescu (-R: only the contexts the files need; ``-xy`` to also
    propose JPEG Baseline for JPEG files). TCP_NODELAY=1 makes dcmtk switch Nagle off as we do."""
    command = [storescu(), "-aec", AE_TITLE, "-aet", "DCMTK_SCU", "-R", *options, host, str(port)]
    result = subprocess.run(
        [*command, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TCP_NODELAY": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
