"""The SOAP client against a throwaway recording WSGI server on 127.0.0.1 (ephemeral port).

The server is deliberately not the gateway's: it records the raw HTTP request and answers with a
scripted response, so the wire format of the client is checked on its own. MTOM requests are
decoded here with requests_toolbelt (independent of ``gateway.soap.mtom``).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder

from gateway.soap import ns
from gateway.soap.client import (
    ClientResponse,
    SoapClient,
    SoapConnectError,
    SoapFaultError,
    SoapProtocolError,
    SoapTransportError,
)
from gateway.soap.message import Attachment, xop_include
from gateway.soap.transactions import ITI_18, ITI_41, ITI_42, ITI_43, RAD_69, Transaction
from tests.support.cutting_peer import Answer, CuttingPeer, Received

ENV = ns.SOAP12
Q = ns.qname
Responder = Callable[["Recorded"], tuple[str, list[tuple[str, str]], bytes]]


@dataclass
class Recorded:
    """One request as the server received it."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    respond: Responder | None = None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    state = RecordingServer(url="")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = environ.get("CONTENT_LENGTH")
        body = environ["wsgi.input"].read(int(length)) if length else b""
        headers = {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        }
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        headers["content-length"] = length or ""
        recorded = Recorded(path=environ["PATH_INFO"], headers=headers, body=body)
        state.requests.append(recorded)
        assert state.respond is not None
        status, response_headers, payload = state.respond(recorded)
        start_response(status, [*response_headers, ("Content-Length", str(len(payload)))])
        return [payload]

    httpd: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# -- helpers ------------------------------------------------------------------------------------


def _envelope(body_xml: str, *, action: str, relates_to: str | None = None) -> bytes:
    relates = f"<wsa:RelatesTo>{relates_to}</wsa:RelatesTo>" if relates_to else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{ENV}" '
        f'xmlns:wsa="{ns.WSA}"><env:Header><wsa:Action env:mustUnderstand="true">{action}'
        f"</wsa:Action><wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>{relates}"
        f"</env:Header><env:Body>{body_xml}</env:Body></env:Envelope>"
    ).encode()


def _request_message_id(recorded: Recorded) -> str:
    root = _request_envelope(recorded)
    return root.findtext(f"{{{ENV}}}Header/{{{ns.WSA}}}MessageID")


def _request_envelope(recorded: Recorded) -> etree._Element:
    if recorded.headers["content-type"].startswith("multipart/related"):
        decoder = MultipartDecoder(recorded.body, recorded.headers["content-type"])
        return etree.fromstring(decoder.parts[0].content)
    return etree.fromstring(recorded.body)


def _exc_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


def _query_request() -> etree._Element:
    root = etree.Element(Q(ns.QUERY, "AdhocQueryRequest"), nsmap={"query": ns.QUERY, "rim": ns.RIM})
    etree.SubElement(
        root, Q(ns.QUERY, "ResponseOption"), returnType="ObjectRef", returnComposedObjects="true"
    )
    query = etree.SubElement(
        root, Q(ns.RIM, "AdhocQuery"), id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    )
    slot = etree.SubElement(query, Q(ns.RIM, "Slot"), name="$XDSDocumentEntryPatientId")
    values = etree.SubElement(slot, Q(ns.RIM, "ValueList"))
    etree.SubElement(
        values, Q(ns.RIM, "Value")
    ).text = "'st3498702^^^&1.3.6.1.4.1.21367.2005.3.7&ISO'"
    return root


def _plain_answer(body_xml: str, action: str) -> Responder:
    def respond(recorded: Recorded) -> tuple[str, list[tuple[str, str]], bytes]:
        payload = _envelope(body_xml, action=action, relates_to=_request_message_id(recorded))
        return (
            "200 OK",
            [("Content-Type", f'application/soap+xml; charset=UTF-8; action="{action}"')],
            payload,
        )

    return respond


REGISTRY_RESPONSE = (
    f'<rs:RegistryResponse xmlns:rs="{ns.RS}" '
    'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>'
)


# -- WS-Addressing and plain SOAP ---------------------------------------------------------------


