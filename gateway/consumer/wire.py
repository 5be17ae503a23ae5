"""The consumer's retrieve bodies: what it sends (ITI-43, RAD-69) and reads back. The ITI-18
bodies are :mod:`gateway.metadata.query`; RegistryErrors are read by
:mod:`gateway.soap.registry_response`.

Requests:

- ITI-43 ``xdsb:RetrieveDocumentSetRequest``: one ``xdsb:DocumentRequest`` per document
  (HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId; ITI TF-2 §3.43.4.1.2).
- RAD-69 ``iherad:RetrieveImagingDocumentSetRequest``: StudyRequest/@studyInstanceUID >
  SeriesRequest/@seriesInstanceUID > xdsb:DocumentRequest, then TransferSyntaxUIDList
  (RAD TF-3 §4.69.4.1.2, XDSI.b_ImagingDocumentSource.xsd). The RepositoryUniqueId of an imaging
  DocumentRequest is the Retrieve Location UID the manifest names (RAD TF-3 §4.69.4.1.2).

Response: ``xdsb:RetrieveDocumentSetResponse``, which ITI-43 and RAD-69 share (ITI TF-2 §3.43.4.2.2,
RAD TF-3 §4.69.4.2.2). A Document is an xop:Include of an MTOM part or, from a peer that did not
use MTOM, inline base64 (XOP 1.0 §1: the same infoset).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href
from gateway.soap.registry_response import (
    ResponseError,
    ResponseFormatError,
    read_errors,
    short_status,
)

_X = ns.XDSB
_R = ns.IHERAD
_REGISTRY_RESPONSE = ns.qname(ns.RS, "RegistryResponse")
_RETRIEVE_RESPONSE = ns.qname(_X, "RetrieveDocumentSetResponse")
_DOCUMENT_RESPONSE = ns.qname(_X, "DocumentResponse")
_DOCUMENT_REQUEST = ns.qname(_X, "DocumentRequest")
_HOME = ns.qname(_X, "HomeCommunityId")
_REPOSITORY = ns.qname(_X, "RepositoryUniqueId")
_DOCUMENT_ID = ns.qname(_X, "DocumentUniqueId")
_NEW_REPOSITORY = ns.qname(_X, "NewRepositoryUniqueId")
_NEW_DOCUMENT_ID = ns.qname(_X, "NewDocumentUniqueId")
_MIME = ns.qname(_X, "mimeType")
_DOCUMENT = ns.qname(_X, "Document")


# -- ITI-43 and RAD-69 requests --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRef:
    """A document to retrieve: repositoryUniqueId, uniqueId and (XCA) homeCommunityId."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingRef:
    """An instance to retrieve by RAD-69: its study, series, SOP Instance UID and the Retrieve
    Location UID (sent as RepositoryUniqueId)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    retrieve_location_uid: str
    home_community_id: str | None = None


def _document_request(parent: etree._Element, ref: DocumentRef) -> None:
    item = etree.SubElement(parent, _DOCUMENT_REQUEST)
    if ref.home_community_id:
        etree.SubElement(item, _HOME).text = ref.home_community_id
    etree.SubElement(item, _REPOSITORY).text = ref.repository_unique_id
    etree.SubElement(item, _DOCUMENT_ID).text = ref.document_unique_id


def build_retrieve_request(refs: Sequence[DocumentRef]) -> etree._Element:
    """Write an ITI-43 ``xdsb:RetrieveDocumentSetRequest``.

    Standard: ITI TF-2 §3.43.4.1.2 (one DocumentRequest per document, 1..n).
    """
    if not refs:
        raise ValueError("a RetrieveDocumentSetRequest names at least one document")
    root = etree.Element(ns.qname(_X, "RetrieveDocumentSetRequest"), nsmap={"xdsb": _X})
    for ref in refs:
        _document_request(root, ref)
    return root


def build_imaging_request(
    refs: Sequence[ImagingRef], transfer_syntaxes: Sequence[str]
) -> etree._Element:
    """Write a RAD-69 ``iherad:RetrieveImagingDocumentSetRequest``.

    Instances are grouped under their study and series in first-seen order.
    Standard: RAD TF-3 §4.69.4.1.2 (StudyRequest 1..n > SeriesRequest 1..n > DocumentRequest
    1..n; TransferSyntaxUIDList with 1..n TransferSyntaxUID).
    """
    if not refs:
        raise ValueError("a RetrieveImagingDocumentSetRequest names at least one instance")
    if not transfer_syntaxes:
        raise ValueError("a RetrieveImagingDocumentSetRequest lists at least one transfer syntax")
    tree: dict[str, dict[str, list[ImagingRef]]] = {}
    for ref in refs:
        series = tree.setdefault(ref.study_instance_uid, {})
        series.setdefault(ref.series_instance_uid, []).append(ref)
    root = etree.Element(ns.qname(_R, "RetrieveImagingDocumentSetRequest"), nsmap={"iherad": _R})
    for study_uid, series_map in tree.items():
        study_el = etree.SubElement(root, ns.qname(_R, "StudyRequest"), studyInstanceUID=study_uid)
        for series_uid, members in series_map.items():
            series_el = etree.SubElement(
                study_el, ns.qname(_R, "SeriesRequest"), seriesInstanceUID=series_uid
            )
            for ref in members:
                _document_request(
                    series_el,
                    DocumentRef(
                        repository_unique_id=ref.retrieve_location_uid,
                        document_unique_id=ref.sop_instance_uid,
                        home_community_id=ref.home_community_id,
                    ),
                )
    syntax_list = etree.SubElement(root, ns.qname(_R, "TransferSyntaxUIDList"))
    for syntax in transfer_syntaxes:
        etree.SubElement(syntax_list, ns.qname(_R, "TransferSyntaxUID")).text = syntax
    return root


# -- RetrieveDocumentSetResponse (ITI-43 and RAD-69) -----------------------------------------------


@dataclass(slots=True, kw_only=True)
class RetrievedDocument:
    """One ``xdsb:DocumentResponse``: identifiers, mimeType and the content."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    attachment: Attachment
    home_community_id: str | None = None
    new_repository_unique_id: str | None = None  # On-Demand Documents (ITI TF-2 §3.43.4.2.2)
    new_document_unique_id: str | None = None


