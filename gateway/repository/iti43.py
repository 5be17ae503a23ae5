"""ITI-43 Retrieve Document Set at ``/xds/repository``: the thin SOAP handler.

Decode the DocumentRequests, call :meth:`Repository.retrieve`, answer with a
RetrieveDocumentSetResponse whose documents are MTOM parts streamed from storage in chunks by
the dispatcher (never the whole set in memory). Status Success, PartialSuccess or Failure; one
RegistryError per document not returned.

Standard: ITI TF-2 §3.43 (rev. 19.0): §3.43.4.1.2 request, §3.43.4.2.2-3 response and expected
actions; ITI TF-2 Appendix V §V.3.3.2.2 (MTOM/XOP).
"""

from __future__ import annotations

from gateway.metadata.retrieve import build_retrieve_response, parse_retrieve_request
from gateway.repository.actor import Repository
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_43

TRANSACTION = ITI_43
# Wire constants (one source of truth: the transaction table of gateway.soap.transactions)
ACTION = ITI_43.action
RESPONSE_ACTION = ITI_43.response_action
REQUEST_QNAME = ITI_43.request_qname
RESPONSE_QNAME = ITI_43.response_qname
TF = "ITI TF-2 §3.43"


def handler(repository: Repository) -> Handler:
    """The ITI-43 handler bound to ``repository``. Standard: ITI TF-2 §3.43.4.

    Raises: XDSRepositoryError for a request without any DocumentRequest (the schema requires
    one or more; raised by the codec).
    """

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        requests = parse_retrieve_request(request.body)
        ctx.audit.update(
            document_unique_ids=[r.document_unique_id for r in requests if r.document_unique_id],
            repository_unique_ids=list(
                dict.fromkeys(r.repository_unique_id for r in requests if r.repository_unique_id)
            ),
            home_community_ids=list(
                dict.fromkeys(r.home_community_id for r in requests if r.home_community_id)
            ),
            reply_to=request.addressing.reply_to,
        )  # ITI TF-2 §3.43.5.1 (patient not known from the request)
        result = repository.retrieve(requests)
        return SoapResponse(
            body=build_retrieve_response(result),
            attachments=[d.attachment for d in result.documents],
        )

    return handle
