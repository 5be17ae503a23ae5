"""The RetrieveDocumentSet bodies (ITI-43) in both directions: XML <-> ``repository.model``.

Request ``xdsb:RetrieveDocumentSetRequest``: one or more ``DocumentRequest`` (HomeCommunityId?,
RepositoryUniqueId, DocumentUniqueId). Response ``xdsb:RetrieveDocumentSetResponse``: an
``rs:RegistryResponse`` (status, RegistryErrorList) then one ``DocumentResponse`` per document
(HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId, mimeType, Document) whose Document holds
an ``xop:Include`` naming the MTOM part (the dispatcher streams the part from its file).

Nothing here depends on the repository actor: the consumer and the imaging source (RAD-69
answers with the same response body, RAD TF-3 §4.69.4.2.2) can use it as it is.

Standard: ITI TF-2 §3.43.4.1.2 (request), §3.43.4.2.2 (response), XDS.b_DocumentRepository.xsd;
ebRS 3.0 §2.1.3 (RegistryResponse); XOP 1.0 §2.1 (xop:Include).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from gateway.errors import XDSError
from gateway.repository.model import DocumentRequest
from gateway.soap import ns, registry_response
from gateway.soap.message import xop_include

REQUEST = ns.qname(ns.XDSB, "RetrieveDocumentSetRequest")
RESPONSE = ns.qname(ns.XDSB, "RetrieveDocumentSetResponse")
DOCUMENT_REQUEST = ns.qname(ns.XDSB, "DocumentRequest")
DOCUMENT_RESPONSE = ns.qname(ns.XDSB, "DocumentResponse")
HOME_COMMUNITY_ID = ns.qname(ns.XDSB, "HomeCommunityId")
REPOSITORY_UNIQUE_ID = ns.qname(ns.XDSB, "RepositoryUniqueId")
DOCUMENT_UNIQUE_ID = ns.qname(ns.XDSB, "DocumentUniqueId")
MIME_TYPE = ns.qname(ns.XDSB, "mimeType")
DOCUMENT = ns.qname(ns.XDSB, "Document")
REGISTRY_RESPONSE = ns.qname(ns.RS, "RegistryResponse")

_STATUS = {
    "Success": registry_response.SUCCESS,
    "PartialSuccess": registry_response.PARTIAL_SUCCESS,
    "Failure": registry_response.FAILURE,
}


@dataclass(slots=True, kw_only=True)
class DocumentResponse:
    """One DocumentResponse read from a response; ``document`` is its Document element (holding
    an xop:Include, or base64 text when the peer answered inline)."""

    request: DocumentRequest
    mime_type: str
    document: etree._Element


@dataclass(slots=True, kw_only=True)
class ReportedError:
    """One rs:RegistryError as a peer reported it."""

    code: str
    severity: str
    context: str
    location: str | None = None


@dataclass(slots=True, kw_only=True)
class ParsedResponse:
    """A RetrieveDocumentSetResponse: short status, errors and documents."""

    status: str
    errors: list[ReportedError]
    documents: list[DocumentResponse]


def _text(parent: etree._Element, tag: str) -> str | None:
    found = parent.find(tag)
    if found is None:
        return None
    return (found.text or "").strip()


def parse_request(body: etree._Element) -> list[DocumentRequest]:
    """Read the DocumentRequests of a RetrieveDocumentSetRequest (values as sent).

    Standard: ITI TF-2 §3.43.4.1.2.
    """
    return [
        DocumentRequest(
            home_community_id=_text(element, HOME_COMMUNITY_ID),
            repository_unique_id=_text(element, REPOSITORY_UNIQUE_ID),
            document_unique_id=_text(element, DOCUMENT_UNIQUE_ID),
        )
        for element in body.findall(DOCUMENT_REQUEST)
    ]


def _add_ids(parent: etree._Element, request: DocumentRequest) -> None:
    # Schema order: HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId.
    if request.home_community_id is not None:
        etree.SubElement(parent, HOME_COMMUNITY_ID).text = request.home_community_id
    etree.SubElement(parent, REPOSITORY_UNIQUE_ID).text = request.repository_unique_id or ""
    etree.SubElement(parent, DOCUMENT_UNIQUE_ID).text = request.document_unique_id or ""


def build_request(requests: Iterable[DocumentRequest]) -> etree._Element:
    """Build a RetrieveDocumentSetRequest. Standard: ITI TF-2 §3.43.4.1.2."""
    body = etree.Element(REQUEST, nsmap={"xdsb": ns.XDSB})
    for request in requests:
        _add_ids(etree.SubElement(body, DOCUMENT_REQUEST), request)
    return body


def build_response(
    status: str,
    errors: Sequence[XDSError],
    documents: Iterable[tuple[DocumentRequest, str, str]],
) -> etree._Element:
    """Build a RetrieveDocumentSetResponse: ``status`` is Success, PartialSuccess or Failure;
    ``documents`` are (request, mimeType, Content-ID of the MTOM part) in request order.

    The HomeCommunityId of each request is echoed. Standard: ITI TF-2 §3.43.4.2.2-3.
    """
    body = etree.Element(RESPONSE, nsmap={"xdsb": ns.XDSB, "rs": ns.RS, "xop": ns.XOP})
    body.append(registry_response.registry_response(_STATUS[status], errors))
    for request, mime_type, content_id in documents:
        response = etree.SubElement(body, DOCUMENT_RESPONSE)
        _add_ids(response, request)
        etree.SubElement(response, MIME_TYPE).text = mime_type
        etree.SubElement(response, DOCUMENT).append(xop_include(content_id))
    return body


def parse_response(body: etree._Element) -> ParsedResponse:
    """Read a RetrieveDocumentSetResponse. Standard: ITI TF-2 §3.43.4.2.2.

    Raises:
        ValueError: the element is not a RetrieveDocumentSetResponse with a RegistryResponse.
    """
    if body.tag != RESPONSE:
        raise ValueError(f"expected {RESPONSE}, got {body.tag}")
    inner = body.find(REGISTRY_RESPONSE)
    if inner is None:
        raise ValueError("RetrieveDocumentSetResponse without rs:RegistryResponse")
    documents = []
    for element in body.findall(DOCUMENT_RESPONSE):
        document = element.find(DOCUMENT)
        if document is None:
            raise ValueError("DocumentResponse without Document")
        request = DocumentRequest(
            home_community_id=_text(element, HOME_COMMUNITY_ID),
            repository_unique_id=_text(element, REPOSITORY_UNIQUE_ID),
            document_unique_id=_text(element, DOCUMENT_UNIQUE_ID),
        )
        mime_type = _text(element, MIME_TYPE) or ""
        documents.append(DocumentResponse(request=request, mime_type=mime_type, document=document))
    return ParsedResponse(
        status=inner.get("status", "").rsplit(":", 1)[-1],
        errors=reported_errors(inner),
        documents=documents,
    )


def reported_errors(response: etree._Element) -> list[ReportedError]:
    """The rs:RegistryError elements below an element (a RegistryResponse or what holds one).

    Standard: ITI TF-3 §4.2.4 (errorCode, codeContext, severity, location).
    """
    return [
        ReportedError(
            code=error.get("errorCode", ""),
            severity=error.get("severity", "").rsplit(":", 1)[-1],
            context=error.get("codeContext", ""),
            location=error.get("location"),
        )
        for error in response.iter(ns.qname(ns.RS, "RegistryError"))
    ]
