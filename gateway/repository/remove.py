"""ITI-86 Remove Documents: the Document Repository side, all or nothing, bytes included.

Protocol (the repository's index is the commit point, ``gateway.repository.index``):

1. One index transaction checks every requested document (this repositoryUniqueId, a
   ``confirmed`` row) and turns each document's row into an orphan-sweep reservation of its
   storage key (``orphan:<key>``, ``pending``, owned by this process). Any error rolls the
   transaction back: nothing is removed (Failure, one RegistryError per document).
2. After the commit no ITI-43 serves the documents, and no ITI-41 can place a file under their
   storage keys (the reservation holds the keys).
3. The files are deleted (unlink + directory fsync), then the reservations.

A crash between 2 and 3 leaves reservations of a gone owner, which any process's recovery
(``Recovery.resolve``: "an interrupted orphan deletion: finish it") completes; a failed unlink
marks them ``unresolved`` so this process's own resolver retries. So once step 1 commits, the
bytes are always deleted, and Success is answered only after they are.

The registry's metadata is removed separately (ITI-62, RMD: the Document Administrator sends
both). Standard: ITI TF-2b §3.86 (RMD), error codes ITI TF-3 Table 4.2.4.1-2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update

from gateway.database.engine import write_transaction
from gateway.errors import (
    XDSDocumentUniqueIdError,
    XDSError,
    XDSErrorList,
    XDSRepositoryBusy,
    XDSRepositoryError,
    XDSUnknownRepositoryId,
)
from gateway.metadata.removal import parse_remove_documents_request
from gateway.metadata.retrieve import DocumentRequest, build_registry_response, status_for
from gateway.repository.actor import Repository
from gateway.repository.index import ORPHAN_PREFIX, RepositoryIndex
from gateway.repository.schema import CONFIRMED, PENDING, repository_document
from gateway.repository.storage import DocumentStorage
from gateway.soap.dispatch import Context, Handler
from gateway.soap.message import SoapRequest, SoapResponse
from gateway.soap.transactions import ITI_86

TRANSACTION = ITI_86
ACTION = ITI_86.action  # urn:ihe:iti:2017:RemoveDocuments

log = logging.getLogger("gateway.repository")

__all__ = ["ACTION", "TRANSACTION", "handler", "remove_documents", "remove_stored"]

_doc = repository_document.c


class _Refused(Exception):
    def __init__(self, errors: list[XDSError]) -> None:
        super().__init__("refused")
        self.errors = errors


def remove_documents(repository: Repository, requests: Sequence[DocumentRequest]) -> list[str]:
    """ITI-86 at ``repository``: see :func:`remove_stored`. Standard: ITI TF-2b §3.86.4.1.3."""
    return remove_stored(
        requests,
        unique_id=repository.unique_id,
        index=repository.index,
        storage=repository.storage,
        owner=repository.owner,
        now=repository.clock(),
    )


def remove_stored(
    requests: Sequence[DocumentRequest],
    *,
    unique_id: str,
    index: RepositoryIndex,
    storage: DocumentStorage,
    owner: str,
    now: float,
) -> list[str]:
    """Remove the requested documents of repository ``unique_id`` (index rows and stored
    bytes), all or none; return the uniqueIds removed. ``owner`` is written in the storage-key
    reservations (a process lease, or any name no lease holds: the recovery of a running
    gateway then finishes an interrupted removal). Standard: ITI TF-2b §3.86.4.1.3.

    Raises: XDSErrorList of XDSUnknownRepositoryId, XDSDocumentUniqueIdError, XDSRepositoryBusy
    (nothing removed); XDSRepositoryError when the bytes could not be deleted now (the documents
    are no longer served; the files are deleted by the recovery).
    """
    uids = _requested(requests, unique_id)
    rows = _retire(index, uids, unique_id=unique_id, owner=owner, now=now)
    keys = [str(rows[uid].storage_key) for uid in uids]
    reservations = [f"{ORPHAN_PREFIX}{key}" for key in keys]
    try:
        for key in keys:
            storage.delete(key)
    except OSError as exc:
        index.mark_unresolved(reservations, owner=owner)
        log.error("ITI-86: stored bytes not deleted yet (%s); the recovery will", exc)
        raise XDSRepositoryError(
            "the documents are removed from the index; their stored bytes will be deleted "
            "by the repository's recovery"
        ) from exc
    index.remove(reservations, owner=owner)
    log.info("ITI-86 removed %d document(s): %s", len(uids), ", ".join(uids))
    return uids


def _requested(requests: Sequence[DocumentRequest], unique_id: str) -> list[str]:
    """The uniqueIds requested from repository ``unique_id``, in order, without repeats."""
    errors: list[XDSError] = []
    wanted: dict[str, None] = {}
    for request in requests:
        uid = request.document_unique_id
        if request.repository_unique_id != unique_id:
            errors.append(
                XDSUnknownRepositoryId(
                    f"RepositoryUniqueId {request.repository_unique_id!r} is not this "
                    f"repository ({unique_id})",
                    location=uid or None,
                )
            )
        elif not uid:
            errors.append(XDSDocumentUniqueIdError("a DocumentRequest has no DocumentUniqueId"))
        else:
            wanted.setdefault(uid, None)
    if errors:
        raise XDSErrorList(errors)
    return list(wanted)


def _retire(
    index: RepositoryIndex, uids: list[str], *, unique_id: str, owner: str, now: float
) -> dict[str, Any]:
    """Step 1: in one transaction, turn every document's row into a reservation of its storage
    key, or change nothing (XDSErrorList). Returns the rows as they were."""
    errors: list[XDSError] = []
    try:
        with write_transaction(index.engine) as conn:
            rows = {
                str(row.unique_id): row
                for row in conn.execute(
                    select(_doc.unique_id, _doc.storage_key, _doc.state).where(
                        _doc.unique_id.in_(uids)
                    )
                )
            }
            for uid in uids:
                row = rows.get(uid)
                if row is None:
                    errors.append(
                        XDSDocumentUniqueIdError(
                            f"Document {uid!r} is not held by repository {unique_id}",
                            location=uid,
                        )
                    )
                elif row.state != CONFIRMED:
                    errors.append(
                        XDSRepositoryBusy(
                            f"Document {uid} is being stored and is not settled yet; retry later",
                            location=uid,
                        )
                    )
            if errors:
                raise _Refused(errors)
            for uid in uids:
                key = str(rows[uid].storage_key)
                changed = conn.execute(
                    update(repository_document)
                    .where(_doc.unique_id == uid, _doc.state == CONFIRMED)
                    .values(
                        unique_id=f"{ORPHAN_PREFIX}{key}", state=PENDING, owner=owner, created=now
                    )
                )
                if changed.rowcount != 1:
                    raise _Refused(
                        [XDSRepositoryBusy(f"Document {uid} changed meanwhile", location=uid)]
                    )
    except _Refused as refused:
        raise XDSErrorList(refused.errors) from None
    return rows


def handler(repository: Repository) -> Handler:
    """The ITI-86 handler bound to ``repository``: rmd:RemoveDocumentsRequest in,
    rs:RegistryResponse out. Standard: ITI TF-2b §3.86.4.1, §3.86.4.2."""

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        requests = parse_remove_documents_request(request.body)
        ctx.audit.update(
            document_unique_ids=[r.document_unique_id for r in requests if r.document_unique_id],
            repository_unique_ids=list(
                dict.fromkeys(r.repository_unique_id for r in requests if r.repository_unique_id)
            ),
            reply_to=request.addressing.reply_to,
        )
        remove_documents(repository, requests)
        return SoapResponse(body=build_registry_response(status_for([]), []))

    return handle
