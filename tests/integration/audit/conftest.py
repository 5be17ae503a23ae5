"""Fixtures for audit delivery tests: demo certificates and a real rsyslog receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.security.certs import DomainFiles, init_domain
from tests.integration.audit.rsyslog_receiver import RsyslogReceiver, require_rsyslog


@pytest.fixture(scope="module")
def domain(tmp_path_factory: pytest.TempPathFactory) -> DomainFiles:
    """CA, the region (runs the Audit Record Repository) and a hospital (sends records)."""
    return init_domain(tmp_path_factory.mktemp("certs"), nodes=("region", "hospital-a"))


@pytest.fixture
def receiver(tmp_path: Path, domain: DomainFiles) -> Iterator[RsyslogReceiver]:
    """An rsyslogd configured for TLS with the region's certificate; not started yet."""
    require_rsyslog()
    region = domain.nodes["region"]
    arr = RsyslogReceiver(
        tmp_path / "arr",
        ca=domain.ca_certificate,
        certificate=region.certificate,
        private_key=region.private_key,
    )
    try:
        yield arr
    finally:
        arr.stop()