def test_plain_request_carries_ws_addressing(server: RecordingServer, tmp_path: Path) -> None:
    answer = (
        f'<query:AdhocQueryResponse xmlns:query="{ns.QUERY}" '
        'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"/>'
    )
    server.respond = _plain_answer(answer, ITI_18.response_action)
    address = server.url + "/xds/registry"
    client = SoapClient(address, spool_dir=tmp_path)
    body = _query_request()

    response = client.call(ITI_18, body)

    (recorded,) = server.requests
    assert recorded.path == "/xds/registry"
    content_type = recorded.headers["content-type"]
    assert content_type.startswith("application/soap+xml")
    assert f'action="{ITI_18.action}"' in content_type
    root = etree.fromstring(recorded.body)
    assert root.tag == Q(ENV, "Envelope")
    header = root.find(Q(ENV, "Header"))
    wsa_headers = [h.tag for h in header if h.tag.startswith("{" + ns.WSA)]
    assert sorted(wsa_headers) == sorted(
        Q(ns.WSA, n) for n in ("Action", "MessageID", "ReplyTo", "To")
    )
    for wsa_header in header:  # ITI TF-2 Appendix V §V.3.2: mustUnderstand on WS-A headers
        assert wsa_header.get(Q(ENV, "mustUnderstand")) == "true"
    action = header.find(Q(ns.WSA, "Action"))
    assert action.text == ITI_18.action
    assert action.get(Q(ENV, "mustUnderstand")) == "true"
    to = header.find(Q(ns.WSA, "To"))
    assert to.text == address and to.get(Q(ENV, "mustUnderstand")) == "true"
    message_id = header.findtext(Q(ns.WSA, "MessageID"))
    uuid.UUID(message_id.removeprefix("urn:uuid:"))
    assert message_id.startswith("urn:uuid:")
    assert header.findtext(f"{Q(ns.WSA, 'ReplyTo')}/{Q(ns.WSA, 'Address')}") == ns.WSA_ANONYMOUS
    (sent_body,) = root.find(Q(ENV, "Body"))
    assert _exc_c14n(sent_body) == _exc_c14n(body)

    assert isinstance(response, ClientResponse)
    assert response.body.tag == ITI_18.response_qname
    assert response.action == ITI_18.response_action
    assert response.relates_to == message_id == response.request_message_id
    assert response.message_id and response.message_id != message_id
    assert response.attachments == {}


def test_message_ids_differ_per_call(server: RecordingServer, tmp_path: Path) -> None:
    server.respond = _plain_answer(REGISTRY_RESPONSE, ITI_42.response_action)
    client = SoapClient(server.url + "/xds/registry", spool_dir=tmp_path)
    body = etree.Element(Q(ns.LCM, "SubmitObjectsRequest"), nsmap={"lcm": ns.LCM})
    first = client.call(ITI_42, body)
    second = client.call(ITI_42, body)
    assert first.request_message_id != second.request_message_id
    assert [_request_message_id(r) for r in server.requests] == [
        first.request_message_id,
        second.request_message_id,
    ]


def test_wrong_body_element_is_refused(tmp_path: Path) -> None:
    client = SoapClient("http://127.0.0.1:9/xds/registry", spool_dir=tmp_path)
    with pytest.raises(ValueError, match="AdhocQueryRequest"):
        client.call(ITI_18, etree.Element(Q(ns.LCM, "SubmitObjectsRequest")))
    with pytest.raises(ValueError, match="MTOM"):
        client.call(ITI_18, _query_request(), [Attachment.from_bytes(b"x")])


# -- MTOM request -------------------------------------------------------------------------------


def _pnr_body(attachments: list[Attachment]) -> etree._Element:
    root = etree.Element(
        Q(ns.XDSB, "ProvideAndRegisterDocumentSetRequest"),
        nsmap={"xdsb": ns.XDSB, "lcm": ns.LCM, "rim": ns.RIM},
    )
    submit = etree.SubElement(root, Q(ns.LCM, "SubmitObjectsRequest"))
    etree.SubElement(submit, Q(ns.RIM, "RegistryObjectList"))
    for number, attachment in enumerate(attachments, 1):
        document = etree.SubElement(root, Q(ns.XDSB, "Document"), id=f"Document{number:02d}")
        document.append(xop_include(attachment.content_id))
    return root


