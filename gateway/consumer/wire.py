"""The consumer's message bodies: what it sends (ITI-18, ITI-43, RAD-69) and reads back.

Requests:

- ITI-18 ``query:AdhocQueryRequest``: ``query:ResponseOption`` (returnType LeafClass or ObjectRef,
  returnComposedObjects true) and one ``rim:AdhocQuery`` whose id is the stored query's UUID and
  whose ``rim:Slot`` elements carry the parameters (ITI TF-2 §3.18.4.1.2.1-§3.18.4.1.2.3; value
  coding in :mod:`gateway.consumer.queries`).
- ITI-43 ``xdsb:RetrieveDocumentSetRequest``: one ``xdsb:DocumentRequest`` per document
  (HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId; ITI TF-2 §3.43.4.1.2).
- RAD-69 ``iherad:RetrieveImagingDocumentSetRequest``: StudyRequest/@studyInstanceUID >
  SeriesRequest/@seriesInstanceUID > xdsb:DocumentRequest, then TransferSyntaxUIDList
  (RAD TF-3 §4.69.4.1.2, XDSI.b_ImagingDocumentSource.xsd). The RepositoryUniqueId of an imaging
  DocumentRequest is the Retrieve Location UID the manifest names (RAD TF-3 §4.69.4.1.2).

Responses: ``query:AdhocQueryResponse`` (status, rs:RegistryErrorList, rim:RegistryObjectList read
with :func:`gateway.metadata.ebrim.parse_registry_object_list`) and
``xdsb:RetrieveDocumentSetResponse``, which ITI-43 and RAD-69 share (ITI TF-2 §3.43.4.2.2,
RAD TF-3 §4.69.4.2.2). A Document is an xop:Include of an MTOM part or, from a peer that did not
use MTOM, inline base64 (XOP 1.0 §1: the same infoset).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from gateway.metadata.ebrim import parse_registry_object_list
from gateway.metadata.model import RegistryObject
from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href

SEVERITY_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
RETURN_LEAF_CLASS = "LeafClass"
RETURN_OBJECT_REF = "ObjectRef"

_Q = ns.QUERY
_X = ns.XDSB
_R = ns.IHERAD
_REGISTRY_RESPONSE = ns.qname(ns.RS, "RegistryResponse")
_REGISTRY_ERROR = ns.qname(ns.RS, "RegistryError")
_QUERY_RESPONSE = ns.qname(_Q, "AdhocQueryResponse")
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


class ResponseFormatError(ValueError):
    """A peer's response body does not have the structure the transaction defines."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseError:
    """One ``rs:RegistryError`` of a response (ebRS 3.0 rs.xsd; ITI TF-3 §4.2.4.1)."""

    code: str
    context: str = ""
    severity: str = SEVERITY_ERROR
    location: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.severity.endswith(":Warning")

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.code}: {self.context}{where}" if self.context else f"{self.code}{where}"


def short_status(status: str) -> str:
    """``Success``, ``PartialSuccess`` or ``Failure`` from a RegistryResponse status URN."""
    return status.rsplit(":", 1)[-1] if status else ""


def read_errors(holder: etree._Element | None) -> list[ResponseError]:
    """Every ``rs:RegistryError`` below an element (a RegistryResponse or AdhocQueryResponse)."""
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


# -- ITI-18 ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QuerySlot:
    """One stored-query parameter: its name and the coded text of each ``rim:Value``."""

    name: str
    values: tuple[str, ...]


def build_query_request(
    query_id: str,
    slots: Iterable[QuerySlot],
    *,
    return_type: str = RETURN_LEAF_CLASS,
    home: str | None = None,
) -> etree._Element:
    """Write an ITI-18 ``query:AdhocQueryRequest`` for a stored query.

    Standard: ITI TF-2 §3.18.4.1.2 (returnType LeafClass/ObjectRef §3.18.4.1.2.1, the
    AdhocQuery id §3.18.4.1.2.2, one Slot per parameter §3.18.4.1.2.3; ``home`` is the
    homeCommunityId attribute of §3.18.4.1.2.3.8).
    """
    if return_type not in (RETURN_LEAF_CLASS, RETURN_OBJECT_REF):
        raise ValueError(f"returnType must be LeafClass or ObjectRef, not {return_type!r}")
    root = etree.Element(ns.qname(_Q, "AdhocQueryRequest"), nsmap={"query": _Q, "rim": ns.RIM})
    etree.SubElement(
        root,
        ns.qname(_Q, "ResponseOption"),
        returnComposedObjects="true",
        returnType=return_type,
    )
    query = etree.SubElement(root, ns.qname(ns.RIM, "AdhocQuery"), id=query_id)
    if home:
        query.set("home", home)
    for slot in slots:
        slot_el = etree.SubElement(query, ns.qname(ns.RIM, "Slot"), name=slot.name)
        value_list = etree.SubElement(slot_el, ns.qname(ns.RIM, "ValueList"))
        for value in slot.values:
            etree.SubElement(value_list, ns.qname(ns.RIM, "Value")).text = value
    return root


@dataclass(slots=True, kw_only=True)
class QueryResponse:
    """An ``AdhocQueryResponse``: short status, errors and the returned objects in order."""

    status: str
    errors: list[ResponseError] = field(default_factory=list)
    objects: list[RegistryObject] = field(default_factory=list)


def parse_query_response(element: etree._Element) -> QueryResponse:
    """Read an ITI-18 ``query:AdhocQueryResponse``.

    Standard: ITI TF-2 §3.18.4.1.3 (status, RegistryErrorList, RegistryObjectList).
    Raises: ResponseFormatError for another body; XDSErrorList (XDSRegistryMetadataError) when
    the returned metadata cannot be read.
    """
    if element.tag != _QUERY_RESPONSE:
        raise ResponseFormatError(f"expected query:AdhocQueryResponse, got {element.tag}")
    return QueryResponse(
        status=short_status(element.get("status", "")),
        errors=read_errors(element),
        objects=parse_registry_object_list(element),
    )


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
