"""The SOAP 1.2 client every actor uses to call a peer: zeep plus WS-Addressing and streamed MTOM.

``make_client`` builds a zeep client from the gateway's own WSDL of the peer's endpoint (no WSDL is
fetched over the network) and ``call`` sends one transaction: zeep builds the envelope, our
:class:`AddressingPlugin` writes the WS-Addressing headers, :class:`MtomTransport` sends it (as an
MTOM/XOP package when the transaction uses MTOM, attachments streamed from memory or disk) and reads
the answer itself, spooling attachments of an MTOM response to temporary files instead of holding
them in zeep's in-memory MessagePack.

zeep builds the envelope with an empty request element (every child passed as ``SkipValue``, so
zeep's typed serializer writes none and checks no cardinality) and ``call`` then puts a copy of the
caller's body element in its place, so the standard XML goes out exactly as built. Consequence:
zeep egress plugins and zeep WS-Security see the envelope before the body is in place; use them
for headers only (IHE secures XDS with TLS, ITI-19, not WS-Security).

Standards: SOAP 1.2 Part 1 §5 (envelope, §5.4 faults) and Part 2 §7 (HTTP binding, §7.1.4 action
parameter); WS-Addressing 1.0 Core §3 and SOAP Binding §2-§3; ITI TF-2 Appendix V §V.3.2.1 (IHE
requires wsa:Action, wsa:MessageID and wsa:ReplyTo, with mustUnderstand) and
§V.3.3.2.2 (MTOM/XOP for ITI-41/43, RAD-69); XOP 1.0; SOAP MTOM (W3C REC 2005-01-25) §4.3.
"""

from __future__ import annotations

import base64
import copy
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from io import BytesIO
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.wsdl.attachments
from lxml import etree
from zeep.plugins import Plugin
from zeep.wsdl.utils import get_or_create_header

from gateway.soap import ns
from gateway.soap.client_transport import (
    MtomTransport,
    SoapClientError,
    SoapFaultError,
    SoapProtocolError,
    SoapTransportError,
)
from gateway.soap.envelope import new_message_id
from gateway.soap.message import Attachment, cid_from_href
from gateway.soap.transactions import Transaction
from gateway.soap.wsdl import local_schema_base, render_wsdl

__all__ = [
    "AddressingPlugin",
    "ClientResponse",
    "MtomTransport",
    "SoapClientError",
    "SoapFaultError",
    "SoapProtocolError",
    "SoapTransportError",
    "addressing_headers",
    "call",
    "make_client",
    "patch_zeep_attachments",
]

DEFAULT_MEMORY_THRESHOLD = 1024 * 1024
DEFAULT_MAX_ENVELOPE_BYTES = 32 * 1024 * 1024
_ENV = ns.SOAP12
_MUST_UNDERSTAND = ns.qname(_ENV, "mustUnderstand")


@dataclass(slots=True, kw_only=True)
class ClientResponse:
    """A peer's answer: body element (xop:Include children untouched), attachments by Content-ID.

    ``action``, ``relates_to`` and ``message_id`` are the response's WS-Addressing headers;
    ``request_message_id`` is the wsa:MessageID this client sent (WS-A SOAP Binding §3: the reply's
    RelatesTo should equal it). Attachments of an MTOM response are temporary files the caller
    owns: save them (:meth:`Attachment.save_to`) or :meth:`discard_attachments`.
    """

    body: etree._Element
    attachments: dict[str, Attachment] = field(default_factory=dict)
    action: str | None = None
    relates_to: str | None = None
    message_id: str | None = None
    request_message_id: str | None = None

    def attachment_for(self, element: etree._Element) -> Attachment:
        """Return the attachment an element's xop:Include child names (XOP 1.0 §3).

        Raises:
            KeyError: the element has no xop:Include, or it names no part of this response.
        """
        include = element.find(ns.qname(ns.XOP, "Include"))
        if include is None:
            raise KeyError(f"{element.tag} has no xop:Include")
        return self.attachments[cid_from_href(include.get("href", ""))]

    def discard_attachments(self) -> None:
        """Remove every temporary file behind this response's attachments."""
        for attachment in self.attachments.values():
            attachment.discard()


# -- zeep attachment fix ------------------------------------------------------------------------


def _exact_content(self: zeep.wsdl.attachments.Attachment) -> bytes:
    # zeep 4.3 returns content.strip(b"\r\n") for Content-Transfer-Encoding: binary, which cuts
    # CR/LF bytes that belong to the part. requests_toolbelt's decoder already removes exactly the
    # MIME delimiter CRLFs (RFC 2046 §5.1.1), so the part content is returned as decoded.
    content = self._part.content
    if self.headers.get("Content-Transfer-Encoding", None) == "base64":
        return base64.b64decode(content)
    return content


