"""ebRS 3.0 RegistryResponse and RegistryErrorList, written and read, and the failure body of each
transaction.

Writing is strict (full status URNs, every attribute); reading is lenient: a status in short form
(``Success``) is understood, and a RegistryError's text is read when ``codeContext`` is absent.

Standards: ebRS 3.0 §2.1.3 (RegistryResponse, status), ITI TF-3 §4.2.4 (RegistryError attributes:
errorCode, codeContext, severity, location; highestSeverity), ITI TF-2 §3.18.4.1.3, §3.42.4.1.3,
§3.43.4.2.3 (where the error list sits in each response), and the PartialSuccess status of ITI TF-2
§3.43.4.2.3 (``urn:ihe:iti:2007:ResponseStatusType:PartialSuccess``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import SEVERITY_ERROR, SEVERITY_WARNING, XDSError
from gateway.soap import ns
from gateway.soap.transactions import Transaction

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"

_REGISTRY_RESPONSE = ns.qname(ns.RS, "RegistryResponse")
_REGISTRY_ERROR = ns.qname(ns.RS, "RegistryError")


class ResponseFormatError(ValueError):
    """A peer's response body does not have the structure the transaction defines."""


def error_list(errors: Iterable[XDSError]) -> etree._Element | None:
    """Build rs:RegistryErrorList with highestSeverity, or None when there are no errors."""
    errors = [e for error in errors for e in error]
    if not errors:
        return None
    element = etree.Element(ns.qname(ns.RS, "RegistryErrorList"), nsmap={"rs": ns.RS})
    worst = SEVERITY_ERROR if any(not e.is_warning for e in errors) else SEVERITY_WARNING
    element.set("highestSeverity", worst)
    for error in errors:
        item = etree.SubElement(element, ns.qname(ns.RS, "RegistryError"))
        item.set("errorCode", error.code)
        item.set("codeContext", error.context)
        item.set("severity", error.severity)
        if error.location:
            item.set("location", error.location)
    return element


def status_for(errors: Iterable[XDSError], *, partial: bool = False) -> str:
    """Success when only warnings, Failure on any error (or PartialSuccess when asked)."""
    has_error = any(not e.is_warning for error in errors for e in error)
    if not has_error:
        return SUCCESS
    return PARTIAL_SUCCESS if partial else FAILURE


def registry_response(status: str, errors: Iterable[XDSError] = ()) -> etree._Element:
    """Build rs:RegistryResponse with a status and the error list (ebRS 3.0 §2.1.3)."""
    element = etree.Element(ns.qname(ns.RS, "RegistryResponse"), nsmap={"rs": ns.RS})
    element.set("status", status)
    errors_el = error_list(errors)
    if errors_el is not None:
        element.append(errors_el)
    return element


def failure_body(transaction: Transaction, errors: Iterable[XDSError]) -> etree._Element:
    """The response body a transaction returns when it fails with XDS errors.

    ITI-41/42: rs:RegistryResponse. ITI-18: query:AdhocQueryResponse (an rs:RegistryResponseType
    with an empty rim:RegistryObjectList, which query.xsd requires; ITI TF-2 §3.18.4.1.3).
    ITI-43/RAD-69: xdsb:RetrieveDocumentSetResponse holding an rs:RegistryResponse
    (ITI TF-2 §3.43.4.2.2).
    """
    errors = list(errors)
    status = status_for(errors)
    if transaction.response_qname == ns.qname(ns.RS, "RegistryResponse"):
        return registry_response(status, errors)
    if transaction.response_qname == ns.qname(ns.QUERY, "AdhocQueryResponse"):
        element = etree.Element(
            transaction.response_qname, nsmap={"query": ns.QUERY, "rs": ns.RS, "rim": ns.RIM}
        )
        element.set("status", status)
        errors_el = error_list(errors)
        if errors_el is not None:
            element.append(errors_el)
        # query.xsd requires the (here empty) RegistryObjectList after the error list.
        etree.SubElement(element, ns.qname(ns.RIM, "RegistryObjectList"))
        return element
    element = etree.Element(transaction.response_qname, nsmap={"xdsb": ns.XDSB, "rs": ns.RS})
    element.append(registry_response(status, errors))
    return element


# -- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseError:
    """One ``rs:RegistryError`` as a peer reported it (ebRS 3.0 rs.xsd; ITI TF-3 §4.2.4.1)."""

    code: str
    context: str = ""
    severity: str = SEVERITY_ERROR
    location: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.severity.endswith(":Warning") or self.severity == "Warning"

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.code}: {self.context}{where}" if self.context else f"{self.code}{where}"


def short_status(status: str | None) -> str:
    """``Success``, ``PartialSuccess`` or ``Failure`` from a status URN (or its short form);
    "" when there is none. Standard: ebRS 3.0 §2.1.3, ITI TF-2 §3.43.4.2.3."""
    return status.rsplit(":", 1)[-1] if status else ""


def read_errors(holder: etree._Element | None) -> list[ResponseError]:
    """Every ``rs:RegistryError`` below an element (a RegistryResponse, an AdhocQueryResponse, a
    RetrieveDocumentSetResponse), in document order. Standard: ITI TF-3 §4.2.4.1."""
    if holder is None:
        return []
    return [
        ResponseError(
            code=error.get("errorCode", ""),
            context=(error.get("codeContext") or error.text or "").strip(),
            severity=error.get("severity", SEVERITY_ERROR),
            location=error.get("location") or None,
        )
        for error in holder.iter(_REGISTRY_ERROR)
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseStatus:
    """What an ``rs:RegistryResponse`` says: its status (as sent) and its errors."""

    status: str
    errors: tuple[ResponseError, ...] = field(default_factory=tuple)

    @property
    def short(self) -> str:
        """``Success``, ``PartialSuccess``, ``Failure`` (or "" when absent)."""
        return short_status(self.status)

    @property
    def ok(self) -> bool:
        return self.short == "Success"


def read_registry_response(element: etree._Element) -> ResponseStatus:
    """Read an ``rs:RegistryResponse`` (the answer of ITI-41, ITI-42 and RAD-68).

    Standard: ebRS 3.0 §2.1.3; ITI TF-2 §3.41.4.2, §3.42.4.2.
    Raises: ResponseFormatError for another element.
    """
    if element.tag != _REGISTRY_RESPONSE:
        raise ResponseFormatError(f"expected rs:RegistryResponse, got {element.tag}")
    return ResponseStatus(status=element.get("status", ""), errors=tuple(read_errors(element)))


def response_status(element: etree._Element) -> str:
    """The short status of an ``rs:RegistryResponse`` (``Success``, ``Failure``,
    ``PartialSuccess`` or what else it says); "" when absent or not a RegistryResponse.
    Standard: ebRS 3.0 §2.1.3, ITI TF-2 §3.42.4.2."""
    if element.tag != _REGISTRY_RESPONSE:
        return ""
    return short_status(element.get("status", ""))
