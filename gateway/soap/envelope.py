"""SOAP 1.2 envelopes and WS-Addressing 1.0 headers: read a request, write a response or a fault.

Standards: SOAP 1.2 Part 1 §5 (Envelope, Header, Body; §5.2.3 mustUnderstand; §5.2.2 role),
WS-Addressing 1.0 Core §3 (message addressing properties) and SOAP Binding §2-§3 (headers, reply
rules: [relationship] = request [message id]), ITI TF-2 Appendix V §V.3.2 (IHE requires
WS-Addressing on every XDS.b message; Action carries mustUnderstand="true").
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.soap import fault as faults
from gateway.soap import ns
from gateway.soap.message import Addressing

ENVELOPE = ns.qname(ns.SOAP12, "Envelope")
HEADER = ns.qname(ns.SOAP12, "Header")
BODY = ns.qname(ns.SOAP12, "Body")
ROLE_NEXT = ns.SOAP12 + "/role/next"
ROLE_ULTIMATE_RECEIVER = ns.SOAP12 + "/role/ultimateReceiver"
_OUR_ROLES = {ROLE_NEXT, ROLE_ULTIMATE_RECEIVER}

# WS-Addressing headers this node processes (Core §3.2); others with mustUnderstand are refused.
_WSA_SINGLE = ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From")
UNDERSTOOD_HEADERS = frozenset(ns.qname(ns.WSA, local) for local in (*_WSA_SINGLE, "RelatesTo"))


@dataclass(slots=True, kw_only=True)
class ParsedEnvelope:
    """The parts of a request envelope the dispatcher needs."""

    headers: list[etree._Element]
    body: etree._Element
    addressing: Addressing


def parse_envelope(root: etree._Element) -> ParsedEnvelope:
    """Check a SOAP 1.2 envelope and return its header blocks, body element and WS-A properties.

    Standard: SOAP 1.2 Part 1 §5 and §5.4.7/§5.4.8; WS-Addressing SOAP Binding §6.4.
    Raises:
        SoapFault: VersionMismatch (not a SOAP 1.2 Envelope), Sender (malformed envelope),
            MustUnderstand (a header block we do not process), WS-A faults for bad headers.
    """
    if root.tag != ENVELOPE:
        soap11 = root.tag == ns.qname(ns.SOAP11, "Envelope")
        what = "a SOAP 1.1 envelope" if soap11 else f"element {root.tag}"
        raise faults.version_mismatch(
            f"Expected a SOAP 1.2 env:Envelope, got {what}", soap11=soap11
        )
    children = [c for c in root if isinstance(c.tag, str)]
    header_el = children[0] if children and children[0].tag == HEADER else None
    rest = children[1:] if header_el is not None else children
    if len(rest) != 1 or rest[0].tag != BODY:
        raise faults.sender_fault("The envelope must hold an optional env:Header and one env:Body")
    body_children = [c for c in rest[0] if isinstance(c.tag, str)]
    if len(body_children) != 1:
        raise faults.sender_fault(
            f"env:Body must hold exactly one element (document/literal), found {len(body_children)}"
        )
    headers = [h for h in header_el if isinstance(h.tag, str)] if header_el is not None else []
    _check_must_understand(headers)
    return ParsedEnvelope(
        headers=headers, body=body_children[0], addressing=read_addressing(headers)
    )


def _targets_us(header: etree._Element) -> bool:
    role = header.get(ns.qname(ns.SOAP12, "role"))
    return role is None or role in _OUR_ROLES


def _check_must_understand(headers: list[etree._Element]) -> None:
    refused = []
    for header in headers:
        flag = header.get(ns.qname(ns.SOAP12, "mustUnderstand"), "false").strip()
        if flag not in {"true", "1", "false", "0"}:
            raise faults.sender_fault(f"Invalid env:mustUnderstand value {flag!r} on {header.tag}")
        if flag in {"true", "1"} and _targets_us(header) and header.tag not in UNDERSTOOD_HEADERS:
            refused.append(header.tag)
    if refused:
        raise faults.must_understand(refused)


def _single(headers: list[etree._Element], local: str) -> etree._Element | None:
    found = [h for h in headers if h.tag == ns.qname(ns.WSA, local) and _targets_us(h)]
    if len(found) > 1:
        raise faults.wsa_invalid_header(
            local, f"More than one wsa:{local} header", faults.WSA_INVALID_CARDINALITY
        )
    return found[0] if found else None


def _address_of(epr: etree._Element | None, local: str) -> str | None:
    if epr is None:
        return None
    address = epr.find(ns.qname(ns.WSA, "Address"))
    text = (address.text or "").strip() if address is not None else ""
    if not text:
        raise faults.wsa_invalid_header(
            local, f"wsa:{local} has no wsa:Address", ns.qname(ns.WSA, "MissingAddressInEPR")
        )
    return text


def read_addressing(headers: list[etree._Element]) -> Addressing:
    """Read the WS-Addressing 1.0 message addressing properties (Core §3.1, SOAP Binding §2.2)."""
    values: dict[str, etree._Element | None] = {
        local: _single(headers, local) for local in _WSA_SINGLE
    }
    text = {k: (v.text or "").strip() if v is not None else None for k, v in values.items()}
    relates = [h for h in headers if h.tag == ns.qname(ns.WSA, "RelatesTo")]
    return Addressing(
        action=text["Action"] or None,
        message_id=text["MessageID"] or None,
        to=text["To"] or None,
        reply_to=_address_of(values["ReplyTo"], "ReplyTo"),
        relates_to=(relates[0].text or "").strip() if relates else None,
    )


def check_reply_to(addressing: Addressing) -> None:
    """Refuse non-anonymous reply endpoints: every answer goes back on the HTTP response.

    Standard: WS-Addressing SOAP Binding §5.1.1/§6.4.1.1 (OnlyAnonymousAddressSupported); ITI TF-2
    Appendix V §V.3.2 uses synchronous request-response.
    """
    for local, address in (("ReplyTo", addressing.reply_to),):
        if address not in (None, ns.WSA_ANONYMOUS):
            raise faults.wsa_invalid_header(
                local,
                f"Only the anonymous address is supported for wsa:{local}, got {address}",
                faults.WSA_ONLY_ANONYMOUS,
            )


def new_message_id() -> str:
    """A fresh wsa:MessageID (a urn:uuid: IRI, as IHE peers expect)."""
    return f"urn:uuid:{uuid.uuid4()}"


def build_envelope(
    body: etree._Element | None,
    *,
    action: str,
    relates_to: str | None,
    extra_headers: Sequence[etree._Element] = (),
) -> etree._Element:
    """Wrap a body element in a SOAP 1.2 envelope with the WS-A reply headers.

    Standard: WS-Addressing SOAP Binding §2.2 and Core §3.3 (reply: Action, new MessageID,
    RelatesTo = the request's MessageID); ITI TF-2 Appendix V §V.3.2.
    """
    env = etree.Element(ENVELOPE, nsmap={"env": ns.SOAP12, "wsa": ns.WSA})
    header = etree.SubElement(env, HEADER)
    action_el = etree.SubElement(header, ns.qname(ns.WSA, "Action"))
    action_el.set(ns.qname(ns.SOAP12, "mustUnderstand"), "true")
    action_el.text = action
    etree.SubElement(header, ns.qname(ns.WSA, "MessageID")).text = new_message_id()
    if relates_to:
        etree.SubElement(header, ns.qname(ns.WSA, "RelatesTo")).text = relates_to
    header.extend(extra_headers)
    body_el = etree.SubElement(env, BODY)
    if body is not None:
        body_el.append(body)
    return env


def fault_envelope(fault: faults.SoapFault, *, relates_to: str | None) -> etree._Element:
    """A complete fault message: SOAP 1.2 (or SOAP 1.1 for a 1.1 sender's VersionMismatch)."""
    if fault.soap11:
        return faults.soap11_fault_envelope(fault)
    return build_envelope(
        faults.fault_element(fault),
        action=fault.action,
        relates_to=relates_to,
        extra_headers=fault.headers,
    )


def serialize(envelope: etree._Element) -> bytes:
    """Serialize an envelope as UTF-8 with an XML declaration."""
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