def patch_zeep_attachments() -> None:
    """Make zeep's MTOM attachment content byte-exact (idempotent; applied by :func:`make_client`).

    Replaces ``zeep.wsdl.attachments.Attachment.content``, which strips leading and trailing CR/LF
    from binary parts (zeep 4.3), with a version that keeps every byte (XOP 1.0 §3: the part is
    the octet stream). Only code paths still using zeep's MessagePack need it; ``call`` reads MTOM
    responses itself.
    """
    cls = zeep.wsdl.attachments.Attachment
    if getattr(cls.content, "func", None) is _exact_content:
        return
    prop = cached_property(_exact_content)
    prop.__set_name__(cls, "content")
    cls.content = prop  # type: ignore[assignment]


# -- WS-Addressing ------------------------------------------------------------------------------


def addressing_headers(
    *, action: str, to: str, message_id: str | None = None
) -> list[etree._Element]:
    """Build the WS-Addressing 1.0 request headers: Action, MessageID, ReplyTo (anonymous), To.

    Every one carries ``env:mustUnderstand="true"``. ITI TF-2 Appendix V §V.3.2 (Table V.3.2-1,
    requirement IHE_WSA101) asks for mustUnderstand on the WS-Addressing header blocks; the NIST
    XDS Toolkit checks for it (usnistgov/iheos-toolkit2 issues #143, #486) and the IHE XDS.b
    sample messages set it on wsa:Action and wsa:To. Any WS-Addressing node understands all four.
    Standard: WS-Addressing 1.0 Core §3.1-§3.2, SOAP Binding §2; SOAP 1.2 Part 1 §5.2.3.
    """
    nsmap = {"wsa": ns.WSA}

    def header(local: str, text: str | None = None) -> etree._Element:
        element = etree.Element(ns.qname(ns.WSA, local), nsmap=nsmap)
        element.set(_MUST_UNDERSTAND, "true")
        element.text = text
        return element

    reply_to = header("ReplyTo")
    etree.SubElement(reply_to, ns.qname(ns.WSA, "Address")).text = ns.WSA_ANONYMOUS
    return [
        header("Action", action),
        header("MessageID", message_id or new_message_id()),
        reply_to,
        header("To", to),
    ]


class AddressingPlugin(Plugin):
    """zeep plugin writing our WS-Addressing headers (replacing any zeep wrote on its own).

    zeep adds Action/MessageID/To without mustUnderstand or ReplyTo whenever the WSDL names a
    wsaw:Action; this plugin runs after that and leaves exactly one set of WS-A headers.
    """

    def egress(
        self,
        envelope: etree._Element,
        http_headers: dict[str, str],
        operation: Any,
        binding_options: dict[str, Any],
    ) -> tuple[etree._Element, dict[str, str]]:
        """Replace the envelope's WS-A headers. Standard: ITI TF-2 Appendix V §V.3.2.1."""
        header = get_or_create_header(envelope)
        for old in header.findall(f"{{{ns.WSA}}}*"):
            header.remove(old)
        action = operation.abstract.wsa_action or operation.soapaction
        header.extend(addressing_headers(action=action, to=binding_options["address"]))
        return envelope, http_headers


# -- factory and call ---------------------------------------------------------------------------


