"""This community's own actors as both gateways reach them: one registry, repositories and imaging
document sources by unique id, each in this process or behind its SOAP endpoint.

A Responding Gateway "determines the local system or systems which hold the documents requested
and interacts with those systems" (ITI TF-2 §3.39.4.1.3; RAD TF-3 §4.75.4.1.3 for the imaging
document sources); an Initiating Gateway of the XDS Affinity Domain option does the same for the
documents of its own community (ITI TF-1 §18.2.1). A DocumentRequest naming a repositoryUniqueId
this community does not know gets XDSUnknownRepositoryId (ITI TF-2 §3.43.4.1.3); the others are
sent, one request per repository, and the answers merged in request order (RAD TF-3 §4.75.4.1.3:
"consolidate the results ... into one response", PartialSuccess when some fail).

The callables are wired in ``gateway/app.py``: in-process, the registry's stored queries, the
repository's and the imaging source's retrieve; else a :class:`~gateway.xca.clients.Peer` on the
endpoint ``[consumer]`` names for that unique id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from gateway.errors import XDSError, XDSRegistryError, XDSUnknownRepositoryId
from gateway.metadata.query import AdhocQuery, QueryAnswer, read_query_answer, set_home
from gateway.metadata.retrieve import (
    DocumentRequest,
    DocumentResponse,
    RegistryError,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    registry_errors,
)
from gateway.soap.message import Element, new_content_id

log = logging.getLogger("gateway.xca")

QueryRegistry = Callable[[AdhocQuery], Element]  # -> query:AdhocQueryResponse, Failure included
RetrieveDocuments = Callable[[Sequence[DocumentRequest]], RetrieveDocumentSetResponse]
RetrieveImages = Callable[[RetrieveImagingDocumentSetRequest], RetrieveDocumentSetResponse]
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(slots=True, kw_only=True)
class LocalCommunity:
    """The registry, repositories and imaging document sources of this community."""

    home: str
    registry: QueryRegistry | None = None
    repositories: Mapping[str, RetrieveDocuments] = field(default_factory=dict)
    imaging_sources: Mapping[str, RetrieveImages] = field(default_factory=dict)

    def query(self, query: AdhocQuery) -> QueryAnswer:
        """Run a stored query at this community's registry; every object gets ``home``.

        Standard: ITI TF-2 §3.38.4.1.3. Raises: XDSRegistryError (no registry, unreachable).
        """
        if self.registry is None:
            raise XDSRegistryError("this community has no registry to query")
        answer = read_query_answer(self.registry(query))
        set_home(answer.objects, self.home)
        return answer

    def retrieve(self, requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        """ITI-43 to the repositories holding the documents; one merged answer.

        Standard: ITI TF-2 §3.43.4.1.3, §3.39.4.1.3 (XDSUnknownRepositoryId).
        """
        groups, errors = _by_repository(requests, self.repositories, lambda r: r)
        results = [
            _guarded(self.repositories[uid], members, members) for uid, members in groups.items()
        ]
        return merge([r.document_unique_id for r in requests], results, errors)

    def retrieve_images(
        self, request: RetrieveImagingDocumentSetRequest
    ) -> RetrieveDocumentSetResponse:
        """RAD-69 to the imaging document sources holding the instances; one merged answer.

        Standard: RAD TF-3 §4.69.4.1.3, §4.75.4.1.3 (one RAD-69 per imaging document source).
        """
        items = list(request.documents())
        groups, errors = _by_repository(items, self.imaging_sources, lambda i: i.document)
        results = []
        for uid, members in groups.items():
            subset = RetrieveImagingDocumentSetRequest.of(members, request.transfer_syntaxes)
            documents = [m.document for m in members]
            results.append(_guarded(self.imaging_sources[uid], subset, documents))
        return merge([i.document.document_unique_id for i in items], results, errors)


def _by_repository(
    items: Iterable[_T], known: Mapping[str, object], document: Callable[[_T], DocumentRequest]
) -> tuple[dict[str, list[_T]], list[XDSError]]:
    groups: dict[str, list[_T]] = {}
    errors: list[XDSError] = []
    for item in items:
        request = document(item)
        uid = request.repository_unique_id
        if uid in known:
            groups.setdefault(uid, []).append(item)
        else:
            errors.append(
                XDSUnknownRepositoryId(
                    f"RepositoryUniqueId {uid!r} of document {request.document_unique_id} is "
                    "not known in this community",
                    location=request.document_unique_id or None,
                )
            )
    return groups, errors


def _guarded(
    call: Callable[[_R], RetrieveDocumentSetResponse],
    request: _R,
    documents: Sequence[DocumentRequest],
) -> RetrieveDocumentSetResponse:
    """A source's answer; a whole-request XDS error becomes the answer of its documents."""
    try:
        return call(request)
    except XDSError as error:
        log.info("retrieve of %d document(s) failed: %s", len(documents), error)
        return RetrieveDocumentSetResponse.answer([], [error])


def merge(
    order: Sequence[str],
    results: Iterable[RetrieveDocumentSetResponse],
    errors: Iterable[XDSError | RegistryError] = (),
) -> RetrieveDocumentSetResponse:
    """One answer of several: documents in request order, every error, the status they make
    (Success, PartialSuccess with some documents, else Failure).

    Content-IDs stay unique: a part whose id another source already used gets a fresh one (two
    peers may number their parts alike). Standard: ITI TF-2 §3.43.4.2.3; RAD TF-3 §4.75.4.1.3.
    """
    position = {uid: index for index, uid in reversed(list(enumerate(order)))}
    documents: list[DocumentResponse] = []
    found: list[XDSError | RegistryError] = list(errors)
    used: set[str] = set()
    for result in results:
        documents.extend(result.documents)
        found.extend(result.errors)
    for document in documents:
        if document.attachment.content_id in used:
            document.attachment.content_id = new_content_id()
        used.add(document.attachment.content_id)
    documents.sort(key=lambda d: position.get(d.document_unique_id, len(position)))
    return RetrieveDocumentSetResponse.answer(documents, registry_errors(found))
