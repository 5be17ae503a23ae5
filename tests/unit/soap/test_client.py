"""Client pieces that need no socket: zeep attachment fix, WS-Addressing headers, envelope build."""

from __future__ import annotations

import base64

import pytest
import zeep.wsdl.attachments
from lxml import etree
from requests_toolbelt.multipart.decoder import MultipartDecoder
from zeep.wsdl.attachments import MessagePack

from gateway.soap import ns
from gateway.soap.client import (
    AddressingPlugin,
    MtomTransport,
    addressing_headers,
    make_client,
    patch_zeep_attachments,
)
from gateway.soap.transactions import ITI_18, ITI_41, RAD_69

ENV = ns.SOAP12
Q = ns.qname
EDGED = b"\r\n\r\nDICM\x00\r\nbinary\r\n"
# zeep's own property, captured at collection time (before any test calls make_client).
ZEEP_CONTENT = zeep.wsdl.attachments.Attachment.__dict__["content"]


class _Part:
    """The shape of a requests_toolbelt BodyPart that zeep's Attachment reads."""

    def __init__(self, content: bytes, encoding: str = "binary") -> None:
        self.encoding = "utf-8"
        self.headers = {
            b"Content-ID": b"<a@b>",
            b"Content-Type": b"application/octet-stream",
            b"Content-Transfer-Encoding": encoding.encode(),
        }
        self.content = content


@pytest.fixture
def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run with zeep's original Attachment.content; monkeypatch restores the class afterwards."""
    if getattr(ZEEP_CONTENT.func, "__module__", "") == "gateway.soap.client":
        pytest.skip("zeep's Attachment.content was patched before this module was imported")
    monkeypatch.setattr(zeep.wsdl.attachments.Attachment, "content", ZEEP_CONTENT)


def test_zeep_strips_crlf_without_the_patch(unpatched: None) -> None:
    # Documents the zeep 4.3 behaviour the patch exists for (and keeps the next test honest).
    attachment = zeep.wsdl.attachments.Attachment(_Part(EDGED))
    if attachment.content == EDGED:
        pytest.skip("this zeep version keeps CR/LF already")
    assert attachment.content == EDGED.strip(b"\r\n")


def test_patch_makes_binary_parts_exact(unpatched: None) -> None:
    patch_zeep_attachments()
    first = zeep.wsdl.attachments.Attachment.__dict__["content"]
    patch_zeep_attachments()  # idempotent: the same property stays in place
    assert zeep.wsdl.attachments.Attachment.__dict__["content"] is first
    assert zeep.wsdl.attachments.Attachment(_Part(EDGED)).content == EDGED
    encoded = zeep.wsdl.attachments.Attachment(_Part(base64.b64encode(EDGED), "base64"))
    assert encoded.content == EDGED
    assert zeep.wsdl.attachments.Attachment(_Part(EDGED, "8bit")).content == EDGED


def test_patched_message_pack_is_exact(unpatched: None) -> None:
    patch_zeep_attachments()
    boundary = "b0undary"
    payload = (
        f"--{boundary}\r\nContent-Type: application/xop+xml\r\nContent-ID: <root@x>\r\n\r\n"
        f"<root/>\r\n--{boundary}\r\nContent-Type: application/dicom\r\n"
        f"Content-Transfer-Encoding: binary\r\nContent-ID: <doc@x>\r\n\r\n"
    ).encode()
    payload += EDGED + f"\r\n--{boundary}--\r\n".encode()
    decoder = MultipartDecoder(payload, f'multipart/related; boundary="{boundary}"')
    pack = MessagePack(parts=decoder.parts[1:])
    assert pack.get_by_content_id("<doc@x>").content == EDGED


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


@pytest.mark.parametrize(
    ("path", "transaction"),
    [("/xds/registry", ITI_18), ("/xds/repository", ITI_41), ("/xdsi/source", RAD_69)],
)
def test_client_envelope_has_one_set_of_wsa_headers(path: str, transaction, tmp_path) -> None:
    address = "https://peer.example:8443" + path
    client = make_client(address, transaction_path=path, spool_dir=tmp_path)
    assert isinstance(client.transport, MtomTransport)
    assert any(isinstance(p, AddressingPlugin) for p in client.plugins)
    assert client.service._binding_options["address"] == address
    # The WSDL is typed: an empty body needs every child skipped, as call() does.
    children = client.get_element(transaction.request_qname).type.elements
    skip = {name: zeep.xsd.SkipValue for name, _element in children}
    envelope = client.create_message(client.service, transaction.operation, **skip)
    header = envelope.find(Q(ENV, "Header"))
    tags = [child.tag for child in header]
    assert tags == [Q(ns.WSA, n) for n in ("Action", "MessageID", "ReplyTo", "To")]
    assert header.findtext(Q(ns.WSA, "Action")) == transaction.action
    assert header.findtext(Q(ns.WSA, "To")) == address
    (placeholder,) = envelope.find(Q(ENV, "Body"))
    assert placeholder.tag == transaction.request_qname
    assert etree.QName(envelope).namespace == ENV


def test_make_client_refuses_unknown_path(tmp_path) -> None:
    with pytest.raises(ValueError, match="No WSDL"):
        make_client("http://peer/x", transaction_path="/x", spool_dir=tmp_path)
