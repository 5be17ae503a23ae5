"""RAD-69 Retrieve Imaging Document Set: the SOAP handler at ``/xdsi/source``.

Thin: decode the request body, ask the :class:`~gateway.imaging.retrieve.ImagingRetriever`,
encode the response; every instance is an MTOM part streamed from disk. Errors the codec or the
retriever raise (XDSIRequestError, XDSRepositoryError) become a Failure response at the SOAP
boundary (``gateway.soap.dispatch``).

Wiring (``gateway/app.py``)::

    endpoint = soap.endpoint(tx.IMAGING_SOURCE_PATH, tx.ENDPOINTS[tx.IMAGING_SOURCE_PATH])
    endpoint.bind(rad69.TRANSACTION, rad69.make_handler(source.retriever))
"""

from __future__ import annotations

from typing import Any

from gateway.imaging.retrieve import ImagingRetriever
from gateway.metadata.retrieve import (
    RetrieveImagingDocumentSetRequest,
    build_retrieve_response,
    parse_imaging_request,
)
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import RAD_69

TRANSACTION = RAD_69
ACTION = RAD_69.action  # urn:ihe:rad:2009:RetrieveImagingDocumentSet
RESPONSE_ACTION = RAD_69.response_action  # urn:ihe:iti:2007:RetrieveDocumentSetResponse
REQUEST_QNAME = RAD_69.request_qname  # {urn:ihe:rad:xdsi-b:2009}RetrieveImagingDocumentSetRequest
TF = "RAD TF-3 §4.69"


def make_handler(retriever: ImagingRetriever) -> Handler:
    """The RAD-69 handler bound to one imaging document source."""

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        """Retrieve Imaging Document Set. Standard: RAD TF-3 §4.69.4.
        Raises: XDSIRequestError, XDSRepositoryError (the whole request fails)."""
        parsed = parse_imaging_request(request.body)
        ctx.audit.update(audit_facts(parsed), reply_to=request.addressing.reply_to)
        result = retriever.retrieve(parsed)
        return SoapResponse(
            body=build_retrieve_response(result),
            attachments=[document.attachment for document in result.documents],
            mtom=True,  # ITI TF-2 Appendix V §V.3.3.2.2: RAD-69 responses are MTOM/XOP
        )

    return handle


def audit_facts(parsed: RetrieveImagingDocumentSetRequest) -> dict[str, Any]:
    """Studies, series and instances asked for, and the repository (Retrieve Location) UID.

    Standard: RAD TF-3 §4.69.5.1 (Study ParticipantObject with its SOP instances).
    """
    studies = [
        {
            "study_uid": study.study_instance_uid,
            "series_uids": [series.series_instance_uid for series in study.series],
            "instances": [
                (None, document.document_unique_id)
                for series in study.series
                for document in series.documents
            ],
        }
        for study in parsed.studies
    ]
    locations = [item.document.repository_unique_id for item in parsed.documents()]
    return {"studies": studies, "repository_unique_id": locations[0] if locations else None}
