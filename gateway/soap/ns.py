"""Every XML namespace and QName the gateway speaks, declared once.

Standards: SOAP 1.2 Part 1 §5 (envelope namespace), WS-Addressing 1.0 Core and SOAP Binding
(W3C REC 2006-05-09), XOP 1.0 (W3C REC 2005-01-25), ebXML RegRep 3.0 (ebRIM/ebRS), ITI TF-2
Appendix V (XDS.b), RAD TF-3 §4.69 (XDS-I.b).
"""

from __future__ import annotations

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
XMIME = "http://www.w3.org/2005/05/xmlmime"
XML = "http://www.w3.org/XML/1998/namespace"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
IHERAD = "urn:ihe:rad:xdsi-b:2009"

# Prefixes used when the gateway writes XML (peers must not depend on them, but humans read logs).
NSMAP: dict[str, str] = {
    "env": SOAP12,
    "wsa": WSA,
    "xop": XOP,
    "rim": RIM,
    "rs": RS,
    "lcm": LCM,
    "query": QUERY,
    "xdsb": XDSB,
    "iherad": IHERAD,
}


def qname(namespace: str, local: str) -> str:
    """Return the Clark notation ``{namespace}local`` lxml uses for element names."""
    return f"{{{namespace}}}{local}"


# Body elements shared by several transactions and actors (the transaction table and the body
# codec ``gateway.metadata.retrieve`` name them from here). ebRS 3.0 rs.xsd; ITI TF-2 §3.43.4
# (XDS.b_DocumentRepository.xsd); RAD TF-3 §4.69.4 (XDSI.b_ImagingDocumentSource.xsd).
REGISTRY_RESPONSE = qname(RS, "RegistryResponse")
REGISTRY_ERROR_LIST = qname(RS, "RegistryErrorList")
REGISTRY_ERROR = qname(RS, "RegistryError")
ADHOC_QUERY_RESPONSE = qname(QUERY, "AdhocQueryResponse")
RETRIEVE_DOCUMENT_SET_REQUEST = qname(XDSB, "RetrieveDocumentSetRequest")
RETRIEVE_DOCUMENT_SET_RESPONSE = qname(XDSB, "RetrieveDocumentSetResponse")
RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST = qname(IHERAD, "RetrieveImagingDocumentSetRequest")


def split_qname(clark: str) -> tuple[str, str]:
    """Split ``{ns}local`` into ``(ns, local)``; a name without namespace gives ``("", local)``."""
    if clark.startswith("{"):
        ns, _, local = clark[1:].partition("}")
        return ns, local
    return "", clark


# WS-Addressing 1.0 well-known values (Core §2.1, §3.2; SOAP Binding §6).
WSA_ANONYMOUS = WSA + "/anonymous"
WSA_NONE = WSA + "/none"
WSA_FAULT_ACTION = WSA + "/fault"  # WS-Addressing faults (SOAP Binding §6)
WSA_SOAP_FAULT_ACTION = WSA + "/soap/fault"  # SOAP-defined faults (SOAP Binding §6)

# MIME types (SOAP 1.2 Part 2 §7.1.4 / RFC 3902; XOP §4.1, SOAP MTOM §4.3).
SOAP12_MEDIA_TYPE = "application/soap+xml"
XOP_MEDIA_TYPE = "application/xop+xml"
