"""Every SOAP transaction the gateway speaks, with its wire constants, in one table.

Actions and body elements are those of the IHE WSDLs (ITI TF-2 §3.18.5, §3.41.5, §3.42.5,
§3.43.5 and ITI TF-2 Appendix V; RAD TF-3 §4.69.4). The RAD-69 response reuses the ITI-43
response action and body (RAD TF-3 §4.69.4.2.2).

XCA and XCA-I (ITI TF-2 §3.38, §3.39; RAD TF-3 §4.75): the cross-gateway transactions carry the
bodies of ITI-18, ITI-43 and RAD-69 under their own actions (ITI TF-2 §3.38.4.1.2, "the same as
ITI-18"; §3.39.4.1.2, "the same as ITI-43"; RAD TF-3 §4.75.4.1.2, "the same as RAD-69"), as
written in IHE's XCA WSDLs and the NIST toolkit's transaction table
(usnistgov/iheos-toolkit2 ``TransactionType``): ``urn:ihe:iti:2007:CrossGatewayQuery``,
``urn:ihe:iti:2007:CrossGatewayRetrieve``,
``urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet`` and their ``...Response`` actions.
The Initiating Gateway of the XDS Affinity Domain option (ITI TF-1 §18.2.1) answers local
consumers with ITI-18, ITI-43 and RAD-69 at ``/xca/ig``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
RESPONDING_GATEWAY_PATH = "/xca/rg"
INITIATING_GATEWAY_PATH = "/xca/ig"

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

ITI_38 = Transaction(
    name="ITI-38",
    title="Cross Gateway Query",
    path=RESPONDING_GATEWAY_PATH,
    action="urn:ihe:iti:2007:CrossGatewayQuery",
    response_action="urn:ihe:iti:2007:CrossGatewayQueryResponse",
    request_qname=ns.qname(ns.QUERY, "AdhocQueryRequest"),
    response_qname=ns.ADHOC_QUERY_RESPONSE,
    mtom=False,
    operation="RespondingGateway_CrossGatewayQuery",
    tf="ITI TF-2 §3.38",
)
ITI_39 = Transaction(
    name="ITI-39",
    title="Cross Gateway Retrieve",
    path=RESPONDING_GATEWAY_PATH,
    action="urn:ihe:iti:2007:CrossGatewayRetrieve",
    response_action="urn:ihe:iti:2007:CrossGatewayRetrieveResponse",
    request_qname=ns.RETRIEVE_DOCUMENT_SET_REQUEST,
    response_qname=ns.RETRIEVE_DOCUMENT_SET_RESPONSE,
    mtom=True,
    response_binary_qnames=(_DOCUMENT,),
    operation="RespondingGateway_CrossGatewayRetrieve",
    tf="ITI TF-2 §3.39",
)
RAD_75 = Transaction(
    name="RAD-75",
    title="Cross Gateway Retrieve Imaging Document Set",
    path=RESPONDING_GATEWAY_PATH,
    action="urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet",
    response_action="urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse",
    request_qname=ns.RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST,
    response_qname=ns.RETRIEVE_DOCUMENT_SET_RESPONSE,
    mtom=True,
    response_binary_qnames=(_DOCUMENT,),
    operation="RespondingGateway_CrossGatewayRetrieveImagingDocumentSet",
    tf="RAD TF-3 §4.75",
)
# XDS Metadata Update option and Remove Metadata and Documents (RMD): ITI TF-2b §3.57, §3.62,
# §3.86. ITI-57 carries an lcm:SubmitObjectsRequest, ITI-62 an lcm:RemoveObjectsRequest, ITI-86
# an rmd:RemoveDocumentsRequest (namespace urn:ihe:iti:rmd:2017); all answer rs:RegistryResponse.
ITI_57 = Transaction(
    name="ITI-57",
    title="Update Document Set",
    path=REGISTRY_PATH,
    action="urn:ihe:iti:2010:UpdateDocumentSet",
    response_action="urn:ihe:iti:2010:UpdateDocumentSetResponse",
    request_qname=ns.qname(ns.LCM, "SubmitObjectsRequest"),
    response_qname=ns.REGISTRY_RESPONSE,
    mtom=False,
    operation="DocumentRegistry_UpdateDocumentSet",
    tf="ITI TF-2b §3.57",
)
ITI_62 = Transaction(
    name="ITI-62",
    title="Delete Document Set",
    path=REGISTRY_PATH,
    action="urn:ihe:iti:2010:DeleteDocumentSet",
    response_action="urn:ihe:iti:2010:DeleteDocumentSetResponse",
    request_qname=ns.qname(ns.LCM, "RemoveObjectsRequest"),
    response_qname=ns.REGISTRY_RESPONSE,
    mtom=False,
    operation="DocumentRegistry_DeleteDocumentSet",
    tf="ITI TF-2b §3.62",
)
RMD_NS = "urn:ihe:iti:rmd:2017"
ITI_86 = Transaction(
    name="ITI-86",
    title="Remove Documents",
    path=REPOSITORY_PATH,
    action="urn:ihe:iti:2017:RemoveDocuments",
    response_action="urn:ihe:iti:2017:RemoveDocumentsResponse",
    request_qname=ns.qname(RMD_NS, "RemoveDocumentsRequest"),
    response_qname=ns.REGISTRY_RESPONSE,
    mtom=False,
    operation="DocumentRepository_RemoveDocuments",
    tf="ITI TF-2b §3.86",
)
# The Initiating (Imaging) Gateway's endpoint for local consumers: the same transactions, at
# /xca/ig (ITI TF-1 §18.2.1 XDS Affinity Domain option; RAD TF-1 XCA-I).
IG_ITI_18 = replace(ITI_18, path=INITIATING_GATEWAY_PATH)
IG_ITI_43 = replace(ITI_43, path=INITIATING_GATEWAY_PATH)
IG_RAD_69 = replace(RAD_69, path=INITIATING_GATEWAY_PATH)

# Push and notification (gateway.notify). Not in ALL/ENDPOINTS: no WSDL is served for them.
DSUB_BROKER_PATH = "/dsub/broker"
XDR_RECIPIENT_PATH = "/xdr/recipient"
_WSNT = "http://docs.oasis-open.org/wsn/b-2"
ITI_52_SUBSCRIBE = Transaction(
    name="ITI-52",
    title="Document Metadata Subscribe (Subscribe)",
    path=DSUB_BROKER_PATH,
    action="http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeRequest",
    response_action="http://docs.oasis-open.org/wsn/bw-2/NotificationProducer/SubscribeResponse",
    request_qname=ns.qname(_WSNT, "Subscribe"),
    response_qname=ns.qname(_WSNT, "SubscribeResponse"),
    mtom=False,
    operation="DocumentMetadataNotificationBroker_Subscribe",
    tf="ITI TF-2b §3.52",
)
ITI_52_UNSUBSCRIBE = Transaction(
    name="ITI-52",
    title="Document Metadata Subscribe (Unsubscribe)",
    path=DSUB_BROKER_PATH,
    action="http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeRequest",
    response_action="http://docs.oasis-open.org/wsn/bw-2/SubscriptionManager/UnsubscribeResponse",
    request_qname=ns.qname(_WSNT, "Unsubscribe"),
    response_qname=ns.qname(_WSNT, "UnsubscribeResponse"),
    mtom=False,
    operation="DocumentMetadataNotificationBroker_Unsubscribe",
    tf="ITI TF-2b §3.52",
)
# XDR (ITI TF-2b §3.41 with ITI TF-3 §4.2.4 XDR rules): ITI-41 to a Document Recipient.
XDR_ITI_41 = replace(
    ITI_41, path=XDR_RECIPIENT_PATH, operation="DocumentRecipient_ProvideAndRegisterDocumentSet-b"
)

ALL: tuple[Transaction, ...] = (
    ITI_18,
    ITI_42,
    ITI_41,
    ITI_43,
    RAD_69,
    ITI_57,
    ITI_62,
    ITI_86,
    ITI_38,
    ITI_39,
    RAD_75,
    IG_ITI_18,
    IG_ITI_43,
    IG_RAD_69,
)
ENDPOINTS: dict[str, tuple[Transaction, ...]] = {
    REGISTRY_PATH: (ITI_42, ITI_18, ITI_57, ITI_62),
    REPOSITORY_PATH: (ITI_41, ITI_43, ITI_86),
    IMAGING_SOURCE_PATH: (RAD_69,),
    RESPONDING_GATEWAY_PATH: (ITI_38, ITI_39, RAD_75),
    INITIATING_GATEWAY_PATH: (IG_ITI_18, IG_ITI_43, IG_RAD_69),
}


def by_action(path: str, action: str) -> Transaction | None:
    """Return the transaction served at ``path`` for a request ``wsa:Action``, if any."""
    for transaction in ENDPOINTS.get(path, ()):
        if transaction.action == action:
            return transaction
    return None
