"""Fixtures: an in-process gateway on 127.0.0.1:0 with the test-only echo/slow endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from tests.support import echo_gateway


def _gateway(data_dir: Path, **extra: str) -> Iterator[Gateway]:
    settings = load_settings(
        environ={
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_HTTP_PORT": "0",
            "XDSI_HL7_MLLP_PORT": "0",
            "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
            "XDSI_SOAP_MEMORY_THRESHOLD": "65536",
            **extra,
        }
    )
    gw = Gateway(settings, configure=echo_gateway.configure)
    gw.start()
    try:
        yield gw
    finally:
        gw.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    yield from _gateway(tmp_path / "data")


@pytest.fixture
def xca_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """The same gateway with ``[xca]`` on: it also serves /xca/rg and /xca/ig."""
    yield from _gateway(
        tmp_path / "xca-data",
        XDSI_XCA_ENABLED="true",
        XDSI_XCA_HOME_COMMUNITY_ID="urn:oid:1.3.6.1.4.1.21367.13.70.99",
    )


@pytest.fixture
def addr(gateway: Gateway) -> tuple[str, int]:
    return gateway.http.address
