"""The registry client: GetDocuments request and answer, in-process wrapping, error mapping."""

from __future__ import annotations

import pytest
from lxml import etree

from gateway.errors import (
    XDSError,
    XDSExtraMetadataNotSaved,
    XDSRegistryNotAvailable,
    XDSUnknownPatientId,
)
from gateway.metadata.ebrim import build_registry_object_list, build_submit_objects_request
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.retrieve import Status, build_registry_response, response_status
from gateway.repository.registry_client import (
    GET_DOCUMENTS,
    InProcessRegistryClient,
    SoapRegistryClient,
    get_documents_request,
    model_register,
    registered_in,
)
from gateway.soap import ns
from gateway.soap.client import SoapClient, SoapFaultError, SoapTransportError
from gateway.soap.transactions import ITI_18
from tests.factories import make_submission

UID = "1.2.3.4"
REPO = "1.3.6.1.4.1.21367.13.40.100"


def query_response(*entries: DocumentEntry, status: str = Status.SUCCESS) -> etree._Element:
    response = etree.Element(ITI_18.response_qname, nsmap={"query": ns.QUERY})
    response.set("status", status)
    if entries:
        response.append(build_registry_object_list(entries))
    return response


def entry(uid: str = UID, repository: str | None = REPO) -> DocumentEntry:
    return DocumentEntry(
        entry_uuid="urn:uuid:4b8e6a4e-6c7e-4d0e-9f65-2a3c1b7e9d10",
        unique_id=uid,
        repository_unique_id=repository,
    )


def test_get_documents_request() -> None:
    request = get_documents_request("1.2'3")
    assert request.tag == ns.qname(ns.QUERY, "AdhocQueryRequest")
    option = request.find(ns.qname(ns.QUERY, "ResponseOption"))
    assert option is not None and option.get("returnType") == "LeafClass"
    query = request.find(ns.qname(ns.RIM, "AdhocQuery"))
    assert query is not None and query.get("id") == GET_DOCUMENTS
    slot = query.find(ns.qname(ns.RIM, "Slot"))
    assert slot is not None and slot.get("name") == "$XDSDocumentEntryUniqueId"
    assert slot.findtext(f"{ns.qname(ns.RIM, 'ValueList')}/{ns.qname(ns.RIM, 'Value')}") == (
        "('1.2''3')"
    )


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (query_response(entry()), True),
        (query_response(entry(repository=None)), True),
        (query_response(entry(repository="9.9.9")), False),
        (query_response(entry(uid="1.2.3.5")), False),
        (query_response(), False),
        (query_response(status=Status.FAILURE), None),
        (etree.Element("other"), None),
    ],
)
def test_registered_in(response: etree._Element, expected: bool | None) -> None:
    assert registered_in(response, UID, REPO) is expected


def test_response_status() -> None:
    assert response_status(build_registry_response(Status.SUCCESS)) == "Success"
    assert response_status(etree.Element("x")) == ""


def test_in_process_client_passes_the_response_through() -> None:
    answer = build_registry_response(Status.SUCCESS)
    seen: list[etree._Element] = []
    client = InProcessRegistryClient(lambda r: seen.append(r) or answer)
    request = etree.Element("request")
    assert client.register(request) is answer and seen == [request]
    assert client.is_registered(UID, REPO) is None  # no query callable: cannot ask


def test_in_process_client_turns_xds_errors_into_a_failure() -> None:
    def refuse(_request: etree._Element) -> etree._Element:
        raise XDSUnknownPatientId("who?")

    response = InProcessRegistryClient(refuse).register(etree.Element("r"))
    assert response_status(response) == "Failure"
    assert [e.get("errorCode") for e in response.iter(ns.qname(ns.RS, "RegistryError"))] == [
        "XDSUnknownPatientId"
    ]


def test_in_process_client_unknown_outcome() -> None:
    def crash(_request: etree._Element) -> etree._Element:
        raise RuntimeError("boom")

    client = InProcessRegistryClient(crash, crash)
    with pytest.raises(XDSRegistryNotAvailable):
        client.register(etree.Element("r"))
    assert client.is_registered(UID, REPO) is None


def test_in_process_query() -> None:
    asked: list[etree._Element] = []

    def query(request: etree._Element) -> etree._Element:
        asked.append(request)
        return query_response(entry())

    client = InProcessRegistryClient(lambda r: r, query)
    assert client.is_registered(UID, REPO) is True
    assert asked[0].tag == ns.qname(ns.QUERY, "AdhocQueryRequest")


@pytest.mark.parametrize(
    "failure",
    [
        SoapTransportError("refused"),
        SoapTransportError("the answer from http://127.0.0.1:9 was cut off: IncompleteRead"),
        SoapFaultError(code="{http://www.w3.org/2003/05/soap-envelope}Receiver", reason="x"),
    ],
)
def test_soap_client_maps_failures(monkeypatch: pytest.MonkeyPatch, failure: Exception) -> None:
    def fail(*_args: object, **_kwargs: object) -> None:
        raise failure

    monkeypatch.setattr(SoapClient, "call", fail)
    client = SoapRegistryClient("http://127.0.0.1:9/xds/registry", timeout=1)
    with pytest.raises(XDSRegistryNotAvailable, match=r"127\.0\.0\.1:9"):
        client.register(etree.Element("r"))
    assert client.is_registered(UID, REPO) is None


def test_model_register_adapter() -> None:
    seen: list[Submission] = []

    def register(submission: Submission) -> list[XDSError]:  # the registry's model entry point
        seen.append(submission)
        return [XDSExtraMetadataNotSaved("ignored a slot")]

    client = InProcessRegistryClient(model_register(register))
    response = client.register(build_submit_objects_request(make_submission()))
    assert response_status(response) == "Success"
    assert [e.get("errorCode") for e in response.iter(ns.qname(ns.RS, "RegistryError"))] == [
        "XDSExtraMetadataNotSaved"
    ]
    assert seen[0].document_entries[0].unique_id == make_submission().document_entries[0].unique_id

    def refuse(_submission: Submission) -> list[XDSError]:
        raise XDSUnknownPatientId("who?")

    failed = InProcessRegistryClient(model_register(refuse)).register(
        build_submit_objects_request(make_submission())
    )
    assert response_status(failed) == "Failure"
