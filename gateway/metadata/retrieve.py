"""The RetrieveDocumentSet bodies and the RegistryResponse / RegistryErrorList they carry.

One codec for every actor that sends or answers these bodies: the repository (ITI-43 handler,
``retrieve`` command), the imaging document source (RAD-69), the consumer, the SOAP boundary's
failure answers, and next the XCA gateways (ITI-39 and RAD-75 use the same elements).

- ``xdsb:RetrieveDocumentSetRequest`` (ITI-43, ITI-39): DocumentRequest 1..n of HomeCommunityId?,
  RepositoryUniqueId, DocumentUniqueId. ITI TF-2 §3.43.4.1.2, XDS.b_DocumentRepository.xsd.
- ``iherad:RetrieveImagingDocumentSetRequest`` (RAD-69, RAD-75): StudyRequest @studyInstanceUID
  1..n > SeriesRequest @seriesInstanceUID 1..n > xdsb:DocumentRequest 1..n, then
  TransferSyntaxUIDList > TransferSyntaxUID 1..n. RAD TF-3 §4.69.4.1.2,
  XDSI.b_ImagingDocumentSource.xsd.
- ``xdsb:RetrieveDocumentSetResponse`` (the answer to all four): rs:RegistryResponse, then per
  document a DocumentResponse of HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId,
  NewRepositoryUniqueId?, NewDocumentUniqueId?, mimeType, Document. ITI TF-2 §3.43.4.2.2,
  RAD TF-3 §4.69.4.2.2.
- ``rs:RegistryResponse`` and ``rs:RegistryErrorList`` (ebRS 3.0 §2.1.3 and rs.xsd; ITI TF-3
  §4.2.4.1), which also answer ITI-41/ITI-42 and, inside ``query:AdhocQueryResponse``, ITI-18.

Writing is strict: status and severity as full URNs (ITI TF-3 §4.2.4, ITI TF-2 §3.43.4.2.3),
codeContext as the attribute rs.xsd requires, Document as an ``xop:Include`` of an MTOM part
(ITI TF-2 Appendix V §V.3.3.2.2), the schemas' element order; a body the schema would refuse (no
DocumentRequest, no transfer syntax) is not written (ValueError). Reading is lenient where peers
are known to differ: short or full status and severity, codeContext as attribute or element
text, Document as ``xop:Include`` or inline base64 (XOP 1.0 §1: the same infoset), which callers
receive as an :class:`~gateway.soap.message.Attachment` either way.

HomeCommunityId is written when it is present and not empty (an empty element names no
community), and a DocumentResponse carries the value of its DocumentRequest, none when the request
had none (ITI TF-2 §3.43.4.2.2; RAD TF-3 §4.69.4.2.2).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

from gateway.errors import (
    SEVERITY_ERROR,
    SEVERITY_WARNING,
    XDSError,
    XDSErrorList,
    XDSIRequestError,
    XDSRepositoryError,
)
from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href, xop_include
from gateway.soap.transactions import Transaction

_X, _R = ns.XDSB, ns.IHERAD
_DOCUMENT_REQUEST = ns.qname(_X, "DocumentRequest")
_DOCUMENT_RESPONSE = ns.qname(_X, "DocumentResponse")
_HOME = ns.qname(_X, "HomeCommunityId")
_REPOSITORY = ns.qname(_X, "RepositoryUniqueId")
_DOCUMENT_ID = ns.qname(_X, "DocumentUniqueId")
_NEW_REPOSITORY = ns.qname(_X, "NewRepositoryUniqueId")
_NEW_DOCUMENT_ID = ns.qname(_X, "NewDocumentUniqueId")
_MIME = ns.qname(_X, "mimeType")
_DOCUMENT = ns.qname(_X, "Document")
_STUDY = ns.qname(_R, "StudyRequest")
_SERIES = ns.qname(_R, "SeriesRequest")
_SYNTAX_LIST = ns.qname(_R, "TransferSyntaxUIDList")
_SYNTAX = ns.qname(_R, "TransferSyntaxUID")
_INCLUDE = ns.qname(ns.XOP, "Include")


class ResponseFormatError(ValueError):
    """A peer's response body does not have the structure its transaction defines."""


