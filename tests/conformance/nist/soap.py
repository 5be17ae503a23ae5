"""The runner's own SOAP 1.2 client: envelope, WS-Addressing, MTOM/XOP, over ``requests``.

Deliberately independent of the gateway's ``gateway.soap`` package (a black-box tool must not
share the code it tests). Requests carry the WS-Addressing 1.0 headers IHE requires (ITI TF-2
Appendix V §V.3.2: ``wsa:Action`` with ``mustUnderstand``, ``wsa:MessageID``, ``wsa:ReplyTo``
anonymous, ``wsa:To``). Plain requests are ``application/soap+xml`` with the ``action``
parameter (RFC 3902); MTOM requests are XOP packages (XOP 1.0 §4; SOAP MTOM §4.3):
``multipart/related; type="application/xop+xml"; start-info="application/soap+xml"``.
Responses are parsed with :mod:`email` (plain SOAP or multipart/related, binary parts kept).
"""

from __future__ import annotations

import base64
import binascii
import copy
import email.parser
import email.policy
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

import requests
from lxml import etree

from tests.conformance.nist import ns
from tests.conformance.nist.xmlutil import Element, first, kids, local, parse_xml, text, walk

CRLF = b"\r\n"


@dataclass(slots=True, kw_only=True)
class Part:
    """A MIME part of an XOP package: Content-ID (without <>), media type and bytes."""

    content_id: str
    content_type: str
    data: bytes


@dataclass(slots=True, kw_only=True)
class SoapReply:
    """What came back: HTTP status, envelope pieces, attachments by Content-ID."""

    http_status: int
    content_type: str
    raw: bytes
    envelope: Element | None = None
    body: Element | None = None  # first child of env:Body
    fault: Element | None = None
    parts: dict[str, Part] = field(default_factory=dict)
    multipart: bool = False
    problem: str = ""  # unparseable reply

    def header(self, name: str) -> str:
        """Text of the WS-Addressing header ``name`` ('' if absent)."""
        if self.envelope is None:
            return ""
        header = first(self.envelope, "Header")
        found = first(header, name) if header is not None else None
        return text(found)

    def fault_text(self) -> str:
        """``Code/Value (Subcode) Reason`` of a SOAP 1.2 fault."""
        if self.fault is None:
            return ""
        codes = [text(v) for v in walk(self.fault, "Value")]
        reason = text(next(walk(self.fault, "Text"), None))
        return f"{' / '.join(codes)}: {reason}"


@dataclass(slots=True, kw_only=True)
class SoapRequest:
    """An outgoing message: body element, action, attachments (sent as MTOM when any/mtom)."""

    url: str
    action: str
    body: Element
    parts: list[Part] = field(default_factory=list)
    mtom: bool = False
    message_id: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")


def envelope(request: SoapRequest) -> Element:
    """Build the SOAP 1.2 envelope with WS-Addressing headers around ``request.body``."""
    env = etree.Element(ns.q(ns.SOAP12, "Envelope"), nsmap={"env": ns.SOAP12, "wsa": ns.WSA})
    header = etree.SubElement(env, ns.q(ns.SOAP12, "Header"))
    must = {ns.q(ns.SOAP12, "mustUnderstand"): "true"}
    etree.SubElement(header, ns.q(ns.WSA, "Action"), must).text = request.action
    etree.SubElement(header, ns.q(ns.WSA, "MessageID")).text = request.message_id
    reply_to = etree.SubElement(header, ns.q(ns.WSA, "ReplyTo"))
    etree.SubElement(reply_to, ns.q(ns.WSA, "Address")).text = ns.WSA_ANONYMOUS
    etree.SubElement(header, ns.q(ns.WSA, "To"), must).text = request.url
    body = etree.SubElement(env, ns.q(ns.SOAP12, "Body"))
    body.append(copy.deepcopy(request.body))  # the request keeps its own body element
    return env


def encode(request: SoapRequest) -> tuple[str, bytes]:
    """Serialise ``request``: (Content-Type header, HTTP body)."""
    xml = etree.tostring(envelope(request), xml_declaration=True, encoding="UTF-8")
    if not (request.mtom or request.parts):
        return f'application/soap+xml; charset=UTF-8; action="{request.action}"', xml
    boundary = f"MIMEBoundary_{secrets.token_hex(16)}"
    root_id = f"root.{secrets.token_hex(8)}@nist-runner"
    chunks = [
        _part_head(
            boundary, root_id, 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'
        ),
        xml,
    ]
    for part in request.parts:
        chunks += [CRLF, _part_head(boundary, part.content_id, part.content_type), part.data]
    chunks.append(CRLF + f"--{boundary}--".encode() + CRLF)
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"; '
        f'action="{request.action}"'
    )
    return content_type, b"".join(chunks)


