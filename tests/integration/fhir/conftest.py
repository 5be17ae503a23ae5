"""MHD fixtures: a whole gateway (registry, repository, imaging source) with ``[mhd]`` and audit
to a file switched on, on SQLite and PostgreSQL, every listener on an ephemeral port; a patient
fed over MLLP (ITI-8); a real FHIR client (fhirclient) on its ``/fhir`` base."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fhirclient import client as fhir_client
from lxml import etree

from gateway.app import Gateway
from gateway.audit.messages import load_schema
from gateway.config import load_settings
from gateway.hl7.mllp import send_messages
from gateway.metadata.model import RegistryObject
from gateway.metadata.query import AdhocQuery
from tests.support import mhd

SCHEMA = load_schema()


def settings_env(tmp_path: Path, db_url: str, **extra: str) -> dict[str, str]:
    return {
        "XDSI_GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "XDSI_REGISTRY_DATABASE_URL": db_url,
        "XDSI_HTTP_PORT": "0",
        "XDSI_HL7_MLLP_PORT": "0",
        "XDSI_IMAGING_SOURCE_DICOM_PORT": "0",
        "XDSI_IMAGING_SOURCE_STUDY_IDLE_SECONDS": "3600",
        "XDSI_MHD_ENABLED": "true",
        "XDSI_AUDIT_ENABLED": "true",
        "XDSI_AUDIT_DESTINATIONS": f"file:{tmp_path / 'audit.log'}",
        **extra,
    }


@pytest.fixture
def start_gateway(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Gateway]]:
    """Start a gateway with extra ``XDSI_*`` settings; stopped at the end of the test."""
    started: list[Gateway] = []

    def start(**extra: str) -> Gateway:
        gw = Gateway(load_settings(environ=settings_env(tmp_path, db_url, **extra)))
        gw.start()
        started.append(gw)
        feed(gw, "PAT-1")
        return gw

    try:
        yield start
    finally:
        for gw in started:
            gw.stop()


@pytest.fixture
def gateway(start_gateway: Callable[..., Gateway]) -> Gateway:
    return start_gateway()


def feed(gw: Gateway, patient_id: str) -> None:
    """ITI-8 over MLLP: the patient becomes known to the registry."""
    address = gw.mllp_address
    assert address is not None
    [ack] = send_messages(*address, [mhd.adt_a01(patient_id, control_id=f"MSG-{patient_id}")])
    assert b"MSA|AA|" in ack


def fhir_base(gw: Gateway) -> str:
    return gw.base_url + "/fhir"


@pytest.fixture
def smart(gateway: Gateway) -> Iterator[Any]:
    """fhirclient's FHIRClient on the gateway's FHIR base."""
    client = fhir_client.FHIRClient(
        settings={"app_id": "xdsi-tests", "api_base": fhir_base(gateway)}
    )
    try:
        yield client
    finally:
        client.server.session.close()


def registry_objects(gw: Gateway, query_id: str, **slots: str) -> list[RegistryObject]:
    """An ITI-18 stored query run on the gateway's registry, in process."""
    assert gw.stored_queries is not None
    query = AdhocQuery(query_id=query_id)
    for name, value in slots.items():
        query.add(name, value)
    return gw.stored_queries.query(query)


def audit_records(
    gw: Gateway, wanted: Callable[[list[etree._Element]], bool]
) -> list[etree._Element]:
    """The audit messages of the file destination once ``wanted`` holds for them (each checked
    against the DICOM audit schema); the trail writes in the background, so this waits up to 20 s
    for it to catch up."""
    path = Path(gw.settings.audit.destinations[len("file:") :])
    deadline = time.monotonic() + 20
    while True:
        records = []
        if path.exists():
            for line in path.read_bytes().splitlines():
                if line.strip():
                    message = etree.fromstring(line[line.index(b"<?xml") :])
                    assert SCHEMA.validate(message), SCHEMA.error_log
                    records.append(message)
        if wanted(records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def with_type(records: list[etree._Element], code: str) -> list[etree._Element]:
    return [
        r
        for r in records
        if r.find("EventIdentification/EventTypeCode") is not None
        and r.find("EventIdentification/EventTypeCode").get("csd-code") == code
    ]