class Status(StrEnum):
    """The status of a RegistryResponse (ITI TF-3 §4.2.4; PartialSuccess ITI TF-2 §3.43.4.2.3)."""

    SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"

    @property
    def short(self) -> str:
        """``Success``, ``PartialSuccess`` or ``Failure``."""
        return self.value.rsplit(":", 1)[-1]

    @classmethod
    def parse(cls, text: str | None) -> Status:
        """Read a status in its URN or short form. Raises: ResponseFormatError for another."""
        short = (text or "").strip().rsplit(":", 1)[-1]
        for status in cls:
            if status.short == short:
                return status
        raise ResponseFormatError(f"status {text!r} is not Success, PartialSuccess or Failure")


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryError:
    """One ``rs:RegistryError``: errorCode, codeContext, severity (URN) and location."""

    code: str
    context: str = ""
    severity: str = SEVERITY_ERROR
    location: str | None = None

    @property
    def is_warning(self) -> bool:
        return self.severity == SEVERITY_WARNING

    def __str__(self) -> str:
        where = f" [{self.location}]" if self.location else ""
        return f"{self.code}: {self.context}{where}" if self.context else f"{self.code}{where}"


def registry_errors(errors: Iterable[XDSError | RegistryError]) -> list[RegistryError]:
    """The RegistryErrors of raised XDS errors (an XDSErrorList gives one per member)."""
    found: list[RegistryError] = []
    for error in errors:
        if isinstance(error, RegistryError):
            found.append(error)
            continue
        found.extend(
            RegistryError(code=e.code, context=e.context, severity=e.severity, location=e.location)
            for e in error
        )
    return found


def status_for(errors: Iterable[XDSError | RegistryError], *, partial: bool = False) -> Status:
    """Success when there are only warnings, else Failure (PartialSuccess when ``partial``).

    Standard: ITI TF-3 §4.2.4; ITI TF-2 §3.43.4.2.3 (PartialSuccess: some documents returned).
    """
    if all(e.is_warning for e in registry_errors(errors)):
        return Status.SUCCESS
    return Status.PARTIAL_SUCCESS if partial else Status.FAILURE


# -- rs:RegistryErrorList and rs:RegistryResponse ------------------------------------------------


def build_error_list(errors: Iterable[XDSError | RegistryError]) -> etree._Element | None:
    """Write ``rs:RegistryErrorList`` with highestSeverity, or None when there is no error.

    Standard: ebRS 3.0 rs.xsd (codeContext and errorCode attributes required, severity URN);
    ITI TF-3 §4.2.4.1 (location names the object in error).
    """
    items = registry_errors(errors)
    if not items:
        return None
    element = etree.Element(ns.REGISTRY_ERROR_LIST, nsmap={"rs": ns.RS})
    worst = SEVERITY_WARNING if all(e.is_warning for e in items) else SEVERITY_ERROR
    element.set("highestSeverity", worst)
    for error in items:
        item = etree.SubElement(element, ns.REGISTRY_ERROR)
        item.set("errorCode", error.code)
        item.set("codeContext", error.context)
        item.set("severity", error.severity)
        if error.location:
            item.set("location", error.location)
    return element


def _severity(text: str | None) -> str:
    # rs.xsd's default is Error; the short form "Warning" is read as the Warning URN.
    return SEVERITY_WARNING if (text or "").strip().endswith("Warning") else SEVERITY_ERROR


def read_errors(holder: etree._Element | None) -> list[RegistryError]:
    """Every ``rs:RegistryError`` below ``holder`` (a RegistryResponse, AdhocQueryResponse or a
    body holding one), codeContext read from the attribute or else the element text.

    Standard: ebRS 3.0 rs.xsd; ITI TF-3 §4.2.4.1.
    """
    if holder is None:
        return []
    return [
        RegistryError(
            code=(error.get("errorCode") or "").strip(),
            context=(error.get("codeContext") or error.text or "").strip(),
            severity=_severity(error.get("severity")),
            location=error.get("location") or None,
        )
        for error in holder.iter(ns.REGISTRY_ERROR)
    ]


