"""The SOAP 1.2 client every actor uses to call a peer: WS-Addressing, streamed MTOM, one base.

:class:`SoapClient` is the one way the gateway calls a peer endpoint (the consumer's ITI-18,
ITI-43 and RAD-69 clients, the repository's registry client, the imaging source's repository
client, the ``provide``/``retrieve`` commands). It builds the envelope itself (the caller's body
element and the WS-Addressing request headers), posts it through
:class:`~gateway.soap.client_transport.HttpTransport` (an MTOM/XOP package when the transaction
uses MTOM, attachments streamed from memory or disk) and reads the answer, spooling attachments of
an MTOM answer to temporary files.

One instance is shared by every thread of a process. It keeps a small pool of ``requests``
sessions (a session is not meant to be used by two threads at once): a call takes an idle session
or makes one, and gives it back when the answer has been read. The pool's lock guards only the
taking and giving back, never a call on the network, so calls run in parallel.

Every network failure, while sending or while reading the answer's body, reaches the caller as a
:class:`~gateway.soap.client_transport.SoapClientError` (the tree is in ``client_transport``).

Standards: SOAP 1.2 Part 1 §5 (envelope, §5.4 faults) and Part 2 §7 (HTTP binding, §7.1.4 action
parameter); WS-Addressing 1.0 Core §3 and SOAP Binding §2-§3; ITI TF-2 Appendix V §V.3.2.1 (IHE
requires wsa:Action, wsa:MessageID and wsa:ReplyTo, with mustUnderstand) and §V.3.3.2.2
(MTOM/XOP for ITI-41/43, RAD-69); XOP 1.0; SOAP MTOM (W3C REC 2005-01-25) §4.3.
"""

from __future__ import annotations

import copy
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from lxml import etree

from gateway.soap import ns
from gateway.soap.client_transport import (
    HttpTransport,
    SoapClientError,
    SoapConnectError,
    SoapFaultError,
    SoapProtocolError,
    SoapTransportError,
)
from gateway.soap.envelope import BODY, ENVELOPE, HEADER, new_message_id
from gateway.soap.message import Attachment, cid_from_href
from gateway.soap.transactions import Transaction

__all__ = [
    "ClientResponse",
    "SessionFactory",
    "SoapClient",
    "SoapClientError",
    "SoapConnectError",
    "SoapFaultError",
    "SoapProtocolError",
    "SoapTransportError",
    "addressing_headers",
    "request_envelope",
]

DEFAULT_MEMORY_THRESHOLD = 1024 * 1024
DEFAULT_MAX_ENVELOPE_BYTES = 32 * 1024 * 1024
_ENV = ns.SOAP12
_MUST_UNDERSTAND = ns.qname(_ENV, "mustUnderstand")

SessionFactory = Callable[[], requests.Session]


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


# -- the request envelope -----------------------------------------------------------------------


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


def request_envelope(
    transaction: Transaction, body: etree._Element, *, to: str, message_id: str | None = None
) -> etree._Element:
    """A SOAP 1.2 request: the WS-A headers of ``transaction`` and a copy of ``body``.

    The body goes out exactly as the caller built it (document/literal: the request element is
    the only child of env:Body). Standard: SOAP 1.2 Part 1 §5.1-§5.3; ITI TF-2 Appendix V
    §V.3.2.1. Raises: ValueError when ``body`` is not the transaction's request element.
    """
    if body.tag != transaction.request_qname:
        raise ValueError(f"{transaction.name} sends {transaction.request_qname}, not {body.tag}")
    envelope = etree.Element(ENVELOPE, nsmap={"env": _ENV, "wsa": ns.WSA})
    header = etree.SubElement(envelope, HEADER)
    header.extend(addressing_headers(action=transaction.action, to=to, message_id=message_id))
    etree.SubElement(envelope, BODY).append(copy.deepcopy(body))
    return envelope


# -- the client -----------------------------------------------------------------------------------


class SoapClient:
    """Calls to one peer endpoint at ``address``; safe to share between threads.

    ``verify``/``cert`` are passed to every request (requests semantics: CA bundle path or bool;
    client certificate and key files, ITI-19); ``session_factory`` makes the sessions instead
    (e.g. on the node's TLS context, ``gateway.security.tls.requests_session``). MTOM answer
    parts larger than ``memory_threshold`` are spooled to ``spool_dir`` (default: the system
    temp folder).
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 60.0,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        session_factory: SessionFactory | None = None,
        spool_dir: str | os.PathLike[str] | None = None,
        memory_threshold: int = DEFAULT_MEMORY_THRESHOLD,
        max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    ) -> None:
        self.address = address
        self.transport = HttpTransport(
            timeout=timeout,
            verify=verify,
            cert=cert,
            spool_dir=Path(spool_dir) if spool_dir is not None else Path(tempfile.gettempdir()),
            memory_threshold=memory_threshold,
            max_envelope_bytes=max_envelope_bytes,
        )
        self._session_factory = session_factory or requests.Session
        self._idle: list[requests.Session] = []
        self._lock = threading.Lock()  # guards _idle only; never held across a call

    def call(
        self,
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
            SoapTransportError, SoapProtocolError: no usable answer (SoapConnectError: the
                request never reached the peer).
        """
        if attachments and not transaction.mtom:
            raise ValueError(f"{transaction.name} does not use MTOM; it cannot carry attachments")
        message_id = new_message_id()
        envelope = request_envelope(transaction, body, to=self.address, message_id=message_id)
        with self._session() as session:
            response = self.transport.post(
                session,
                self.address,
                envelope,
                soap_action=transaction.action,
                attachments=attachments,
                mtom_package=transaction.mtom,
            )
            root, received = self.transport.read_response(response)
        try:
            result = _to_response(root, received, response.status_code, transaction)
        except BaseException:
            for attachment in received.values():
                attachment.discard()
            raise
        result.request_message_id = message_id
        return result

    @contextmanager
    def _session(self) -> Iterator[requests.Session]:
        """An idle session of the pool, or a new one; given back when the block ends."""
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._session_factory()
        try:
            yield session
        finally:
            with self._lock:
                self._idle.append(session)

    def close(self) -> None:
        """Close the idle sessions and their connections (the client stays usable)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for session in idle:
            session.close()

    def __enter__(self) -> SoapClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- the answer ---------------------------------------------------------------------------------


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
