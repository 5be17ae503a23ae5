"""A repository whose ``repository.registry_url`` points at a registry that cuts its answers
short (headers and part of the body, then the connection drops): the ITI-41 caller is answered
XDSRegistryNotAvailable (ITI TF-3 Table 4.2.4.1-2), and the documents follow the crash-safe
rules: served only once the registry lists them, kept unserved while that is unknown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.metadata.ebrim import build_registry_object_list
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import Status, build_registry_response, failure_body
from gateway.repository.index import CONFIRMED, UNRESOLVED
from gateway.soap import ns
from gateway.soap.client import SoapClient
from gateway.soap.envelope import build_envelope, serialize
from gateway.soap.transactions import ITI_18, ITI_41, ITI_42, ITI_43, REPOSITORY_PATH
from tests.factories import UID_ROOT
from tests.integration.repository.repo_support import (
    ISOLATED,
    REPOSITORY_UID,
    error_codes,
    provide_body,
    status_of,
    submission_with,
)
from tests.support.cutting_peer import Answer, CuttingPeer, Received

DOC = b"a document whose registration is not answered\n"


def registry_answer(listed: bool) -> Callable[[Received], Answer]:
    """A registry's whole answers: Success to ITI-42; to ITI-18 GetDocuments, the submitted
    document when ``listed`` (the registry did register it), else none."""

    def answer(request: Received) -> Answer:
        if b"SubmitObjectsRequest" in request.body:
            body = build_registry_response(Status.SUCCESS)
            action = ITI_42.response_action
        else:
            body = failure_body(ITI_18, [])
            entry = DocumentEntry(
                entry_uuid="urn:uuid:6f0b3a6e-1f7c-4e1e-9c0a-6b0d3f1e2a11",
                unique_id=uid_of(1),
                repository_unique_id=REPOSITORY_UID,
            )
            if listed:
                body.remove(body[-1])  # the empty RegistryObjectList
                body.append(build_registry_object_list([entry]))
            action = ITI_18.response_action
        payload = serialize(build_envelope(body, action=action, relates_to=None))
        return Answer(200, [("Content-Type", "application/soap+xml; charset=UTF-8")], payload)

    return answer


def uid_of(n: int) -> str:
    return f"{UID_ROOT}.77.{n}"


@pytest.fixture
def peer() -> Iterator[CuttingPeer]:
    cutting = CuttingPeer()
    try:
        yield cutting
    finally:
        cutting.stop()


def start_gateway(data_dir: Path, registry_url: str) -> Gateway:
    settings = load_settings(
        environ={
            **ISOLATED,
            "XDSI_GATEWAY_DATA_DIR": str(data_dir),
            "XDSI_REPOSITORY_ENABLED": "true",
            "XDSI_REPOSITORY_REGISTRY_URL": registry_url,
        }
    )
    gateway = Gateway(settings)
    gateway.start()
    return gateway


def provide(gateway: Gateway) -> tuple[str, list[str]]:
    body, attachments = provide_body(submission_with([DOC], prefix="77"), [DOC])
    with SoapClient(gateway.base_url + REPOSITORY_PATH, timeout=60) as client:
        answer = client.call(ITI_41, body, attachments).body
    return status_of(answer), error_codes(answer)


def retrieve_status(gateway: Gateway) -> tuple[str, list[str]]:
    body = etree.Element(ITI_43.request_qname, nsmap={"xdsb": ns.XDSB})
    request = etree.SubElement(body, ns.qname(ns.XDSB, "DocumentRequest"))
    etree.SubElement(request, ns.qname(ns.XDSB, "RepositoryUniqueId")).text = REPOSITORY_UID
    etree.SubElement(request, ns.qname(ns.XDSB, "DocumentUniqueId")).text = uid_of(1)
    with SoapClient(gateway.base_url + REPOSITORY_PATH, timeout=60) as client:
        answer = client.call(ITI_43, body)
    answer.discard_attachments()
    registry_answer_el = answer.body.find(ns.qname(ns.RS, "RegistryResponse"))
    assert registry_answer_el is not None
    return status_of(registry_answer_el), error_codes(answer.body)


@pytest.mark.parametrize("keep", ["headers", "half"])
def test_registry_answer_cut_off_gives_the_caller_registry_not_available(
    tmp_path: Path, peer: CuttingPeer, keep: str
) -> None:
    peer.answer = registry_answer(listed=False)
    peer.cut = lambda _number, size: 0 if keep == "headers" else size // 2
    gateway = start_gateway(tmp_path / "data", peer.start() + "/xds/registry")
    try:
        status, codes = provide(gateway)
        assert (status, codes) == ("Failure", ["XDSRegistryNotAvailable"])
        assert gateway.repository is not None
        row = gateway.repository.index.get(uid_of(1))
        assert row is not None and row.state == UNRESOLVED  # not served, not deleted: unknown
        assert retrieve_status(gateway) == ("Failure", ["XDSDocumentUniqueIdError"])
    finally:
        gateway.stop()
    [register, ask] = peer.received  # ITI-42, then ITI-18 GetDocuments about the document
    assert b"SubmitObjectsRequest" in register.body and b"AdhocQueryRequest" in ask.body
    assert all(r.sent >= 0 for r in peer.received)  # both answers were cut short


def test_registered_despite_the_lost_answer_is_confirmed_and_served(
    tmp_path: Path, peer: CuttingPeer
) -> None:
    peer.answer = registry_answer(listed=True)
    peer.cut = lambda number, size: size // 2 if number == 0 else None  # only the ITI-42 answer
    gateway = start_gateway(tmp_path / "data", peer.start() + "/xds/registry")
    try:
        status, codes = provide(gateway)
        assert (status, codes) == ("Failure", ["XDSRegistryNotAvailable"])  # outcome unknown
        assert gateway.repository is not None
        row = gateway.repository.index.get(uid_of(1))
        assert row is not None and row.state == CONFIRMED  # the registry lists it: served
        assert retrieve_status(gateway) == ("Success", [])
    finally:
        gateway.stop()