@dataclass(slots=True, kw_only=True)
class RegistryResponse:
    """An ``rs:RegistryResponse``: status and errors (warnings included)."""

    status: Status
    errors: list[RegistryError] = field(default_factory=list)


def build_registry_response(
    status: Status, errors: Iterable[XDSError | RegistryError] = ()
) -> etree._Element:
    """Write ``rs:RegistryResponse`` with its error list. Standard: ebRS 3.0 §2.1.3."""
    element = etree.Element(ns.REGISTRY_RESPONSE, nsmap={"rs": ns.RS})
    element.set("status", Status(status).value)
    error_list = build_error_list(errors)
    if error_list is not None:
        element.append(error_list)
    return element


def read_registry_response(element: etree._Element | None) -> RegistryResponse:
    """Read an ``rs:RegistryResponse`` (ITI-41, ITI-42 answers; ebRS 3.0 §2.1.3).

    Raises: ResponseFormatError for another element or a status that is not one of the three.
    """
    if element is None or element.tag != ns.REGISTRY_RESPONSE:
        found = "nothing" if element is None else element.tag
        raise ResponseFormatError(f"expected rs:RegistryResponse, got {found}")
    return RegistryResponse(status=Status.parse(element.get("status")), errors=read_errors(element))


def response_status(element: etree._Element) -> str:
    """The short status of an ``rs:RegistryResponse`` (``Success``, ``PartialSuccess``,
    ``Failure``), read leniently; "" when the element is no RegistryResponse or names no status.
    For logs and audit outcomes; use :func:`read_registry_response` to act on an answer.
    Standard: ebRS 3.0 §2.1.3, ITI TF-2 §3.42.4.2."""
    if element.tag != ns.REGISTRY_RESPONSE:
        return ""
    return (element.get("status") or "").strip().rsplit(":", 1)[-1]


def failure_body(
    transaction: Transaction, errors: Iterable[XDSError | RegistryError]
) -> etree._Element:
    """The body a transaction answers when it fails with XDS errors.

    ITI-41/42: rs:RegistryResponse. ITI-18: query:AdhocQueryResponse with status, error list and
    the empty rim:RegistryObjectList query.xsd requires (ITI TF-2 §3.18.4.1.3). ITI-43, RAD-69:
    xdsb:RetrieveDocumentSetResponse holding the RegistryResponse (ITI TF-2 §3.43.4.2.2).
    """
    items = registry_errors(errors)
    status = status_for(items)
    if transaction.response_qname == ns.REGISTRY_RESPONSE:
        return build_registry_response(status, items)
    if transaction.response_qname == ns.ADHOC_QUERY_RESPONSE:
        element = etree.Element(
            ns.ADHOC_QUERY_RESPONSE, nsmap={"query": ns.QUERY, "rs": ns.RS, "rim": ns.RIM}
        )
        element.set("status", status.value)
        error_list = build_error_list(items)
        if error_list is not None:
            element.append(error_list)
        etree.SubElement(element, ns.qname(ns.RIM, "RegistryObjectList"))
        return element
    if transaction.response_qname == ns.RETRIEVE_DOCUMENT_SET_RESPONSE:
        return build_retrieve_response(RetrieveDocumentSetResponse(status=status, errors=items))
    raise ValueError(f"{transaction.name}: no failure body for {transaction.response_qname}")