@dataclass(slots=True, kw_only=True)
class RetrieveResult:
    """A ``RetrieveDocumentSetResponse``: short status, errors and documents."""

    status: str
    errors: list[ResponseError] = field(default_factory=list)
    documents: list[RetrievedDocument] = field(default_factory=list)

    def discard(self) -> None:
        """Remove the temporary files of documents nobody saved."""
        for document in self.documents:
            document.attachment.discard()


def _text(parent: etree._Element, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "").strip() if found is not None else ""


def parse_retrieve_response(
    element: etree._Element, attachments: Mapping[str, Attachment]
) -> RetrieveResult:
    """Read a ``xdsb:RetrieveDocumentSetResponse`` (ITI-43 or RAD-69).

    ``attachments`` are the response's MTOM parts by Content-ID.
    Standard: ITI TF-2 §3.43.4.2.2; RAD TF-3 §4.69.4.2.2.
    Raises: ResponseFormatError (wrong body, no RegistryResponse, a Document naming no part or
    holding invalid base64).
    """
    if element.tag != _RETRIEVE_RESPONSE:
        raise ResponseFormatError(f"expected xdsb:RetrieveDocumentSetResponse, got {element.tag}")
    registry = element.find(_REGISTRY_RESPONSE)
    if registry is None:
        raise ResponseFormatError("RetrieveDocumentSetResponse has no rs:RegistryResponse")
    documents = [_document(item, attachments) for item in element.findall(_DOCUMENT_RESPONSE)]
    return RetrieveResult(
        status=short_status(registry.get("status", "")),
        errors=read_errors(registry),
        documents=documents,
    )


def _content(item: etree._Element, attachments: Mapping[str, Attachment]) -> Attachment:
    document = item.find(_DOCUMENT)
    uid = _text(item, _DOCUMENT_ID)
    if document is None:
        raise ResponseFormatError(f"DocumentResponse {uid} has no Document")
    include = document.find(ns.qname(ns.XOP, "Include"))
    if include is not None:
        cid = cid_from_href(include.get("href", ""))
        if cid not in attachments:
            raise ResponseFormatError(f"DocumentResponse {uid} names part {cid!r}, not sent")
        return attachments[cid]
    try:
        data = base64.b64decode("".join((document.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ResponseFormatError(f"DocumentResponse {uid}: invalid base64 content") from exc
    return Attachment.from_bytes(data)


def _document(item: etree._Element, attachments: Mapping[str, Attachment]) -> RetrievedDocument:
    return RetrievedDocument(
        repository_unique_id=_text(item, _REPOSITORY),
        document_unique_id=_text(item, _DOCUMENT_ID),
        mime_type=_text(item, _MIME),
        attachment=_content(item, attachments),
        home_community_id=_text(item, _HOME) or None,
        new_repository_unique_id=_text(item, _NEW_REPOSITORY) or None,
        new_document_unique_id=_text(item, _NEW_DOCUMENT_ID) or None,
    )
