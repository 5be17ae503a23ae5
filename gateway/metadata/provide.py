"""The ITI-41 / RAD-68 request body: ``xdsb:ProvideAndRegisterDocumentSetRequest``.

The body holds the ``lcm:SubmitObjectsRequest`` (written and read by
:mod:`gateway.metadata.ebrim`) and one ``xdsb:Document`` per document, whose ``id`` is its
DocumentEntry's id and whose content is an ``xop:Include`` of an MTOM part. A peer that sent the
content inline as base64 looks the same by the time a codec sees it: the SOAP boundary turns
inline content of binary elements into parts (XOP 1.0 §1: one infoset). RAD-68 is this body with
a KOS manifest as its one document (RAD TF-3 §4.68.4.1.2).

Used by the repository (reading), the imaging source (RAD-68) and the ``provide`` command.

Standard: ITI TF-2 §3.41.4.1.2 (rev. 19.0 read), Appendix V §V.3.3.2.2 (MTOM/XOP); XOP 1.0 §2.1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lxml import etree

from gateway.errors import XDSRepositoryMetadataError
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.metadata.model import Submission
from gateway.soap import ns
from gateway.soap.message import Attachment, included_attachment, xop_include
from gateway.soap.safexml import parse_bytes

REQUEST = ns.qname(ns.XDSB, "ProvideAndRegisterDocumentSetRequest")
DOCUMENT = ns.qname(ns.XDSB, "Document")


def build_provide_request(
    submission: Submission, documents: Iterable[tuple[str, str]]
) -> etree._Element:
    """Write a ProvideAndRegisterDocumentSetRequest: the submission's SubmitObjectsRequest, then
    one Document per ``(DocumentEntry id, Content-ID of its MTOM part)``.

    Standard: ITI TF-2 §3.41.4.1.2; XOP 1.0 §2.1 (xop:Include).
    """
    body = etree.Element(REQUEST, nsmap={"xdsb": ns.XDSB})
    body.append(build_submit_objects_request(submission))
    for entry_id, content_id in documents:
        etree.SubElement(body, DOCUMENT, id=entry_id).append(xop_include(content_id))
    return body


def serialize_provide_request(body: etree._Element) -> bytes:
    """A ProvideAndRegisterDocumentSetRequest as UTF-8 bytes, to keep and send again unchanged
    (the imaging source keeps a RAD-68 body while its registration is not settled)."""
    return etree.tostring(body, encoding="UTF-8")


def parse_provide_request(data: bytes) -> etree._Element:
    """A body kept by :func:`serialize_provide_request`, parsed safely (it is stored data).

    Raises: ValueError when the bytes hold another element.
    """
    body = parse_bytes(data)
    if body.tag != REQUEST:
        raise ValueError(f"expected xdsb:ProvideAndRegisterDocumentSetRequest, got {body.tag}")
    return body


def read_documents(
    body: etree._Element, attachments: Mapping[str, Attachment]
) -> list[tuple[str, Attachment]]:
    """The request's Documents in order: ``(Document/@id, its content among attachments)``.

    Standard: ITI TF-2 §3.41.4.1.2 (Document/@id = the ExtrinsicObject id).
    Raises: XDSRepositoryMetadataError for a Document that carries no content reference or
    names a part the message does not hold.
    """
    documents = []
    for element in body.iterfind(DOCUMENT):
        document_id = element.get("id", "")
        try:
            attachment = included_attachment(element, attachments)
        except KeyError as exc:
            raise XDSRepositoryMetadataError(
                f"Document {document_id!r} carries no content", location=document_id or None
            ) from exc
        documents.append((document_id, attachment))
    return documents