# -- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRequest:
    """One ``xdsb:DocumentRequest`` (values as sent; "" when an element is absent)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRequest:
    """An ``iherad:SeriesRequest``: the series and its instances' DocumentRequests."""

    series_instance_uid: str
    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class StudyRequest:
    """An ``iherad:StudyRequest``: the study and its SeriesRequests."""

    study_instance_uid: str
    series: tuple[SeriesRequest, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ImagingDocumentRequest:
    """One instance of a RAD-69 request: its study, its series and its DocumentRequest (the SOP
    Instance UID as DocumentUniqueId, the Retrieve Location UID as RepositoryUniqueId)."""

    study_instance_uid: str
    series_instance_uid: str
    document: DocumentRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveImagingDocumentSetRequest:
    """An ``iherad:RetrieveImagingDocumentSetRequest`` (RAD TF-3 §4.69.4.1.2)."""

    studies: tuple[StudyRequest, ...]
    transfer_syntaxes: tuple[str, ...]

    @classmethod
    def of(
        cls, documents: Iterable[ImagingDocumentRequest], transfer_syntaxes: Iterable[str]
    ) -> RetrieveImagingDocumentSetRequest:
        """Group instances under their study and series, in first-seen order."""
        tree: dict[str, dict[str, list[DocumentRequest]]] = {}
        for item in documents:
            series = tree.setdefault(item.study_instance_uid, {})
            series.setdefault(item.series_instance_uid, []).append(item.document)
        studies = tuple(
            StudyRequest(
                study_instance_uid=study,
                series=tuple(
                    SeriesRequest(series_instance_uid=uid, documents=tuple(members))
                    for uid, members in series.items()
                ),
            )
            for study, series in tree.items()
        )
        return cls(studies=studies, transfer_syntaxes=tuple(transfer_syntaxes))

    def documents(self) -> Iterator[ImagingDocumentRequest]:
        """Every requested instance with its study and series, in request order."""
        for study in self.studies:
            for series in study.series:
                for document in series.documents:
                    yield ImagingDocumentRequest(
                        study_instance_uid=study.study_instance_uid,
                        series_instance_uid=series.series_instance_uid,
                        document=document,
                    )


def _text(parent: etree._Element, tag: str) -> str:
    found = parent.find(tag)
    return (found.text or "").strip() if found is not None else ""


def _add_ids(parent: etree._Element, home: str | None, repository: str, document: str) -> None:
    # Schema order: HomeCommunityId?, RepositoryUniqueId, DocumentUniqueId.
    if home:
        etree.SubElement(parent, _HOME).text = home
    etree.SubElement(parent, _REPOSITORY).text = repository
    etree.SubElement(parent, _DOCUMENT_ID).text = document


def _add_requests(parent: etree._Element, requests: Iterable[DocumentRequest]) -> None:
    for request in requests:
        item = etree.SubElement(parent, _DOCUMENT_REQUEST)
        _add_ids(
            item,
            request.home_community_id,
            request.repository_unique_id,
            request.document_unique_id,
        )


def _read_request(element: etree._Element) -> DocumentRequest:
    return DocumentRequest(
        repository_unique_id=_text(element, _REPOSITORY),
        document_unique_id=_text(element, _DOCUMENT_ID),
        home_community_id=_text(element, _HOME) or None,
    )


def build_retrieve_request(requests: Sequence[DocumentRequest]) -> etree._Element:
    """Write an ``xdsb:RetrieveDocumentSetRequest`` (ITI-43, ITI-39; ITI TF-2 §3.43.4.1.2).

    Raises: ValueError for no request (the schema requires one or more).
    """
    if not requests:
        raise ValueError("a RetrieveDocumentSetRequest names at least one document")
    root = etree.Element(ns.RETRIEVE_DOCUMENT_SET_REQUEST, nsmap={"xdsb": _X})
    _add_requests(root, requests)
    return root


def parse_retrieve_request(element: etree._Element) -> list[DocumentRequest]:
    """Read the DocumentRequests of an ``xdsb:RetrieveDocumentSetRequest``; the actor judges
    each value (XDSUnknownRepositoryId, XDSDocumentUniqueIdError). ITI TF-2 §3.43.4.1.2.

    Raises: XDSRepositoryError for another element or no DocumentRequest (schema: 1..n).
    """
    if element.tag != ns.RETRIEVE_DOCUMENT_SET_REQUEST:
        raise XDSRepositoryError(f"expected xdsb:RetrieveDocumentSetRequest, got {element.tag}")
    requests = [_read_request(item) for item in element.findall(_DOCUMENT_REQUEST)]
    if not requests:
        raise XDSRepositoryError("RetrieveDocumentSetRequest holds no DocumentRequest")
    return requests


def build_imaging_request(request: RetrieveImagingDocumentSetRequest) -> etree._Element:
    """Write an ``iherad:RetrieveImagingDocumentSetRequest`` (RAD-69, RAD-75).

    Standard: RAD TF-3 §4.69.4.1.2. Raises: ValueError for an empty level or no transfer syntax.
    """
    if not request.studies or not all(
        s.series and all(r.documents for r in s.series) for s in request.studies
    ):
        raise ValueError(
            "a RetrieveImagingDocumentSetRequest names at least one instance per level"
        )
    if not request.transfer_syntaxes:
        raise ValueError("a RetrieveImagingDocumentSetRequest lists at least one transfer syntax")
    root = etree.Element(ns.RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST, nsmap={"iherad": _R, "xdsb": _X})
    for study in request.studies:
        study_el = etree.SubElement(root, _STUDY, studyInstanceUID=study.study_instance_uid)
        for series in study.series:
            series_el = etree.SubElement(
                study_el, _SERIES, seriesInstanceUID=series.series_instance_uid
            )
            _add_requests(series_el, series.documents)
    syntax_list = etree.SubElement(root, _SYNTAX_LIST)
    for syntax in request.transfer_syntaxes:
        etree.SubElement(syntax_list, _SYNTAX).text = syntax
    return root


def parse_imaging_request(element: etree._Element) -> RetrieveImagingDocumentSetRequest:
    """Read an ``iherad:RetrieveImagingDocumentSetRequest``, collecting every problem.

    Standard: RAD TF-3 §4.69.4.1.2, §4.69.4.2.3 (NIST ids_2018-4811 cases 5-8).
    Raises: XDSErrorList of XDSIRequestError (another element, an empty or missing study or
    series UID, a level without children, a DocumentRequest without DocumentUniqueId, no
    TransferSyntaxUIDList) or XDSRepositoryError (the list names no transfer syntax).
    """
    if element.tag != ns.RETRIEVE_IMAGING_DOCUMENT_SET_REQUEST:
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
            t for t in ((s.text or "").strip() for s in syntax_list.findall(_SYNTAX)) if t
        )
        if not syntaxes and not problems:
            problems.append(XDSRepositoryError("TransferSyntaxUIDList names no transfer syntax"))
    if problems:
        raise XDSErrorList(problems)
    return RetrieveImagingDocumentSetRequest(studies=studies, transfer_syntaxes=syntaxes)


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
    documents = tuple(_read_request(item) for item in element.findall(_DOCUMENT_REQUEST))
    problems.extend(
        XDSIRequestError(f"DocumentRequest of series {uid}: no DocumentUniqueId")
        for document in documents
        if not document.document_unique_id
    )
    if not documents:
        problems.append(
            XDSIRequestError(f"SeriesRequest {uid} has no DocumentRequest", location=uid or None)
        )
    return SeriesRequest(series_instance_uid=uid, documents=documents)