def make_client(
    address: str,
    *,
    transaction_path: str,
    timeout: float = 60,
    verify: bool | str = True,
    cert: tuple[str, str] | None = None,
    session: requests.Session | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
) -> zeep.Client:
    """Build a zeep client for the peer endpoint at ``address`` serving ``transaction_path``.

    The WSDL is the gateway's own for that path, rendered locally with ``address`` as its
    soap12:address and its schemas read from the installed schema folder; ``verify``/``cert`` are
    passed to every request (requests semantics: CA bundle path or bool; client certificate and
    key files, ITI-19). MTOM response attachments larger than
    ``memory_threshold`` are spooled to ``spool_dir`` (default: the system temp folder).
    Raises:
        ValueError: ``transaction_path`` is no endpoint of the gateway.
    """
    patch_zeep_attachments()
    transport = MtomTransport(
        session=session,
        timeout=timeout,
        verify=verify,
        cert=cert,
        spool_dir=Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir()),
        memory_threshold=memory_threshold,
        max_envelope_bytes=max_envelope_bytes,
    )
    settings = zeep.Settings(
        strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    wsdl = BytesIO(render_wsdl(transaction_path, address, schema_base=local_schema_base()))
    return zeep.Client(wsdl, transport=transport, plugins=[AddressingPlugin()], settings=settings)


def call(
    client: zeep.Client,
    transaction: Transaction,
    body: etree._Element,
    attachments: Sequence[Attachment] = (),
) -> ClientResponse:
    """Send one ``transaction`` request with ``body`` (and MTOM attachments); return the answer.

    ``body`` must be the transaction's request element; elements carrying binary content hold
    xop:Include children naming the attachments' Content-IDs (``message.xop_include``). MTOM
    transactions always go as MTOM/XOP packages (ITI TF-2 Appendix V §V.3.3.2.2).
    Raises:
        ValueError: wrong body element, or attachments for a transaction without MTOM.
        SoapFaultError: the peer answered with a SOAP fault.
        SoapTransportError, SoapProtocolError: no usable answer.
    """
    if body.tag != transaction.request_qname:
        raise ValueError(f"{transaction.name} sends {transaction.request_qname}, not {body.tag}")
    if attachments and not transaction.mtom:
        raise ValueError(f"{transaction.name} does not use MTOM; it cannot carry attachments")
    transport = client.transport
    if not isinstance(transport, MtomTransport):
        raise TypeError("call() needs a client built by make_client()")
    service = client.service
    # An empty body element: SkipValue for each of its children (the body is replaced below).
    children = client.get_element(transaction.request_qname).type.elements
    skip = {name: zeep.xsd.SkipValue for name, _element in children}
    envelope = client.create_message(service, transaction.operation, **skip)
    body_el = envelope.find(ns.qname(_ENV, "Body"))
    placeholder = body_el[0] if body_el is not None and len(body_el) else None
    if placeholder is None or placeholder.tag != transaction.request_qname:
        raise ValueError(
            f"The WSDL's {transaction.operation} does not send {transaction.request_qname}"
        )
    body_el.replace(placeholder, copy.deepcopy(body))
    request_id = envelope.findtext(f"{{{_ENV}}}Header/{{{ns.WSA}}}MessageID")
    # zeep keeps a service proxy's endpoint address in _binding_options (and reads it there).
    address = service._binding_options["address"]
    response = transport.post_message(
        address,
        envelope,
        soap_action=transaction.action,
        attachments=attachments,
        mtom_package=transaction.mtom,
    )
    root, received = transport.read_response(response)
    try:
        result = _to_response(root, received, response.status_code, transaction)
    except BaseException:
        for attachment in received.values():
            attachment.discard()
        raise
    result.request_message_id = request_id
    return result


def _to_response(
    root: etree._Element, attachments: dict[str, Attachment], status: int, transaction: Transaction
) -> ClientResponse:
    soap11 = root.tag == ns.qname(ns.SOAP11, "Envelope")
    env = ns.SOAP11 if soap11 else _ENV
    body_el = root.find(ns.qname(env, "Body"))
    children = [c for c in body_el if isinstance(c.tag, str)] if body_el is not None else []
    if len(children) != 1:
        raise SoapProtocolError(f"Response env:Body holds {len(children)} elements, expected one")
    element = children[0]
    if element.tag == ns.qname(env, "Fault"):
        raise _soap11_fault(element, status) if soap11 else _soap12_fault(element, status)
    if soap11:
        raise SoapProtocolError("The peer answered in SOAP 1.1; IHE transactions use SOAP 1.2")
    if status != 200:
        raise SoapTransportError(f"HTTP {status} with a non-fault SOAP body")
    if element.tag != transaction.response_qname:
        raise SoapProtocolError(
            f"{transaction.name} answers {transaction.response_qname}, got {element.tag}"
        )
    header = root.find(ns.qname(env, "Header"))

    def wsa(local: str) -> str | None:
        found = header.find(ns.qname(ns.WSA, local)) if header is not None else None
        text = (found.text or "").strip() if found is not None else ""
        return text or None

    return ClientResponse(
        body=element,
        attachments=attachments,
        action=wsa("Action"),
        relates_to=wsa("RelatesTo"),
        message_id=wsa("MessageID"),
    )


def _clark(element: etree._Element | None) -> str:
    """Resolve a QName-valued element (``env:Sender``) to Clark notation using its namespaces."""
    text = (element.text or "").strip() if element is not None else ""
    prefix, _, local = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None) if element is not None else None
    return ns.qname(namespace, local) if namespace else local


def _soap12_fault(fault: etree._Element, status: int) -> SoapFaultError:
    """SOAP 1.2 Part 1 §5.4: Code/Value, nested Subcode/Value, Reason/Text, Detail."""
    q = ns.qname
    code_el = fault.find(q(_ENV, "Code"))
    subcodes = []
    sub = code_el.find(q(_ENV, "Subcode")) if code_el is not None else None
    while sub is not None:
        subcodes.append(_clark(sub.find(q(_ENV, "Value"))))
        sub = sub.find(q(_ENV, "Subcode"))
    reason = fault.findtext(f"{q(_ENV, 'Reason')}/{q(_ENV, 'Text')}") or ""
    return SoapFaultError(
        code=_clark(code_el.find(q(_ENV, "Value")) if code_el is not None else None),
        subcodes=subcodes,
        reason=reason.strip(),
        detail=fault.find(q(_ENV, "Detail")),
        http_status=status,
    )


def _soap11_fault(fault: etree._Element, status: int) -> SoapFaultError:
    """SOAP 1.1 §4.4: faultcode, faultstring, detail (e.g. a VersionMismatch from a 1.1 peer)."""
    return SoapFaultError(
        code=_clark(fault.find("faultcode")),
        reason=(fault.findtext("faultstring") or "").strip(),
        detail=fault.find("detail"),
        http_status=status,
    )