def test_mtom_request_parts_are_exact_and_files_stream(
    server: RecordingServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.respond = _plain_answer(REGISTRY_RESPONSE, ITI_41.response_action)
    small = Attachment.from_bytes(b"\r\n\x00binary\r\n\r\n", content_type="application/dicom")
    big_file = tmp_path / "study.dcm"
    big_data = b"\r\n" + os.urandom(3 * 1024 * 1024 + 17) + b"\r\n"
    big_file.write_bytes(big_data)
    big = Attachment.from_file(big_file, content_type="application/dicom")

    posted: list[Any] = []

    class SpySession(requests.Session):
        def post(self, url: Any, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            posted.append(data)
            return super().post(url, data=data, **kwargs)

    def no_whole_read(self: Attachment) -> bytes:
        raise AssertionError("a file attachment was read whole instead of streamed")

    monkeypatch.setattr(Attachment, "read_bytes", no_whole_read)
    with SpySession() as session:
        client = SoapClient(
            server.url + "/xds/repository",
            session_factory=lambda: session,
            spool_dir=tmp_path / "spool",
        )
        response = client.call(ITI_41, _pnr_body([small, big]), [small, big])

    assert response.body.tag == Q(ns.RS, "RegistryResponse")
    (recorded,) = server.requests
    headers = recorded.headers
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == len(recorded.body)
    (data,) = posted
    assert not isinstance(data, bytes | bytearray) and len(data) == len(recorded.body)

    content_type = headers["content-type"]
    assert content_type.startswith("multipart/related")
    assert 'type="application/xop+xml"' in content_type
    assert "start-info=" in content_type and "application/soap+xml" in content_type
    decoder = MultipartDecoder(recorded.body, content_type)
    root_part, *parts = decoder.parts
    assert root_part.headers[b"Content-Type"].decode().startswith("application/xop+xml")
    envelope = etree.fromstring(root_part.content)
    header = envelope.find(Q(ENV, "Header"))
    assert header.findtext(Q(ns.WSA, "Action")) == ITI_41.action
    includes = [i.get("href") for i in envelope.iter(Q(ns.XOP, "Include"))]
    assert includes == [f"cid:{small.content_id}", f"cid:{big.content_id}"]
    by_cid = {p.headers[b"Content-ID"].decode().strip("<>"): p.content for p in parts}
    assert by_cid[small.content_id] == b"\r\n\x00binary\r\n\r\n"
    assert by_cid[big.content_id] == big_data


def test_mtom_transaction_without_attachments_is_still_mtom(
    server: RecordingServer, tmp_path: Path
) -> None:
    answer = (
        f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{ns.XDSB}"><rs:RegistryResponse '
        f'xmlns:rs="{ns.RS}" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:'
        'Success"/></xdsb:RetrieveDocumentSetResponse>'
    )
    server.respond = _plain_answer(answer, ITI_43.response_action)
    client = SoapClient(server.url + "/xds/repository", spool_dir=tmp_path)
    body = etree.Element(Q(ns.XDSB, "RetrieveDocumentSetRequest"), nsmap={"xdsb": ns.XDSB})
    response = client.call(ITI_43, body)
    (recorded,) = server.requests
    assert recorded.headers["content-type"].startswith("multipart/related")
    decoder = MultipartDecoder(recorded.body, recorded.headers["content-type"])
    assert len(decoder.parts) == 1
    assert response.body.tag == ITI_43.response_qname and response.attachments == {}


# -- MTOM response ------------------------------------------------------------------------------


def _mtom_response(
    parts: dict[str, bytes], *, boundary: str = "MIMEBoundary_test_4711"
) -> tuple[str, bytes]:
    documents = "".join(
        f"<xdsb:DocumentResponse><xdsb:RepositoryUniqueId>1.3.6.1.4.1.21367.13.80.100"
        f"</xdsb:RepositoryUniqueId><xdsb:DocumentUniqueId>1.2.3.{n}</xdsb:DocumentUniqueId>"
        f"<xdsb:mimeType>application/dicom</xdsb:mimeType><xdsb:Document>"
        f'<xop:Include xmlns:xop="{ns.XOP}" href="cid:{cid}"/></xdsb:Document>'
        f"</xdsb:DocumentResponse>"
        for n, cid in enumerate(parts)
    )
    body = (
        f'<xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{ns.XDSB}"><rs:RegistryResponse '
        f'xmlns:rs="{ns.RS}" status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:'
        f'Success"/>{documents}</xdsb:RetrieveDocumentSetResponse>'
    )
    root = _envelope(body, action=RAD_69.response_action)
    chunks = [
        f"--{boundary}\r\n".encode(),
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\nContent-ID: <root.message@test>\r\n\r\n",
        root,
        b"\r\n",
    ]
    for cid, data in parts.items():
        chunks += [
            f"--{boundary}\r\nContent-Type: application/dicom\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode(),
            data,
            b"\r\n",
        ]
    chunks.append(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<root.message@test>"; start-info="application/soap+xml"'
    )
    return content_type, b"".join(chunks)


def test_mtom_response_parts_are_exact_and_spooled(server: RecordingServer, tmp_path: Path) -> None:
    edged = b"\r\n\r\nDICM\x00\x01\r\n"
    large = b"\r\n" + os.urandom(2 * 1024 * 1024) + b"\r\n"
    content_type, payload = _mtom_response({"edged@test": edged, "large@test": large})
    server.respond = lambda _r: ("200 OK", [("Content-Type", content_type)], payload)
    spool = tmp_path / "spool"
    client = SoapClient(
        server.url + "/xdsi/source",
        spool_dir=spool,
        memory_threshold=64 * 1024,
    )
    request = etree.Element(
        Q(ns.IHERAD, "RetrieveImagingDocumentSetRequest"), nsmap={"iherad": ns.IHERAD}
    )

    response = client.call(RAD_69, request)

    documents = response.body.findall(f"{Q(ns.XDSB, 'DocumentResponse')}/{Q(ns.XDSB, 'Document')}")
    assert len(documents) == 2
    for document in documents:  # xop:Include children untouched
        (include,) = document
        assert include.tag == Q(ns.XOP, "Include")
    assert set(response.attachments) == {"edged@test", "large@test"}
    assert response.attachment_for(documents[0]).read_bytes() == edged
    big = response.attachment_for(documents[1])
    assert big.path is not None and big.path.parent == spool and big.owned
    assert big.path.read_bytes() == large
    response.discard_attachments()
    assert not big.path.exists() if big.path else True
    assert list(spool.iterdir()) == []


# -- faults and errors --------------------------------------------------------------------------


def test_soap12_fault_becomes_soap_fault_error(server: RecordingServer, tmp_path: Path) -> None:
    fault = (
        f'<env:Fault xmlns:w="{ns.WSA}"><env:Code><env:Value>env:Sender</env:Value>'
        "<env:Subcode><env:Value>w:InvalidAddressingHeader</env:Value><env:Subcode>"
        "<env:Value>w:InvalidCardinality</env:Value></env:Subcode></env:Subcode></env:Code>"
        '<env:Reason><env:Text xml:lang="en">More than one wsa:To header</env:Text>'
        "</env:Reason><env:Detail><w:ProblemHeaderQName>wsa:To</w:ProblemHeaderQName>"
        "</env:Detail></env:Fault>"
    )
    payload = _envelope(fault, action=ns.WSA_FAULT_ACTION)
    server.respond = lambda _r: (
        "400 Bad Request",
        [("Content-Type", "application/soap+xml; charset=UTF-8")],
        payload,
    )
    client = SoapClient(server.url + "/xds/registry", spool_dir=tmp_path)
    with pytest.raises(SoapFaultError) as info:
        client.call(ITI_18, _query_request())
    error = info.value
    assert error.code == Q(ENV, "Sender")
    assert error.subcodes == (Q(ns.WSA, "InvalidAddressingHeader"), Q(ns.WSA, "InvalidCardinality"))
    assert error.reason == "More than one wsa:To header"
    assert error.detail is not None and error.detail[0].text == "wsa:To"
    assert error.http_status == 400


def test_http_error_page_is_a_transport_error(server: RecordingServer, tmp_path: Path) -> None:
    server.respond = lambda _r: (
        "404 Not Found",
        [("Content-Type", "text/html")],
        b"<html><body>no such endpoint</body></html>",
    )
    client = SoapClient(server.url + "/nowhere", spool_dir=tmp_path)
    with pytest.raises(SoapTransportError, match="404"):
        client.call(ITI_18, _query_request())


def test_unexpected_body_is_a_protocol_error(server: RecordingServer, tmp_path: Path) -> None:
    server.respond = _plain_answer(REGISTRY_RESPONSE, ITI_18.response_action)
    client = SoapClient(server.url + "/xds/registry", spool_dir=tmp_path)
    with pytest.raises(SoapProtocolError, match="AdhocQueryResponse"):
        client.call(ITI_18, _query_request())


def test_refused_connection_is_a_transport_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago and has no listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = SoapClient(
        f"http://127.0.0.1:{port}/xds/registry",
        timeout=5,
        spool_dir=tmp_path,
    )
    with pytest.raises(SoapConnectError):
        client.call(ITI_18, _query_request())


# -- answers cut short: the peer sends its headers, part of the body, then drops the connection --


@pytest.fixture
def cutting() -> Iterator[CuttingPeer]:
    peer = CuttingPeer()
    try:
        yield peer
    finally:
        peer.stop()


def _plain(_request: Received) -> Answer:
    body = _envelope(REGISTRY_RESPONSE, action=ITI_42.response_action)
    return Answer(200, [("Content-Type", "application/soap+xml; charset=UTF-8")], body)


def _mtom(_request: Received) -> Answer:
    large = b"\r\n" + os.urandom(3 * 1024 * 1024) + b"\r\n"
    content_type, payload = _mtom_response({"edged@test": b"\r\nDICM\r\n", "large@test": large})
    return Answer(200, [("Content-Type", content_type)], payload)


@pytest.mark.parametrize(
    ("answer", "transaction", "keep", "chunked"),
    [
        (_plain, ITI_42, 0, False),  # headers, then nothing
        (_plain, ITI_42, 100, False),  # in the middle of the envelope
        (_plain, ITI_42, 100, True),  # chunked: the last chunk never comes
        (_mtom, RAD_69, 2 * 1024 * 1024, False),  # while spooling a large MTOM part
        (_mtom, RAD_69, 2 * 1024 * 1024, True),
    ],
)
def test_answer_cut_off_is_a_transport_error_and_leaves_nothing(
    cutting: CuttingPeer,
    tmp_path: Path,
    answer: Callable[[Received], Answer],
    transaction: Transaction,
    keep: int,
    chunked: bool,
) -> None:
    cutting.answer, cutting.chunked = answer, chunked
    cutting.cut = lambda number, _size: keep if number == 0 else None  # only the first answer
    spool = tmp_path / "spool"
    client = SoapClient(
        cutting.start() + transaction.path, timeout=10, spool_dir=spool, memory_threshold=1024
    )
    body = _query_request() if transaction is ITI_18 else etree.Element(transaction.request_qname)
    with pytest.raises(SoapTransportError) as info:
        client.call(transaction, body)
    assert not isinstance(info.value, SoapConnectError)  # delivered: the outcome is unknown
    assert "cut off" in str(info.value)
    [cut] = cutting.cuts
    assert 0 <= cut.sent < cut.answer_size
    assert not spool.exists() or list(spool.iterdir()) == []  # no spooled part left behind
    answer_again = client.call(transaction, body)  # the same client works on
    assert answer_again.body.tag == transaction.response_qname
    answer_again.discard_attachments()
    client.close()


def test_answer_without_content_type(cutting: CuttingPeer, tmp_path: Path) -> None:
    # A proxy's error page, or a peer forgetting the header: judged by the body, never a crash.
    answers = iter(
        [
            Answer(502, [], b"<html>bad gateway</html>", "Bad Gateway"),
            Answer(200, [], _envelope(REGISTRY_RESPONSE, action=ITI_42.response_action)),
        ]
    )
    cutting.answer = lambda _request: next(answers)
    client = SoapClient(cutting.start() + "/xds/registry", timeout=10, spool_dir=tmp_path)
    body = etree.Element(Q(ns.LCM, "SubmitObjectsRequest"), nsmap={"lcm": ns.LCM})
    with pytest.raises(SoapTransportError, match="502"):
        client.call(ITI_42, body)
    assert client.call(ITI_42, body).body.tag == ITI_42.response_qname
