"""Responding Gateway and Responding Imaging Gateway at ``/xca/rg``: ITI-38, ITI-39, RAD-75.

Each handler is thin: decode, check the homeCommunityId, ask this community's actors
(:class:`~gateway.xca.local.LocalCommunity`), encode. What the standard asks of the answers:

- ITI-38 (ITI TF-2 §3.38.4.1.3): a ``home`` naming another community is XDSUnknownCommunity; a
  query without a patient identifier and without ``home`` is XDSMissingHomeCommunityId; every
  returned object, ObjectRef included, carries this community's homeCommunityId (§3.38.1:
  "returned within all appropriate elements").
- ITI-39 (ITI TF-2 §3.39.4.1.3) and RAD-75 (RAD TF-3 §4.75.4.1.3): every DocumentRequest names
  this community (XDSMissingHomeCommunityId, XDSUnknownCommunity otherwise, per document); the
  documents are asked of the repository / imaging document source their RepositoryUniqueId names
  (XDSUnknownRepositoryId when none), the answers consolidated into one, each DocumentResponse
  with this community's HomeCommunityId.
- All three: "every RegistryError element returned in the response shall have the location
  attribute set to the homeCommunityId of the Responding Gateway" (ITI TF-2 §3.38.4.1.3,
  §3.39.4.1.3; RAD TF-3 §4.75.4.1.3). The codeContext keeps naming the document concerned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from gateway.errors import XDSError, XDSMissingHomeCommunityId, XDSUnknownCommunity
from gateway.metadata.query import (
    build_query_answer,
    has_patient_parameter,
    parse_query_request,
    query_audit_facts,
)
from gateway.metadata.retrieve import (
    DocumentRequest,
    RegistryError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    build_retrieve_response,
    failure_body,
    parse_imaging_request,
    parse_retrieve_request,
    registry_errors,
)
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_38, ITI_39, RAD_75, Transaction
from gateway.xca.clients import document_facts, imaging_facts
from gateway.xca.local import LocalCommunity, merge

log = logging.getLogger("gateway.xca")


class RespondingGateway:
    """The three handlers of ``/xca/rg`` over one community."""

    def __init__(self, community: LocalCommunity) -> None:
        self.community = community
        self.home = community.home

    def handlers(self) -> list[tuple[Transaction, Handler]]:
        """(transaction, handler) pairs for ``Endpoint.bind`` (wired in ``gateway/app.py``)."""
        return [
            (ITI_38, self._answering(ITI_38, self.query)),
            (ITI_39, self._answering(ITI_39, self.retrieve)),
            (RAD_75, self._answering(RAD_75, self.retrieve_images)),
        ]

    def _answering(
        self, transaction: Transaction, handle: Callable[[SoapRequest, Context], SoapResponse]
    ) -> Handler:
        """The handler, answering an XDS error of the whole request itself (location: home)."""

        def answer(request: SoapRequest, ctx: Context) -> SoapResponse:
            try:
                return handle(request, ctx)
            except XDSError as error:
                log.info("request %s %s refused: %s", ctx.request_id, transaction.name, error)
                return SoapResponse(body=failure_body(transaction, self.located(error)))

        return answer

    def located(self, errors: Iterable[XDSError | RegistryError]) -> list[RegistryError]:
        """The errors with their location set to this community (see the module docstring)."""
        return [replace(error, location=self.home) for error in registry_errors(errors)]

    # -- ITI-38 ---------------------------------------------------------------------------------
    def query(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """ITI-38 Cross Gateway Query. Standard: ITI TF-2 §3.38.4.1.3.

        Raises: XDSRegistryError (not a query), XDSUnknownCommunity, XDSMissingHomeCommunityId.
        """
        ctx.audit.update(query_audit_facts(request.body), reply_to=request.addressing.reply_to)
        query = parse_query_request(request.body)
        if query.home is not None and query.home != self.home:
            raise XDSUnknownCommunity(
                f"homeCommunityId {query.home!r} is not this community ({self.home})"
            )
        if query.home is None and not has_patient_parameter(query):
            raise XDSMissingHomeCommunityId(
                "a Cross Gateway Query without a patient identifier must name the community "
                "(home attribute of the AdhocQuery, ITI TF-2 §3.38.4.1.2.1)"
            )
        answer = self.community.query(query)
        answer.errors = self.located(answer.errors)
        return SoapResponse(body=build_query_answer(answer))

    # -- ITI-39 ---------------------------------------------------------------------------------
    def retrieve(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """ITI-39 Cross Gateway Retrieve. Standard: ITI TF-2 §3.39.4.1.3.

        Raises: XDSRepositoryError (no DocumentRequest).
        """
        requests = parse_retrieve_request(request.body)
        ctx.audit.update(document_facts(requests), reply_to=request.addressing.reply_to)
        wanted, refused = self._ours(requests)
        result = self.community.retrieve(wanted) if wanted else _nothing()
        return self._documents([r.document_unique_id for r in requests], result, refused)

    # -- RAD-75 ---------------------------------------------------------------------------------
    def retrieve_images(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """RAD-75 Cross Gateway Retrieve Imaging Document Set. Standard: RAD TF-3 §4.75.4.1.3.

        Raises: XDSErrorList of XDSIRequestError / XDSRepositoryError (malformed request).
        """
        parsed = parse_imaging_request(request.body)
        ctx.audit.update(imaging_facts(parsed), reply_to=request.addressing.reply_to)
        items = list(parsed.documents())
        _, refused = self._ours([item.document for item in items])
        bad = {error.location for error in refused}
        ours = [item for item in items if item.document.document_unique_id not in bad]
        result = _nothing()
        if ours:
            subset = RetrieveImagingDocumentSetRequest.of(ours, parsed.transfer_syntaxes)
            result = self.community.retrieve_images(subset)
        order = [item.document.document_unique_id for item in items]
        return self._documents(order, result, refused)

    # -- shared ---------------------------------------------------------------------------------
    def _ours(
        self, requests: Sequence[DocumentRequest]
    ) -> tuple[list[DocumentRequest], list[XDSError]]:
        """The requests naming this community, and an error for each of the others."""
        wanted: list[DocumentRequest] = []
        refused: list[XDSError] = []
        for item in requests:
            uid = item.document_unique_id
            if not item.home_community_id:
                refused.append(
                    XDSMissingHomeCommunityId(
                        f"DocumentRequest {uid} names no HomeCommunityId", location=uid
                    )
                )
            elif item.home_community_id != self.home:
                refused.append(
                    XDSUnknownCommunity(
                        f"DocumentRequest {uid}: HomeCommunityId {item.home_community_id} is "
                        f"not this community ({self.home})",
                        location=uid,
                    )
                )
            else:
                wanted.append(item)
        return wanted, refused

    def _documents(
        self, order: Sequence[str], result: RetrieveDocumentSetResponse, refused: list[XDSError]
    ) -> SoapResponse:
        answer = merge(order, [result], refused)
        for document in answer.documents:
            document.home_community_id = self.home
        answer.errors = self.located(answer.errors)
        return SoapResponse(
            body=build_retrieve_response(answer),
            attachments=[document.attachment for document in answer.documents],
            mtom=True,  # ITI TF-2 Appendix V §V.3.3.2.2; RAD TF-3 §4.75: MTOM/XOP responses
        )


def _nothing() -> RetrieveDocumentSetResponse:
    return RetrieveDocumentSetResponse.answer([], [])
