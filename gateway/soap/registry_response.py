"""ebRS 3.0 RegistryResponse and RegistryErrorList, and the failure body of each transaction.

Standards: ebRS 3.0 §2.1.3 (RegistryResponse, status), ITI TF-3 §4.2.4 (RegistryError attributes:
errorCode, codeContext, severity, location; highestSeverity), ITI TF-2 §3.18.4.1.3, §3.42.4.1.3,
§3.43.4.2.3 (where the error list sits in each response), and the PartialSuccess status of ITI TF-2
§3.43.4.2.3 (``urn:ihe:iti:2007:ResponseStatusType:PartialSuccess``).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from gateway.errors import SEVERITY_ERROR, SEVERITY_WARNING, XDSError
from gateway.soap import ns
from gateway.soap.transactions import Transaction

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


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
