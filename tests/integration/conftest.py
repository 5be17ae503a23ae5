"""Fixtures: an in-process gateway on 127.0.0.1:0 with the test-only echo/slow endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from tests.support import echo_gateway


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_SOAP_MEMORY_THRESHOLD": "65536",
        }
    )
    gw = Gateway(settings, configure=echo_gateway.configure)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def addr(gateway: Gateway) -> tuple[str, int]:
    return gateway.http.address
