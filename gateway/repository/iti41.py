"""ITI-41 Provide and Register Document Set-b at ``/xds/repository``: the thin SOAP handler.

Decode (ebRIM metadata -> Submission; each ``xdsb:Document`` -> its attachment, whether it came
as an MTOM/XOP part or inline base64: the dispatcher makes both look the same), call
:meth:`Repository.provide`, answer with the registry's RegistryResponse.

Standard: ITI TF-2 §3.41 (rev. 19.0): §3.41.4.1.2 request, §3.41.4.1.3 expected actions,
§3.41.4.2 response; ITI TF-2 Appendix V §V.3.3.2.2 (MTOM/XOP).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.errors import XDSError
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.provide import read_documents
from gateway.metadata.retrieve import failure_body
from gateway.repository.actor import Repository
from gateway.repository.model import ProvidedDocument
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import Attachment, Element, SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_41

TRANSACTION = ITI_41
# Wire constants (one source of truth: the transaction table of gateway.soap.transactions)
ACTION = ITI_41.action
RESPONSE_ACTION = ITI_41.response_action
REQUEST_QNAME = ITI_41.request_qname
RESPONSE_QNAME = ITI_41.response_qname
TF = "ITI TF-2 §3.41"


def provided_documents(
    body: Element, attachments: Mapping[str, Attachment]
) -> list[ProvidedDocument]:
    """The request's Documents in order: the id of their DocumentEntry and their content.

    Standard: ITI TF-2 §3.41.4.1.2 (Document/@id = the ExtrinsicObject id).
    Raises: XDSRepositoryMetadataError for a Document that carries no content reference.
    """
    return [
        ProvidedDocument(id=document_id, attachment=attachment)
        for document_id, attachment in read_documents(body, attachments)
    ]


def provide_and_register(
    repository: Repository, request: Element, attachments: Sequence[Attachment]
) -> Element:
    """ITI-41 in-process: ProvideAndRegisterDocumentSetRequest and its parts in, RegistryResponse
    out (XDS errors as a Failure response, as a remote repository would answer them).

    The narrow interface other actors of this process (the imaging source, RAD-68) use instead of
    SOAP. Standard: ITI TF-2 §3.41.4.
    """
    by_cid = {attachment.content_id: attachment for attachment in attachments}
    try:
        submission = parse_submit_objects_request(request, repository=True)
        return repository.provide(submission, provided_documents(request, by_cid))
    except XDSError as error:
        return failure_body(ITI_41, error)


def handler(repository: Repository) -> Handler:
    """The ITI-41 handler bound to ``repository``. Standard: ITI TF-2 §3.41.4."""

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        submission = parse_submit_objects_request(request.body, repository=True)
        ctx.audit.update(submission.audit_facts(), reply_to=request.addressing.reply_to)
        documents = provided_documents(request.body, request.attachments)
        response = repository.provide(submission, documents)
        return SoapResponse(body=response)

    return handle
