"""The RAD-69 bodies: RetrieveImagingDocumentSetRequest and the RetrieveDocumentSetResponse.

Request (RAD TF-3 §4.69.4.1.2, schema XDSI.b_ImagingDocumentSource.xsd)::

    iherad:RetrieveImagingDocumentSetRequest
      iherad:StudyRequest @studyInstanceUID            (1..n)
        iherad:SeriesRequest @seriesInstanceUID        (1..n)
          xdsb:DocumentRequest                         (1..n)
            xdsb:HomeCommunityId? xdsb:RepositoryUniqueId xdsb:DocumentUniqueId
      iherad:TransferSyntaxUIDList
        iherad:TransferSyntaxUID                       (1..n)

Response (RAD TF-3 §4.69.4.2.2 = ITI TF-2 §3.43.4.2.2): xdsb:RetrieveDocumentSetResponse with an
rs:RegistryResponse (status, RegistryErrorList) and one xdsb:DocumentResponse per returned
instance (HomeCommunityId echoed when the request had it, RepositoryUniqueId, DocumentUniqueId,
mimeType, Document as an xop:Include of an MTOM part).

Malformed requests: an empty or missing study or series UID, or a level without children, is
XDSIRequestError (RAD TF-3 §4.69.4.2.3, NIST ids_2018-4811 cases 5-7); an empty transfer syntax
list is XDSRepositoryError (NIST case 8). Both directions are here so the consumer side and the
tests share one codec (round trip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway.errors import (
    SEVERITY_ERROR,
    XDSError,
    XDSErrorList,
    XDSIRequestError,
    XDSRepositoryError,
)
from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href, xop_include
from gateway.soap.registry_response import registry_response

_RAD = ns.IHERAD
_XDSB = ns.XDSB
REQUEST = ns.qname(_RAD, "RetrieveImagingDocumentSetRequest")
RESPONSE = ns.qname(_XDSB, "RetrieveDocumentSetResponse")
_STUDY = ns.qname(_RAD, "StudyRequest")
_SERIES = ns.qname(_RAD, "SeriesRequest")
_SYNTAX_LIST = ns.qname(_RAD, "TransferSyntaxUIDList")
_SYNTAX = ns.qname(_RAD, "TransferSyntaxUID")
_DOC_REQUEST = ns.qname(_XDSB, "DocumentRequest")
_DOC_RESPONSE = ns.qname(_XDSB, "DocumentResponse")
_HOME = ns.qname(_XDSB, "HomeCommunityId")
_REPOSITORY = ns.qname(_XDSB, "RepositoryUniqueId")
_DOCUMENT_ID = ns.qname(_XDSB, "DocumentUniqueId")
_MIME = ns.qname(_XDSB, "mimeType")
_DOCUMENT = ns.qname(_XDSB, "Document")
_REGISTRY_RESPONSE = ns.qname(ns.RS, "RegistryResponse")
_REGISTRY_ERROR = ns.qname(ns.RS, "RegistryError")


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRequest:
    """One requested instance (SOP Instance UID as DocumentUniqueId)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRequest:
    series_instance_uid: str
    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyRequest:
    study_instance_uid: str
    series: tuple[SeriesRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingRetrieveRequest:
    """A parsed RetrieveImagingDocumentSetRequest."""

    studies: tuple[StudyRequest, ...]
    transfer_syntaxes: tuple[str, ...]


@dataclass(slots=True, kw_only=True)
class DocumentResponse:
    """One returned instance."""

    repository_unique_id: str
    document_unique_id: str
    attachment: Attachment
    mime_type: str = "application/dicom"
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseError:
    """An rs:RegistryError as read from a response."""

    code: str
    context: str
    severity: str = SEVERITY_ERROR
    location: str | None = None


@dataclass(slots=True, kw_only=True)
class RetrieveResponse:
    """A RetrieveDocumentSetResponse: status, errors and documents."""

    status: str
    errors: list[XDSError] = field(default_factory=list)
    documents: list[DocumentResponse] = field(default_factory=list)


def _text(parent: etree._Element, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "").strip() if found is not None else ""


def parse_request(element: etree._Element) -> ImagingRetrieveRequest:
    """Read a RetrieveImagingDocumentSetRequest.

    Standard: RAD TF-3 §4.69.4.1.2. Raises: XDSErrorList of XDSIRequestError (empty or missing
    UIDs, levels without children), XDSRepositoryError (no transfer syntax listed).
    """
    if element.tag != REQUEST:
        raise XDSIRequestError(
            f"expected iherad:RetrieveImagingDocumentSetRequest, got {element.tag}"
        )
    problems: list[XDSError] = []
    studies = tuple(_study(study, problems) for study in element.findall(_STUDY))
    if not studies:
        problems.append(XDSIRequestError("RetrieveImagingDocumentSetRequest has no StudyRequest"))
    syntax_list = element.find(_SYNTAX_LIST)
    syntaxes: tuple[str, ...] = ()
    if syntax_list is None:
        problems.append(
            XDSIRequestError("RetrieveImagingDocumentSetRequest has no TransferSyntaxUIDList")
        )
    else:
        syntaxes = tuple(
            (item.text or "").strip()
            for item in syntax_list.findall(_SYNTAX)
            if (item.text or "").strip()
        )
        if not syntaxes and not problems:
            problems.append(XDSRepositoryError("TransferSyntaxUIDList names no transfer syntax"))
    if problems:
        raise XDSErrorList(problems)
    return ImagingRetrieveRequest(studies=studies, transfer_syntaxes=syntaxes)


def _study(element: etree._Element, problems: list[XDSError]) -> StudyRequest:
    uid = (element.get("studyInstanceUID") or "").strip()
    if not uid:
        problems.append(XDSIRequestError("StudyRequest: studyInstanceUID is missing or empty"))
    series = tuple(_series(item, uid, problems) for item in element.findall(_SERIES))
    if not series:
        problems.append(
            XDSIRequestError(f"StudyRequest {uid} has no SeriesRequest", location=uid or None)
        )
    return StudyRequest(study_instance_uid=uid, series=series)


def _series(element: etree._Element, study: str, problems: list[XDSError]) -> SeriesRequest:
    uid = (element.get("seriesInstanceUID") or "").strip()
    if not uid:
        problems.append(
            XDSIRequestError(
                f"SeriesRequest of study {study}: seriesInstanceUID is missing or empty"
            )
        )
    documents = []
    for item in element.findall(_DOC_REQUEST):
        document_uid = _text(item, _DOCUMENT_ID)
        if not document_uid:
            problems.append(
                XDSIRequestError(f"DocumentRequest of series {uid}: no DocumentUniqueId")
            )
        documents.append(
            DocumentRequest(
                repository_unique_id=_text(item, _REPOSITORY),
                document_unique_id=document_uid,
                home_community_id=_text(item, _HOME) or None,
            )
        )
    if not documents:
        problems.append(
            XDSIRequestError(f"SeriesRequest {uid} has no DocumentRequest", location=uid or None)
        )
    return SeriesRequest(series_instance_uid=uid, documents=tuple(documents))


def build_request(request: ImagingRetrieveRequest) -> etree._Element:
    """Write a RetrieveImagingDocumentSetRequest (RAD TF-3 §4.69.4.1.2)."""
    root = etree.Element(REQUEST, nsmap={"iherad": _RAD, "xdsb": _XDSB})
    for study in request.studies:
        study_el = etree.SubElement(root, _STUDY, studyInstanceUID=study.study_instance_uid)
        for series in study.series:
            series_el = etree.SubElement(
                study_el, _SERIES, seriesInstanceUID=series.series_instance_uid
            )
            for document in series.documents:
                item = etree.SubElement(series_el, _DOC_REQUEST)
                if document.home_community_id:
                    etree.SubElement(item, _HOME).text = document.home_community_id
                etree.SubElement(item, _REPOSITORY).text = document.repository_unique_id
                etree.SubElement(item, _DOCUMENT_ID).text = document.document_unique_id
    syntax_list = etree.SubElement(root, _SYNTAX_LIST)
    for syntax in request.transfer_syntaxes:
        etree.SubElement(syntax_list, _SYNTAX).text = syntax
    return root


def build_response(response: RetrieveResponse) -> etree._Element:
    """Write the RetrieveDocumentSetResponse (ITI TF-2 §3.43.4.2.2, element order of
    XDS.b_DocumentRepository.xsd)."""
    root = etree.Element(RESPONSE, nsmap={"xdsb": _XDSB, "rs": ns.RS})
    root.append(registry_response(response.status, response.errors))
    for document in response.documents:
        item = etree.SubElement(root, _DOC_RESPONSE)
        if document.home_community_id:
            etree.SubElement(item, _HOME).text = document.home_community_id
        etree.SubElement(item, _REPOSITORY).text = document.repository_unique_id
        etree.SubElement(item, _DOCUMENT_ID).text = document.document_unique_id
        etree.SubElement(item, _MIME).text = document.mime_type
        etree.SubElement(item, _DOCUMENT).append(xop_include(document.attachment.content_id))
    return root


@dataclass(slots=True, kw_only=True)
class ParsedResponse:
    """A response as a consumer reads it."""

    status: str
    errors: list[ResponseError] = field(default_factory=list)
    documents: list[DocumentResponse] = field(default_factory=list)


def parse_response(
    element: etree._Element, attachments: Mapping[str, Attachment]
) -> ParsedResponse:
    """Read a RetrieveDocumentSetResponse; ``attachments`` by Content-ID (MTOM parts).

    Raises: ValueError for a body that is not a RetrieveDocumentSetResponse or a Document whose
    xop:Include names no part.
    """
    if element.tag != RESPONSE:
        raise ValueError(f"expected xdsb:RetrieveDocumentSetResponse, got {element.tag}")
    registry = element.find(_REGISTRY_RESPONSE)
    if registry is None:
        raise ValueError("RetrieveDocumentSetResponse without rs:RegistryResponse")
    errors = [
        ResponseError(
            code=error.get("errorCode", ""),
            context=error.get("codeContext", ""),
            severity=error.get("severity", SEVERITY_ERROR),
            location=error.get("location"),
        )
        for error in registry.iter(_REGISTRY_ERROR)
    ]
    documents = [_document(item, attachments) for item in element.findall(_DOC_RESPONSE)]
    return ParsedResponse(status=registry.get("status", ""), errors=errors, documents=documents)


def _document(item: etree._Element, attachments: Mapping[str, Attachment]) -> DocumentResponse:
    document = item.find(_DOCUMENT)
    include = document.find(ns.qname(ns.XOP, "Include")) if document is not None else None
    if include is None:
        raise ValueError(f"DocumentResponse {_text(item, _DOCUMENT_ID)} has no xop:Include")
    cid = cid_from_href(include.get("href", ""))
    if cid not in attachments:
        raise ValueError(f"DocumentResponse names part {cid!r}, which the message does not have")
    return DocumentResponse(
        repository_unique_id=_text(item, _REPOSITORY),
        document_unique_id=_text(item, _DOCUMENT_ID),
        mime_type=_text(item, _MIME),
        home_community_id=_text(item, _HOME) or None,
        attachment=attachments[cid],
    )


def requested_documents(
    request: ImagingRetrieveRequest,
) -> Sequence[tuple[str, str, DocumentRequest]]:
    """Every (study UID, series UID, document request) of a request, in request order."""
    return [
        (study.study_instance_uid, series.series_instance_uid, document)
        for study in request.studies
        for series in study.series
        for document in series.documents
    ]
