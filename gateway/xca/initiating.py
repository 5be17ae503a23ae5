"""Initiating Gateway (XDS Affinity Domain option) and Initiating Imaging Gateway at ``/xca/ig``.

Local consumers call it as they would call their registry, repository and imaging document
source (ITI TF-1 §18.2.1; RAD TF-1 XCA-I):

- ITI-18: without ``home``, the query goes to this community's registry and, as ITI-38, to every
  configured community at once, each within ``xca.timeout``; the answers are merged, every object
  keeping the homeCommunityId its community gave it. With ``home`` (e.g. GetDocuments for a
  document found earlier) it goes to that community only (ours: the local registry);
  an unknown ``home`` is XDSUnknownCommunity (ITI TF-2 §3.18.4.1.2.3.8).
- ITI-43 and RAD-69: the requested documents are split by HomeCommunityId: none or ours to the
  local repositories / imaging document sources, the others as ITI-39 / RAD-75 to their
  community, all at once; their MTOM parts are passed through as the peer client spooled them.

Errors (ITI TF-2 §3.38.4.1.3, §3.39.4.1.3; ITI TF-3 Table 4.2.4.1-2): a community that fails or
does not answer in time is XDSUnavailableCommunity naming it (location = its homeCommunityId for
a query, the document for a retrieve), and the others' results are still returned with status
PartialSuccess; the errors of a remote answer (XDSTooManyResults among them) are passed on as
they came; a remote object without homeCommunityId is not returned, and an
XDSMissingHomeCommunityId names the Responding Gateway and the object (§3.38.4.1.3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TypeVar

from gateway.errors import (
    XDSError,
    XDSMissingHomeCommunityId,
    XDSUnavailableCommunity,
    XDSUnknownCommunity,
)
from gateway.metadata.query import (
    AdhocQuery,
    QueryAnswer,
    build_query_answer,
    home_of,
    object_label,
    parse_query_request,
    query_audit_facts,
)
from gateway.metadata.retrieve import (
    DocumentRequest,
    ImagingDocumentRequest,
    RegistryError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    Status,
    build_retrieve_response,
    parse_imaging_request,
    parse_retrieve_request,
    registry_errors,
)
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import Element, SoapRequest, SoapResponse
from gateway.soap.transactions import IG_ITI_18, IG_ITI_43, IG_RAD_69, Transaction
from gateway.xca.clients import document_facts, imaging_facts
from gateway.xca.fanout import FanOut, Outcome
from gateway.xca.local import LocalCommunity, merge
from gateway.xca.patients import PatientLookup, for_community
from gateway.xca.remote import RemoteCommunity

log = logging.getLogger("gateway.xca")

_T = TypeVar("_T")


class InitiatingGateway:
    """The three handlers of ``/xca/ig``: this community plus the configured ones."""

    def __init__(
        self,
        *,
        local: LocalCommunity,
        communities: Sequence[RemoteCommunity],
        timeout: float,
        domain: str,
        lookup: PatientLookup | None,
        fanout: FanOut,
    ) -> None:
        self.local = local
        self.home = local.home
        self.communities = {community.home: community for community in communities}
        self.timeout = timeout
        self.domain = domain
        self.lookup = lookup
        self.fanout = fanout

    def handlers(self) -> list[tuple[Transaction, Handler]]:
        """(transaction, handler) pairs for ``Endpoint.bind`` (wired in ``gateway/app.py``)."""
        return [(IG_ITI_18, self.query), (IG_ITI_43, self.retrieve), (IG_RAD_69, self.images)]

    # -- ITI-18 ---------------------------------------------------------------------------------
    def query(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """ITI-18 from a local consumer, answered from every community concerned.

        Standard: ITI TF-1 §18.2.1; ITI TF-2 §3.18.4.1.2.3.8, §3.38.4.1.3.
        Raises: XDSRegistryError (not a query), XDSUnknownCommunity (``home`` unknown).
        """
        ctx.audit.update(query_audit_facts(request.body), reply_to=request.addressing.reply_to)
        query = parse_query_request(request.body)
        if query.home not in (None, self.home, *self.communities):
            raise XDSUnknownCommunity(f"homeCommunityId {query.home!r} is not known here")
        jobs: dict[str, Callable[[], QueryAnswer]] = {}
        skipped: list[RegistryError] = []
        # A gateway without a registry of its own (none here, none configured) asks only the
        # others, unless the query names this community.
        if query.home == self.home or (query.home is None and self.local.registry is not None):
            jobs[self.home] = partial(self.local.query, query)
        for home, community in self.communities.items():
            if query.home not in (None, home):
                continue
            prepared = self._for(query, community)
            if isinstance(prepared, RegistryError):
                skipped.append(prepared)
            else:
                jobs[home] = partial(community.query, prepared)
        outcomes = self.fanout.run(jobs, timeout=self.timeout)
        return SoapResponse(body=build_query_answer(self._merged(outcomes, skipped)))

    def _for(self, query: AdhocQuery, community: RemoteCommunity) -> AdhocQuery | RegistryError:
        domain = community.patient_id_domain
        same = not domain or domain == self.domain
        return for_community(
            query, home=community.home, domain="" if same else domain, lookup=self.lookup
        )

    def _merged(
        self, outcomes: dict[str, Outcome[QueryAnswer]], skipped: list[RegistryError]
    ) -> QueryAnswer:
        objects: list[Element] = []
        errors: list[RegistryError] = list(skipped)
        answered = 0
        for home, outcome in outcomes.items():
            answer = outcome.result
            if answer is None:
                errors.extend(_located(self._failure(home, outcome), home))
                continue
            if home != self.home:
                answer.objects = self._with_home(home, answer, errors)
            objects.extend(answer.objects)
            errors.extend(_located(answer.errors, home))
            answered += answer.status is not Status.FAILURE
        if all(error.is_warning for error in errors):
            status = Status.SUCCESS
        else:
            status = Status.PARTIAL_SUCCESS if answered else Status.FAILURE
        return QueryAnswer(status=status, errors=errors, objects=objects)

    def _with_home(
        self, home: str, answer: QueryAnswer, errors: list[RegistryError]
    ) -> list[Element]:
        kept = [element for element in answer.objects if home_of(element)]
        missing = [object_label(e) for e in answer.objects if not home_of(e)]
        if missing:
            url = self.communities[home].url
            errors.append(
                RegistryError(
                    code=XDSMissingHomeCommunityId.code,
                    context=f"the Responding Gateway {url} returned without homeCommunityId: "
                    + ", ".join(missing),
                    location=home,
                )
            )
        return kept

    def _failure(self, home: str, outcome: Outcome[_T]) -> list[XDSError]:
        if outcome.error is not None:
            return [outcome.error]
        return [
            XDSUnavailableCommunity(
                f"community {home} did not answer within {self.timeout:g} s", location=home
            )
        ]

    # -- ITI-43 ---------------------------------------------------------------------------------
    def retrieve(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """ITI-43 from a local consumer: local documents here, the others by ITI-39.

        Standard: ITI TF-1 §18.2.1; ITI TF-2 §3.39.4.1.2. Raises: XDSRepositoryError (no
        DocumentRequest).
        """
        requests = parse_retrieve_request(request.body)
        ctx.audit.update(document_facts(requests), reply_to=request.addressing.reply_to)
        groups, errors = self._split(requests, lambda r: r)
        jobs: dict[str, Callable[[], RetrieveDocumentSetResponse]] = {
            home: partial(self._source(home).retrieve, members) for home, members in groups.items()
        }
        outcomes = self.fanout.run(jobs, timeout=self.timeout, discard=_discard)
        order = [r.document_unique_id for r in requests]
        return _documents(self._gathered(order, groups, outcomes, errors, lambda r: r))

    # -- RAD-69 ---------------------------------------------------------------------------------
    def images(self, request: SoapRequest, ctx: Context) -> SoapResponse:
        """RAD-69 from a local consumer: local instances here, the others by RAD-75.

        Standard: RAD TF-3 §4.69.4.1.3, §4.75.4.1.2. Raises: XDSErrorList (malformed request).
        """
        parsed = parse_imaging_request(request.body)
        ctx.audit.update(imaging_facts(parsed), reply_to=request.addressing.reply_to)
        items = list(parsed.documents())
        groups, errors = self._split(items, _document)
        syntaxes = parsed.transfer_syntaxes
        jobs: dict[str, Callable[[], RetrieveDocumentSetResponse]] = {
            home: partial(
                self._source(home).retrieve_images,
                RetrieveImagingDocumentSetRequest.of(members, syntaxes),
            )
            for home, members in groups.items()
        }
        outcomes = self.fanout.run(jobs, timeout=self.timeout, discard=_discard)
        order = [item.document.document_unique_id for item in items]
        return _documents(self._gathered(order, groups, outcomes, errors, _document))

    # -- shared ---------------------------------------------------------------------------------
    def _source(self, home: str) -> LocalCommunity | RemoteCommunity:
        return self.local if home == self.home else self.communities[home]

    def _split(
        self, items: Sequence[_T], document: Callable[[_T], DocumentRequest]
    ) -> tuple[dict[str, list[_T]], list[XDSError]]:
        """Items by the community holding them (ours for none); an error for unknown ones."""
        groups: dict[str, list[_T]] = {}
        errors: list[XDSError] = []
        for item in items:
            request = document(item)
            home = request.home_community_id or self.home
            if home == self.home or home in self.communities:
                groups.setdefault(home, []).append(item)
            else:
                uid = request.document_unique_id
                errors.append(
                    XDSUnknownCommunity(
                        f"DocumentRequest {uid}: HomeCommunityId {home} is not a known community",
                        location=uid or None,
                    )
                )
        return groups, errors

    def _gathered(
        self,
        order: list[str],
        groups: dict[str, list[_T]],
        outcomes: dict[str, Outcome[RetrieveDocumentSetResponse]],
        errors: list[XDSError],
        document: Callable[[_T], DocumentRequest],
    ) -> RetrieveDocumentSetResponse:
        """One answer: the documents that came, an error per document of a failed source
        (location: the document; the context names the community)."""
        results = []
        failed: list[XDSError | RegistryError] = list(errors)
        for home, outcome in outcomes.items():
            if outcome.result is not None:
                results.append(outcome.result)
                continue
            (cause,) = self._failure(home, outcome)
            for item in groups[home]:
                uid = document(item).document_unique_id
                failed.append(
                    RegistryError(code=cause.code, context=f"{uid}: {cause.context}", location=uid)
                )
        return merge(order, results, failed)


def _document(item: ImagingDocumentRequest) -> DocumentRequest:
    return item.document


def _located(errors: Sequence[XDSError | RegistryError], home: str) -> list[RegistryError]:
    """The errors, those without a location naming the community that gave them."""
    return [e if e.location else replace(e, location=home) for e in registry_errors(errors)]


def _discard(result: RetrieveDocumentSetResponse) -> None:
    result.discard()


def _documents(answer: RetrieveDocumentSetResponse) -> SoapResponse:
    return SoapResponse(
        body=build_retrieve_response(answer),
        attachments=[document.attachment for document in answer.documents],
        mtom=True,  # ITI TF-2 Appendix V §V.3.3.2.2: ITI-43 and RAD-69 responses are MTOM/XOP
    )