# -- xdsb:RetrieveDocumentSetResponse ------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class DocumentResponse:
    """One ``xdsb:DocumentResponse``: identifiers, mimeType and the content as an attachment."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    attachment: Attachment
    home_community_id: str | None = None
    new_repository_unique_id: str | None = None  # On-Demand Documents (ITI TF-2 §3.43.4.2.2)
    new_document_unique_id: str | None = None


@dataclass(slots=True, kw_only=True)
class RetrieveDocumentSetResponse:
    """An ``xdsb:RetrieveDocumentSetResponse``: status, errors, documents in request order."""

    status: Status
    errors: list[RegistryError] = field(default_factory=list)
    documents: list[DocumentResponse] = field(default_factory=list)

    @classmethod
    def answer(
        cls, documents: Sequence[DocumentResponse], errors: Iterable[XDSError | RegistryError]
    ) -> RetrieveDocumentSetResponse:
        """The answer of a source that found ``documents`` and raised ``errors`` for the rest:
        Success without an error, PartialSuccess with some documents, else Failure.

        Standard: ITI TF-2 §3.43.4.2.3; RAD TF-3 §4.69.4.2.3.
        """
        items = registry_errors(errors)
        status = status_for(items, partial=bool(documents))
        return cls(status=status, errors=items, documents=list(documents))

    def discard(self) -> None:
        """Remove the temporary files of documents nobody saved."""
        for document in self.documents:
            document.attachment.discard()


def build_retrieve_response(response: RetrieveDocumentSetResponse) -> etree._Element:
    """Write an ``xdsb:RetrieveDocumentSetResponse``; each Document is an xop:Include of its
    attachment's Content-ID (the MTOM part the SOAP layer streams).

    Standard: ITI TF-2 §3.43.4.2.2, XDS.b_DocumentRepository.xsd order; RAD TF-3 §4.69.4.2.2.
    """
    root = etree.Element(
        ns.RETRIEVE_DOCUMENT_SET_RESPONSE, nsmap={"xdsb": _X, "rs": ns.RS, "xop": ns.XOP}
    )
    root.append(build_registry_response(response.status, response.errors))
    for document in response.documents:
        item = etree.SubElement(root, _DOCUMENT_RESPONSE)
        _add_ids(
            item,
            document.home_community_id,
            document.repository_unique_id,
            document.document_unique_id,
        )
        if document.new_repository_unique_id:
            etree.SubElement(item, _NEW_REPOSITORY).text = document.new_repository_unique_id
        if document.new_document_unique_id:
            etree.SubElement(item, _NEW_DOCUMENT_ID).text = document.new_document_unique_id
        etree.SubElement(item, _MIME).text = document.mime_type
        etree.SubElement(item, _DOCUMENT).append(xop_include(document.attachment.content_id))
    return root


def parse_retrieve_response(
    element: etree._Element, attachments: Mapping[str, Attachment]
) -> RetrieveDocumentSetResponse:
    """Read an ``xdsb:RetrieveDocumentSetResponse`` (ITI-43, RAD-69, ITI-39, RAD-75);
    ``attachments`` are the message's MTOM parts by Content-ID.

    Standard: ITI TF-2 §3.43.4.2.2; RAD TF-3 §4.69.4.2.2.
    Raises: ResponseFormatError (another body, no RegistryResponse, an unknown status, a
    DocumentResponse without Document, an xop:Include naming no part, invalid base64).
    """
    if element.tag != ns.RETRIEVE_DOCUMENT_SET_RESPONSE:
        raise ResponseFormatError(f"expected xdsb:RetrieveDocumentSetResponse, got {element.tag}")
    registry = element.find(ns.REGISTRY_RESPONSE)
    if registry is None:
        raise ResponseFormatError("RetrieveDocumentSetResponse has no rs:RegistryResponse")
    inner = read_registry_response(registry)
    documents = [_document(item, attachments) for item in element.findall(_DOCUMENT_RESPONSE)]
    return RetrieveDocumentSetResponse(
        status=inner.status, errors=inner.errors, documents=documents
    )


def _document(item: etree._Element, attachments: Mapping[str, Attachment]) -> DocumentResponse:
    mime_type = _text(item, _MIME)
    return DocumentResponse(
        repository_unique_id=_text(item, _REPOSITORY),
        document_unique_id=_text(item, _DOCUMENT_ID),
        mime_type=mime_type,
        attachment=_content(item, attachments, mime_type),
        home_community_id=_text(item, _HOME) or None,
        new_repository_unique_id=_text(item, _NEW_REPOSITORY) or None,
        new_document_unique_id=_text(item, _NEW_DOCUMENT_ID) or None,
    )


def _content(
    item: etree._Element, attachments: Mapping[str, Attachment], mime_type: str
) -> Attachment:
    uid = _text(item, _DOCUMENT_ID)
    document = item.find(_DOCUMENT)
    if document is None:
        raise ResponseFormatError(f"DocumentResponse {uid} has no Document")
    include = document.find(_INCLUDE)
    if include is not None:
        cid = cid_from_href(include.get("href", ""))
        if cid not in attachments:
            raise ResponseFormatError(f"DocumentResponse {uid} names part {cid!r}, not sent")
        return attachments[cid]
    try:
        data = base64.b64decode("".join((document.text or "").split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ResponseFormatError(f"DocumentResponse {uid}: invalid base64 content") from exc
    return Attachment.from_bytes(data, content_type=mime_type or "application/octet-stream")
