"""SOAP 1.2 faults, including the WS-Addressing 1.0 faults, as exceptions the dispatcher answers.

Standards: SOAP 1.2 Part 1 §5.4 (Fault: Code/Value, Subcode, Reason/Text with xml:lang, Detail;
§5.4.6 fault codes; §5.4.7 VersionMismatch and the Upgrade header of §5.4.7.1; §5.4.8 MustUnderstand
and NotUnderstood), SOAP 1.2 Part 2 §7.5.2.2 Table 20 (HTTP status per fault code),
WS-Addressing 1.0 SOAP Binding §6 (fault actions, subcodes and details), SOAP 1.1 §4.4 (the
VersionMismatch answer a SOAP 1.1 sender can read, SOAP 1.2 Part 1 Appendix A).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from gateway.soap import ns

SENDER = ns.qname(ns.SOAP12, "Sender")
RECEIVER = ns.qname(ns.SOAP12, "Receiver")
VERSION_MISMATCH = ns.qname(ns.SOAP12, "VersionMismatch")
MUST_UNDERSTAND = ns.qname(ns.SOAP12, "MustUnderstand")
DATA_ENCODING_UNKNOWN = ns.qname(ns.SOAP12, "DataEncodingUnknown")

# WS-Addressing 1.0 SOAP Binding §6.4 subcodes.
WSA_INVALID_HEADER = ns.qname(ns.WSA, "InvalidAddressingHeader")
WSA_HEADER_REQUIRED = ns.qname(ns.WSA, "MessageAddressingHeaderRequired")
WSA_ACTION_NOT_SUPPORTED = ns.qname(ns.WSA, "ActionNotSupported")
WSA_DESTINATION_UNREACHABLE = ns.qname(ns.WSA, "DestinationUnreachable")
WSA_ENDPOINT_UNAVAILABLE = ns.qname(ns.WSA, "EndpointUnavailable")
WSA_INVALID_CARDINALITY = ns.qname(ns.WSA, "InvalidCardinality")
WSA_ACTION_MISMATCH = ns.qname(ns.WSA, "ActionMismatch")
WSA_ONLY_ANONYMOUS = ns.qname(ns.WSA, "OnlyAnonymousAddressSupported")

# SOAP 1.2 Part 2 Table 20: env:Sender -> 400, every other fault code -> 500.
_HTTP_STATUS = {SENDER: 400}


@dataclass(slots=True, kw_only=True)
class SoapFault(Exception):
    """A fault to answer instead of a response.

    ``subcodes`` nest in order (Subcode/Value, then its Subcode/Value, ...). ``detail`` elements go
    into env:Detail; ``headers`` are extra header blocks of the fault message (env:NotUnderstood,
    env:Upgrade). ``action`` is the wsa:Action of the fault message.
    """

    code: str
    reason: str
    subcodes: tuple[str, ...] = ()
    detail: list[etree._Element] = field(default_factory=list)
    headers: list[etree._Element] = field(default_factory=list)
    action: str = ns.WSA_FAULT_ACTION
    soap11: bool = False  # answer in a SOAP 1.1 envelope (VersionMismatch to a 1.1 sender)
    status: int | None = None  # HTTP status when the binding names one (e.g. 415), else Table 20

    def __post_init__(self) -> None:
        Exception.__init__(self, self.reason)

    @property
    def http_status(self) -> int:
        """HTTP status for this fault, SOAP 1.2 Part 2 §7.5.2.2 Table 20."""
        if self.status is not None:
            return self.status
        return _HTTP_STATUS.get(self.code, 500)


def sender_fault(reason: str, *subcodes: str) -> SoapFault:
    """An env:Sender fault: the message was malformed or not acceptable (SOAP 1.2 Part 1 §5.4.6)."""
    return SoapFault(code=SENDER, reason=reason, subcodes=subcodes, action=ns.WSA_SOAP_FAULT_ACTION)


def too_large(reason: str) -> SoapFault:
    """An env:Sender fault sent with HTTP 413 Content Too Large: a request over a size limit.

    The fault code is env:Sender (Part 1 §5.4.6: not to be resent unchanged). The HTTP status
    is 413 rather than Table 20's 400 because the limit is the HTTP binding's, enforced while
    the body is still arriving and before any SOAP processing (as 415 is for a wrong media
    type): RFC 9110 §15.5.14 defines 413 for exactly this and lets the server close the
    connection instead of reading the rest, which the server does. A SOAP client that reads
    the envelope of any 4xx answer (SOAP 1.2 Part 2 §7.5.1.2) still finds env:Sender.
    """
    return SoapFault(code=SENDER, reason=reason, action=ns.WSA_SOAP_FAULT_ACTION, status=413)


def receiver_fault(reason: str, *subcodes: str) -> SoapFault:
    """An env:Receiver fault: the message was fine but could not be processed here."""
    return SoapFault(
        code=RECEIVER, reason=reason, subcodes=subcodes, action=ns.WSA_SOAP_FAULT_ACTION
    )


def version_mismatch(reason: str, *, soap11: bool) -> SoapFault:
    """VersionMismatch with the env:Upgrade header naming SOAP 1.2 (Part 1 §5.4.7, Appendix A)."""
    upgrade = etree.Element(ns.qname(ns.SOAP12, "Upgrade"), nsmap={"env": ns.SOAP12})
    supported = etree.SubElement(upgrade, ns.qname(ns.SOAP12, "SupportedEnvelope"))
    supported.set("qname", "env:Envelope")
    return SoapFault(
        code=VERSION_MISMATCH,
        reason=reason,
        headers=[upgrade],
        action=ns.WSA_SOAP_FAULT_ACTION,
        soap11=soap11,
    )


def must_understand(header_qnames: list[str]) -> SoapFault:
    """MustUnderstand with one env:NotUnderstood header per header block (Part 1 §5.4.8)."""
    headers = []
    for clark in header_qnames:
        namespace, local = ns.split_qname(clark)
        element = etree.Element(
            ns.qname(ns.SOAP12, "NotUnderstood"),
            nsmap={"env": ns.SOAP12, "p": namespace} if namespace else None,
        )
        element.set("qname", f"p:{local}" if namespace else local)
        headers.append(element)
    names = ", ".join(header_qnames)
    return SoapFault(
        code=MUST_UNDERSTAND,
        reason=f"Header not understood: {names}",
        headers=headers,
        action=ns.WSA_SOAP_FAULT_ACTION,
    )


def _problem_header(header_local: str) -> etree._Element:
    element = etree.Element(ns.qname(ns.WSA, "ProblemHeaderQName"), nsmap={"wsa": ns.WSA})
    element.text = f"wsa:{header_local}"
    return element


def wsa_header_required(header_local: str) -> SoapFault:
    """wsa:MessageAddressingHeaderRequired (WS-Addressing SOAP Binding §6.4.2)."""
    return SoapFault(
        code=SENDER,
        subcodes=(WSA_HEADER_REQUIRED,),
        reason=f"A required header representing a Message Addressing Property is not "
        f"present: wsa:{header_local}",
        detail=[_problem_header(header_local)],
    )


def wsa_invalid_header(header_local: str, reason: str, subsubcode: str | None = None) -> SoapFault:
    """wsa:InvalidAddressingHeader, optionally with a more precise subcode (SOAP Binding §6.4.1)."""
    subcodes = (WSA_INVALID_HEADER,) + ((subsubcode,) if subsubcode else ())
    return SoapFault(
        code=SENDER, subcodes=subcodes, reason=reason, detail=[_problem_header(header_local)]
    )


def wsa_action_not_supported(action: str, reason: str | None = None) -> SoapFault:
    """wsa:ActionNotSupported with the wsa:ProblemAction detail (SOAP Binding §6.4.4)."""
    problem = etree.Element(ns.qname(ns.WSA, "ProblemAction"), nsmap={"wsa": ns.WSA})
    etree.SubElement(problem, ns.qname(ns.WSA, "Action")).text = action
    return SoapFault(
        code=SENDER,
        subcodes=(WSA_ACTION_NOT_SUPPORTED,),
        reason=reason or f"The [action] cannot be processed at the receiver: {action}",
        detail=[problem],
    )


def fault_element(fault: SoapFault) -> etree._Element:
    """Build the env:Fault element of a SOAP 1.2 fault (Part 1 §5.4)."""
    nsmap = {"env": ns.SOAP12, "wsa": ns.WSA}
    root = etree.Element(ns.qname(ns.SOAP12, "Fault"), nsmap=nsmap)
    code = etree.SubElement(root, ns.qname(ns.SOAP12, "Code"))
    _value(code, fault.code)
    parent = code
    for subcode in fault.subcodes:
        parent = etree.SubElement(parent, ns.qname(ns.SOAP12, "Subcode"))
        _value(parent, subcode)
    reason = etree.SubElement(root, ns.qname(ns.SOAP12, "Reason"))
    text = etree.SubElement(reason, ns.qname(ns.SOAP12, "Text"))
    text.set(ns.qname(ns.XML, "lang"), "en")
    text.text = fault.reason
    if fault.detail:
        detail = etree.SubElement(root, ns.qname(ns.SOAP12, "Detail"))
        detail.extend(fault.detail)
    return root


def _value(parent: etree._Element, clark: str) -> None:
    namespace, local = ns.split_qname(clark)
    known = {ns.SOAP12: "env", ns.WSA: "wsa"}
    prefix = known.get(namespace)
    if prefix is None:
        prefix = "q"
        value = etree.SubElement(parent, ns.qname(ns.SOAP12, "Value"), nsmap={prefix: namespace})
    else:
        value = etree.SubElement(parent, ns.qname(ns.SOAP12, "Value"))
    value.text = f"{prefix}:{local}"


def soap11_fault_envelope(fault: SoapFault) -> etree._Element:
    """A SOAP 1.1 envelope carrying a VersionMismatch fault and the SOAP 1.2 Upgrade header."""
    env = etree.Element(ns.qname(ns.SOAP11, "Envelope"), nsmap={"soap11": ns.SOAP11})
    header = etree.SubElement(env, ns.qname(ns.SOAP11, "Header"))
    header.extend(fault.headers)
    body = etree.SubElement(env, ns.qname(ns.SOAP11, "Body"))
    fault_el = etree.SubElement(body, ns.qname(ns.SOAP11, "Fault"))
    etree.SubElement(fault_el, "faultcode").text = "soap11:VersionMismatch"
    etree.SubElement(fault_el, "faultstring").text = fault.reason
    return env
