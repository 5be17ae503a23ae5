"""Every SOAP transaction the gateway speaks, with its wire constants, in one table.

Actions and body elements are those of the IHE WSDLs (ITI TF-2 §3.18.5, §3.41.5, §3.42.5,
§3.43.5 and ITI TF-2 Appendix V; RAD TF-3 §4.69.4). The RAD-69 response reuses the ITI-43
response action and body (RAD TF-3 §4.69.4.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.soap import ns


@dataclass(frozen=True, slots=True, kw_only=True)
class Transaction:
    """A SOAP transaction: where it is served and how it looks on the wire."""

    name: str  # the TF keyword, e.g. "ITI-42"
    title: str
    path: str  # endpoint path of ARCHITECTURE.md
    action: str  # request wsa:Action
    response_action: str
    request_qname: str  # Clark notation of the request body element
    response_qname: str
    mtom: bool  # IHE requires MTOM/XOP packaging (ITI TF-2 Appendix V §V.3.3.2.2)
    binary_qnames: tuple[str, ...] = ()  # request elements of type base64Binary (xop candidates)
    response_binary_qnames: tuple[str, ...] = ()
    operation: str  # WSDL operation name
    tf: str  # where the standard defines it


REGISTRY_PATH = "/xds/registry"
REPOSITORY_PATH = "/xds/repository"
IMAGING_SOURCE_PATH = "/xdsi/source"

_DOCUMENT = ns.qname(ns.XDSB, "Document")

ITI_18 = Transaction(
    name="ITI-18",
    title="Registry Stored Query",
    path=REGISTRY_PATH,
    action="urn:ihe:iti:2007:RegistryStoredQuery",
    response_action="urn:ihe:iti:2007:RegistryStoredQueryResponse",
    request_qname=ns.qname(ns.QUERY, "AdhocQueryRequest"),
    response_qname=ns.ADHOC_QUERY_RESPONSE,
    mtom=False,
    operation="DocumentRegistry_RegistryStoredQuery",
    tf="ITI TF-2 §3.18",
)
ITI_42 = Transaction(
    name="ITI-42",
    title="Register Document Set-b",
    path=REGISTRY_PATH,
    action="urn:ihe:iti:2007:RegisterDocumentSet-b",
    response_action="urn:ihe:iti:2007:RegisterDocumentSet-bResponse",
    request_qname=ns.qname(ns.LCM, "SubmitObjectsRequest"),
    response_qname=ns.REGISTRY_RESPONSE,
    mtom=False,
    operation="DocumentRegistry_RegisterDocumentSet-b",
    tf="ITI TF-2 §3.42",
)
ITI_41 = Transaction(
    name="ITI-41",
    title="Provide and Register Document Set-b",
    path=REPOSITORY_PATH,
    action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
    response_action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
    request_qname=ns.qname(ns.XDSB, "ProvideAndRegisterDocumentSetRequest"),
    response_qname=ns.REGISTRY_RESPONSE,
    mtom=True,
    binary_qnames=(_DOCUMENT,),
    operation="DocumentRepository_ProvideAndRegisterDocumentSet-b",
    tf="ITI TF-2 §3.41",
)
ITI_43 = Transaction(
    name="ITI-43",
    title="Retrieve Document Set",
    path=REPOSITORY_PATH,
    action="urn:ihe:iti:2007:RetrieveDocumentSet",
    response_action="urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    request_qname=ns.RETRIEVE_DOCUMENT_SET_REQUEST,
    response_qname=ns.RETRIEVE_DOCUMENT_SET_RESPONSE,
    mtom=True,
    response_binary_qnames=(_DOCUMENT,),
    operation="DocumentRepository_RetrieveDocumentSet",
    tf="ITI TF-2 §3.43",
)
RAD_69 = Transaction(
    name="RAD-69",
    title="Retrieve Imaging Document Set",
    path=IMAGING_SOURCE_PATH,
    action="urn:ihe:rad:2009:RetrieveImagingDocumentSet",
    response_action="urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    request_qname=ns.RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST,
    response_qname=ns.RETRIEVE_DOCUMENT_SET_RESPONSE,
    mtom=True,
    response_binary_qnames=(_DOCUMENT,),
    operation="ImagingDocumentSource_RetrieveImagingDocumentSet",
    tf="RAD TF-3 §4.69",
)

ALL: tuple[Transaction, ...] = (ITI_18, ITI_42, ITI_41, ITI_43, RAD_69)
ENDPOINTS: dict[str, tuple[Transaction, ...]] = {
    REGISTRY_PATH: (ITI_42, ITI_18),
    REPOSITORY_PATH: (ITI_41, ITI_43),
    IMAGING_SOURCE_PATH: (RAD_69,),
}


def by_action(path: str, action: str) -> Transaction | None:
    """Return the transaction served at ``path`` for a request ``wsa:Action``, if any."""
    for transaction in ENDPOINTS.get(path, ()):
        if transaction.action == action:
            return transaction
    return None
