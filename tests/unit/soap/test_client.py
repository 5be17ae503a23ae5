"""Client pieces that need no socket: WS-Addressing headers, the request envelope, and the one
place where network failures become the client's errors."""

from __future__ import annotations

import http.client

import pytest
import requests
import urllib3.exceptions
from lxml import etree

from gateway.soap import ns
from gateway.soap.client import (
    SoapConnectError,
    SoapProtocolError,
    SoapTransportError,
    addressing_headers,
    request_envelope,
)
from gateway.soap.client_transport import map_transport_errors
from gateway.soap.transactions import ITI_18, ITI_41, RAD_69, Transaction

ENV = ns.SOAP12
Q = ns.qname


def test_addressing_headers() -> None:
    action, message_id, reply_to, to = addressing_headers(
        action="urn:ihe:iti:2007:RegistryStoredQuery",
        to="https://peer/xds/registry",
        message_id="urn:uuid:0c2b4d0e-8a4a-4e7e-9a57-1f6f9b0d4c11",
    )
    assert (
        action.tag == Q(ns.WSA, "Action") and action.text == "urn:ihe:iti:2007:RegistryStoredQuery"
    )
    assert action.get(Q(ENV, "mustUnderstand")) == "true"
    assert message_id.tag == Q(ns.WSA, "MessageID")
    assert message_id.text == "urn:uuid:0c2b4d0e-8a4a-4e7e-9a57-1f6f9b0d4c11"
    assert message_id.get(Q(ENV, "mustUnderstand")) == "true"
    assert reply_to.get(Q(ENV, "mustUnderstand")) == "true"
    assert reply_to.tag == Q(ns.WSA, "ReplyTo")
    assert reply_to.findtext(Q(ns.WSA, "Address")) == ns.WSA_ANONYMOUS
    assert to.tag == Q(ns.WSA, "To") and to.text == "https://peer/xds/registry"
    assert to.get(Q(ENV, "mustUnderstand")) == "true"
    generated = addressing_headers(action="a", to="b")[1].text
    assert (
        generated.startswith("urn:uuid:")
        and generated != addressing_headers(action="a", to="b")[1].text
    )


@pytest.mark.parametrize("transaction", [ITI_18, ITI_41, RAD_69])
def test_request_envelope_has_one_set_of_wsa_headers_and_the_body(
    transaction: Transaction,
) -> None:
    address = "https://peer.example:8443" + transaction.path
    body = etree.Element(
        transaction.request_qname, nsmap={"x": ns.split_qname(transaction.request_qname)[0]}
    )
    etree.SubElement(body, Q(ns.RIM, "Slot"), name="$x").text = "\r\n kept \u00e9"
    envelope = request_envelope(transaction, body, to=address, message_id="urn:uuid:1")
    assert etree.QName(envelope).namespace == ENV
    header, body_el = envelope
    assert header.tag == Q(ENV, "Header") and body_el.tag == Q(ENV, "Body")
    assert [child.tag for child in header] == [
        Q(ns.WSA, n) for n in ("Action", "MessageID", "ReplyTo", "To")
    ]
    assert header.findtext(Q(ns.WSA, "Action")) == transaction.action
    assert header.findtext(Q(ns.WSA, "MessageID")) == "urn:uuid:1"
    assert header.findtext(Q(ns.WSA, "To")) == address
    (sent,) = body_el
    assert sent is not body  # a copy: the caller's element stays where it is
    assert _exc_c14n(sent) == _exc_c14n(body)


def test_request_envelope_refuses_another_body() -> None:
    with pytest.raises(ValueError, match="AdhocQueryRequest"):
        request_envelope(ITI_18, etree.Element(Q(ns.LCM, "SubmitObjectsRequest")), to="http://x")


def _refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("failure", "reading", "expected"),
    [
        (_refused(), False, SoapConnectError),
        (requests.exceptions.ConnectTimeout("connect timed out"), False, SoapConnectError),
        (requests.exceptions.SSLError("handshake failure"), False, SoapConnectError),
        (
            requests.ConnectionError("Connection aborted: RemoteDisconnected"),
            False,
            SoapTransportError,
        ),
        (requests.exceptions.ReadTimeout("read timed out"), False, SoapTransportError),
        (
            urllib3.exceptions.ProtocolError("IncompleteRead(10 bytes read, 90 more)"),
            True,
            SoapTransportError,
        ),
        (requests.exceptions.ChunkedEncodingError("ended prematurely"), True, SoapTransportError),
        (
            urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),
            True,
            SoapTransportError,
        ),  # type: ignore[arg-type]
        (http.client.IncompleteRead(b"x", 5), True, SoapTransportError),
        (ConnectionResetError(104, "Connection reset by peer"), True, SoapTransportError),
        (TimeoutError("timed out"), True, SoapTransportError),
    ],
)
def test_network_failures_are_mapped_once(
    failure: BaseException, reading: bool, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as info, map_transport_errors("http://peer/x", reading=reading):
        raise failure
    assert type(info.value) is expected
    assert info.value.__cause__ is failure
    assert "http://peer/x" in str(info.value)


def test_other_failures_pass_unchanged() -> None:
    own = SoapProtocolError("bad XML")
    with pytest.raises(SoapProtocolError) as info, map_transport_errors("x", reading=True):
        raise own
    assert info.value is own
    disk = OSError(28, "No space left on device")  # a full spool folder is no network failure
    with pytest.raises(OSError) as caught, map_transport_errors("x", reading=True):
        raise disk
    assert caught.value is disk


def _exc_c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)