def _part_head(boundary: str, content_id: str, content_type: str) -> bytes:
    lines = [
        f"--{boundary}",
        f"Content-Type: {content_type}",
        "Content-Transfer-Encoding: binary",
        f"Content-ID: <{content_id}>",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def xop_include(content_id: str) -> Element:
    """``<xop:Include href="cid:..."/>`` for an attachment (XOP 1.0 §3)."""
    return etree.Element(ns.q(ns.XOP, "Include"), href=f"cid:{content_id}", nsmap={"xop": ns.XOP})


def new_content_id(prefix: str) -> str:
    """A unique Content-ID (RFC 2392 addr-spec form)."""
    return f"{prefix}.{secrets.token_hex(8)}@nist-runner"


def send(
    request: SoapRequest,
    *,
    timeout: float,
    verify: bool | str = True,
    cert: tuple[str, str] | None = None,
) -> SoapReply:
    """POST ``request`` and parse whatever comes back (https: ``verify``/``cert`` as requests)."""
    content_type, payload = encode(request)
    return post_raw(
        request.url,
        {"Content-Type": content_type},
        payload,
        timeout=timeout,
        verify=verify,
        cert=cert,
    )


def post_raw(
    url: str,
    headers: dict[str, str],
    payload: bytes,
    *,
    timeout: float,
    verify: bool | str = True,
    cert: tuple[str, str] | None = None,
) -> SoapReply:
    """POST raw bytes with the given headers and parse the reply."""
    response = requests.post(
        url, data=payload, headers=headers, timeout=timeout, verify=verify, cert=cert
    )
    return parse_reply(
        response.status_code, response.headers.get("Content-Type", ""), response.content
    )


def parse_reply(status: int, content_type: str, raw: bytes) -> SoapReply:
    """Parse a plain SOAP or multipart/related (MTOM) HTTP response."""
    reply = SoapReply(http_status=status, content_type=content_type, raw=raw)
    if not raw.strip():
        reply.problem = f"empty HTTP {status} response"
        return reply
    root_bytes = raw
    if content_type.lower().startswith("multipart/"):
        reply.multipart = True
        try:
            root_bytes, reply.parts = _split_multipart(content_type, raw)
        except ValueError as exc:
            reply.problem = f"bad multipart response: {exc}"
            return reply
    try:
        reply.envelope = parse_xml(root_bytes)
    except etree.XMLSyntaxError as exc:
        reply.problem = f"HTTP {status}, response is not XML: {exc}"
        return reply
    body = first(reply.envelope, "Body")
    if local(reply.envelope) != "Envelope" or body is None:
        reply.problem = f"HTTP {status}, response is not a SOAP envelope"
        return reply
    children = kids(body)
    reply.body = children[0] if children else None
    if reply.body is not None and local(reply.body) == "Fault":
        reply.fault, reply.body = reply.body, None
    return reply


def _split_multipart(content_type: str, raw: bytes) -> tuple[bytes, dict[str, Part]]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(head + raw)
    if not message.is_multipart():
        raise ValueError("Content-Type says multipart but no parts found")
    start = (message.get_param("start") or "").strip("<>")
    parts: dict[str, Part] = {}
    root: bytes | None = None
    for index, sub in enumerate(message.get_payload()):
        data = sub.get_payload(decode=True) or b""
        content_id = (sub.get("Content-ID") or "").strip().strip("<>")
        if root is None and (content_id == start or (not start and index == 0)):
            root = data
            continue
        parts[content_id] = Part(
            content_id=content_id, content_type=sub.get("Content-Type", ""), data=data
        )
    if root is None:
        raise ValueError(f"no root part (start={start!r})")
    return root, parts


def xop_infoset(element: Element, parts: dict[str, Part]) -> Element:
    """A copy of ``element`` with every ``xop:Include`` replaced by the base64 of its part.

    That is the XML infoset the package stands for (XOP 1.0 §3.2), which is what the schema
    describes (``xdsb:Document`` is ``base64Binary``). An unresolvable Include becomes empty.
    """
    resolved = copy.deepcopy(element)
    for include in list(walk(resolved, "Include")):
        parent = include.getparent()
        if parent is None:
            continue
        data = document_content(parent, parts) or b""
        parent.remove(include)
        parent.text = base64.b64encode(data).decode("ascii")
    return resolved


def document_content(document: Element, parts: dict[str, Part]) -> bytes | None:
    """Bytes of an ``xdsb:Document``: its xop:Include attachment, else inline base64."""
    include = first(document, "Include")
    if include is not None:
        href = unquote(include.get("href", ""))
        part = parts.get(href[4:] if href.startswith("cid:") else href)
        return None if part is None else part.data
    try:  # inline base64Binary (non-MTOM)
        return base64.b64decode(text(document), validate=False)
    except (ValueError, binascii.Error):
        return None
