"""The SOAP calls of the gateways: one :class:`Peer` per endpoint, three operations.

A gateway calls two kinds of peer: this community's own actors when they run in another process
(the registry by ITI-18, a repository by ITI-43, an imaging document source by RAD-69), and the
Responding Gateways of other communities (ITI-38, ITI-39, RAD-75; the same bodies under the
cross-gateway actions). Both go through the gateway's one :class:`~gateway.soap.client.SoapClient`;
what differs is the XDS error a failure becomes, given by the peer's ``failure`` factory:
XDSRegistryError / XDSRepositoryError for a local actor that cannot be reached,
XDSUnavailableCommunity (location = the community) for a remote community (ITI TF-2 §3.38.4.1.3,
ITI TF-3 Table 4.2.4.1-2).

MTOM parts of a retrieve answer are spooled by the client to temporary files in ``spool_dir``
(above ``memory_threshold``) and handed on as they are: the gateway answering its caller streams
them from those files and removes them once sent, so a document crossing a gateway is written to
disk once and never held whole in memory.

Every call is audited on the initiator side when a trail is given (ITI TF-2 §3.38.5.1,
§3.39.5.1; RAD TF-3 §4.75).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from gateway.errors import XDSError
from gateway.metadata.query import (
    AdhocQuery,
    QueryAnswer,
    build_query_request,
    query_audit_facts,
    read_query_answer,
)
from gateway.metadata.retrieve import (
    DocumentRequest,
    ResponseFormatError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    build_imaging_request,
    build_retrieve_request,
    parse_retrieve_response,
)
from gateway.soap.client import ClientResponse, SessionFactory, SoapClient, SoapClientError
from gateway.soap.message import Element
from gateway.soap.transactions import Transaction

Failure = Callable[[str], XDSError]


class Trail(Protocol):
    """What a peer needs of the audit trail (``gateway.audit.trail.AuditTrail``)."""

    def record_client_call(
        self, transaction: str, *, endpoint: str, outcome: str, facts: Mapping[str, Any]
    ) -> None: ...


class Peer:
    """One endpoint this gateway calls; thread-safe (one SoapClient, shared)."""

    def __init__(
        self,
        url: str,
        *,
        failure: Failure,
        timeout: float,
        spool_dir: str | os.PathLike[str] | None = None,
        memory_threshold: int = 1024 * 1024,
        session_factory: SessionFactory | None = None,
        trail: Trail | None = None,
    ) -> None:
        self.url = url
        self.failure = failure
        self.trail = trail
        self._soap = SoapClient(
            url,
            timeout=timeout,
            session_factory=session_factory,
            spool_dir=spool_dir,
            memory_threshold=memory_threshold,
        )

    def _call(self, transaction: Transaction, body: Element, facts: Mapping[str, Any]) -> Any:
        try:
            return self._soap.call(transaction, body)
        except SoapClientError as exc:
            self._audit(transaction, "Failure", facts)
            raise self.failure(f"{transaction.name} to {self.url} failed: {exc}") from exc

    def _audit(self, transaction: Transaction, outcome: str, facts: Mapping[str, Any]) -> None:
        if self.trail is not None:
            self.trail.record_client_call(
                transaction.name, endpoint=self.url, outcome=outcome, facts=facts
            )

    def query(self, transaction: Transaction, query: AdhocQuery) -> QueryAnswer:
        """ITI-18 or ITI-38: the answer with its objects as elements (Failure included).

        Standard: ITI TF-2 §3.18.4.1, §3.38.4.1. Raises: the peer's failure (no usable answer).
        """
        body = build_query_request(query)
        facts = query_audit_facts(body)
        answer: ClientResponse = self._call(transaction, body, facts)
        try:
            result = read_query_answer(answer.body)
        except ResponseFormatError as exc:
            self._audit(transaction, "Failure", facts)
            raise self.failure(f"{transaction.name} answer from {self.url}: {exc}") from exc
        self._audit(transaction, result.status.short, facts)
        return result

    def retrieve(
        self, transaction: Transaction, requests: Sequence[DocumentRequest]
    ) -> RetrieveDocumentSetResponse:
        """ITI-43 or ITI-39: documents (MTOM parts, handed on as spooled) and errors.

        Standard: ITI TF-2 §3.43.4, §3.39.4. Raises: the peer's failure.
        """
        facts = document_facts(requests)
        return self._retrieve(transaction, build_retrieve_request(requests), facts)

    def retrieve_images(
        self, transaction: Transaction, request: RetrieveImagingDocumentSetRequest
    ) -> RetrieveDocumentSetResponse:
        """RAD-69 or RAD-75: instances (MTOM parts, handed on as spooled) and errors.

        Standard: RAD TF-3 §4.69.4, §4.75.4. Raises: the peer's failure.
        """
        facts = imaging_facts(request)
        return self._retrieve(transaction, build_imaging_request(request), facts)

    def _retrieve(
        self, transaction: Transaction, body: Element, facts: Mapping[str, Any]
    ) -> RetrieveDocumentSetResponse:
        answer: ClientResponse = self._call(transaction, body, facts)
        try:
            result = parse_retrieve_response(answer.body, answer.attachments)
        except ResponseFormatError as exc:
            answer.discard_attachments()
            self._audit(transaction, "Failure", facts)
            raise self.failure(f"{transaction.name} answer from {self.url}: {exc}") from exc
        self._audit(transaction, result.status.short, facts)
        return result

    def close(self) -> None:
        """Close idle connections (the peer stays usable)."""
        self._soap.close()


def document_facts(requests: Sequence[DocumentRequest]) -> dict[str, Any]:
    """Audit facts of a document retrieve: documents, repositories, communities.

    Standard: ITI TF-2 §3.43.5.1, §3.39.5.1 (Document ParticipantObjects with their repository
    and homeCommunityId).
    """
    homes = [r.home_community_id or "" for r in requests]
    return {
        "document_unique_ids": [r.document_unique_id for r in requests],
        "repository_unique_ids": [r.repository_unique_id for r in requests],
        # aligned with the documents when every request names one, else the one(s) named
        "home_community_ids": homes if all(homes) else sorted(set(filter(None, homes))),
    }


def imaging_facts(request: RetrieveImagingDocumentSetRequest) -> dict[str, Any]:
    """Audit facts of an imaging retrieve: studies, series and instances, the locations and
    communities asked. Standard: RAD TF-3 §4.69.5.1 (Study ParticipantObject), §4.75."""
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
        for study in request.studies
    ]
    items = list(request.documents())
    homes = {i.document.home_community_id for i in items if i.document.home_community_id}
    locations = dict.fromkeys(i.document.repository_unique_id for i in items)
    return {
        "studies": studies,
        "repository_unique_ids": list(locations),
        "home_community_ids": sorted(homes),
    }
