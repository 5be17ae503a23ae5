"""ITI-41 Provide and Register Document Set-b at ``/xds/repository``: the thin SOAP handler.

Decode (ebRIM metadata -> Submission; each ``xdsb:Document`` -> its attachment, whether it came
as an MTOM/XOP part or inline base64: the dispatcher makes both look the same), call
:meth:`Repository.provide`, answer with the registry's RegistryResponse.

Standard: ITI TF-2 §3.41 (rev. 19.0): §3.41.4.1.2 request, §3.41.4.1.3 expected actions,
§3.41.4.2 response; ITI TF-2 Appendix V §V.3.3.2.2 (MTOM/XOP).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from gateway.errors import XDSError, XDSRepositoryMetadataError
from gateway.metadata.ebrim import build_submit_objects_request, parse_submit_objects_request
from gateway.metadata.model import Submission
from gateway.metadata.retrieve import failure_body
from gateway.repository.actor import Repository
from gateway.repository.model import ProvidedDocument
from gateway.repository.registry_client import submission_facts
from gateway.soap import ns
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import Addressing, Attachment, SoapRequest, SoapResponse, xop_include
from gateway.soap.transactions import ITI_41

TRANSACTION = ITI_41
# Wire constants (one source of truth: the transaction table of gateway.soap.transactions)
ACTION = ITI_41.action
RESPONSE_ACTION = ITI_41.response_action
REQUEST_QNAME = ITI_41.request_qname
RESPONSE_QNAME = ITI_41.response_qname
DOCUMENT = ns.qname(ns.XDSB, "Document")
TF = "ITI TF-2 §3.41"


def provided_documents(request: SoapRequest) -> list[ProvidedDocument]:
    """The request's Documents in order: the id of their DocumentEntry and their content.

    Standard: ITI TF-2 §3.41.4.1.2 (Document/@id = the ExtrinsicObject id).
    Raises: XDSRepositoryMetadataError for a Document that carries no content reference.
    """
    documents = []
    for element in request.body.findall(DOCUMENT):
        document_id = element.get("id", "")
        try:
            attachment = request.attachment_for(element)
        except KeyError as exc:
            raise XDSRepositoryMetadataError(
                f"Document {document_id!r} carries no content", location=document_id or None
            ) from exc
        documents.append(ProvidedDocument(id=document_id, attachment=attachment))
    return documents


def build_request(submission: Submission, documents: Iterable[tuple[str, str]]) -> etree._Element:
    """Build a ProvideAndRegisterDocumentSetRequest: the submission's SubmitObjectsRequest, then
    one Document per ``(DocumentEntry id, Content-ID of its MTOM part)``.

    Standard: ITI TF-2 §3.41.4.1.2; XOP 1.0 §2.1 (xop:Include).
    """
    body = etree.Element(REQUEST_QNAME, nsmap={"xdsb": ns.XDSB})
    body.append(build_submit_objects_request(submission))
    for entry_id, content_id in documents:
        etree.SubElement(body, DOCUMENT, id=entry_id).append(xop_include(content_id))
    return body


def provide_and_register(
    repository: Repository, request: etree._Element, attachments: Sequence[Attachment]
) -> etree._Element:
    """ITI-41 in-process: ProvideAndRegisterDocumentSetRequest and its parts in, RegistryResponse
    out (XDS errors as a Failure response, as a remote repository would answer them).

    The narrow interface other actors of this process (the imaging source, RAD-68) use instead of
    SOAP. Standard: ITI TF-2 §3.41.4.
    """
    by_cid = {attachment.content_id: attachment for attachment in attachments}
    soap_request = SoapRequest(
        path=ITI_41.path, addressing=Addressing(action=ACTION), body=request, attachments=by_cid
    )
    try:
        submission = parse_submit_objects_request(request, repository=True)
        return repository.provide(submission, provided_documents(soap_request))
    except XDSError as error:
        return failure_body(ITI_41, error)


def handler(repository: Repository) -> Handler:
    """The ITI-41 handler bound to ``repository``. Standard: ITI TF-2 §3.41.4."""

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        submission = parse_submit_objects_request(request.body, repository=True)
        ctx.audit.update(submission_facts(submission), reply_to=request.addressing.reply_to)
        response = repository.provide(submission, provided_documents(request))
        return SoapResponse(body=response)

    return handle
