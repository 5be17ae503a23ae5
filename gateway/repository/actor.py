"""The Document Repository actor: store, register, retrieve — atomically and durably.

Write path of one ITI-41 (ITI TF-2 §3.41.4.1.3), designed so that **at every instant either the
registry does not list a document or its bytes are durable at their final place**, and nothing
unconfirmed is ever served:

1. Check the metadata (``gateway.metadata.validate``, ITI-41 rules), pair Documents with
   DocumentEntries and compare size, hash and media type (``checks``). Set hash, size and
   repositoryUniqueId on the entries.
2. *Reserve* every uniqueId in the index (one transaction, all or nothing): a new uniqueId gets a
   ``pending`` row; one already ``confirmed`` with the same hash, size and mimeType is an
   identical resubmission (its stored file is reused, never rewritten nor deleted); any other
   known uniqueId rejects the submission (XDSNonIdenticalHash/Size, or XDSRepositoryBusy while
   another submission of it is unsettled).
3. *Place* each new document: the spooled request part (streamed to disk while it was received,
   hashed on the way) is fsync'd and renamed to its final path, the directory fsync'd
   (``storage.LocalFolderStorage``). Pending documents are not served.
4. *Register* through ITI-42 (``registry_client``).
5. Success -> rows ``confirmed`` (served from now on), then the registry's response is returned
   unchanged. Failure -> files deleted, then rows deleted; the registry's response (its errors
   and warnings unchanged) is returned. No answer -> the registry is asked (GetDocuments)
   whether it listed the documents: yes -> confirmed; otherwise the rows become ``unresolved``
   and ``recovery`` settles them later; the caller gets XDSRegistryNotAvailable.

A SIGKILL at any point leaves pending or unresolved rows (with or without their files); once
the killed process's lease is gone (at once when it restarts on the same machine, else after
``gateway.lease_seconds``) ``recovery`` in any process on the database asks the registry about
them (listed -> confirmed, not listed -> deleted, registry unreachable -> kept unserved and asked
again every ``retry_seconds``), and deletes stored files no row names. A live process's rows are
never judged by another: several processes may share the index and the storage folder.

Retrieve (ITI TF-2 §3.43.4.2.3): only ``confirmed`` rows are served, with the mimeType recorded
from the metadata; other repositories' ids give XDSUnknownRepositoryId, unknown or unsettled
documents XDSDocumentUniqueIdError.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from gateway.errors import (
    XDSDocumentUniqueIdError,
    XDSError,
    XDSErrorList,
    XDSNonIdenticalHash,
    XDSNonIdenticalSize,
    XDSRepositoryBusy,
    XDSRepositoryError,
    XDSRepositoryMetadataError,
    XDSRepositoryOutOfResources,
    XDSUnknownRepositoryId,
)
from gateway.metadata.ebrim import build_submit_objects_request
from gateway.metadata.model import Submission
from gateway.metadata.retrieve import (
    DocumentRequest,
    DocumentResponse,
    RetrieveDocumentSetResponse,
    response_status,
)
from gateway.metadata.validate import ITI_41, check_submission
from gateway.repository.checks import (
    Match,
    apply_computed,
    check_document,
    match_documents,
    media_type,
)
from gateway.repository.index import CONFIRMED, RepositoryIndex, StoredDocument
from gateway.repository.model import ProvidedDocument
from gateway.repository.recovery import Recovery, Resolver
from gateway.repository.registry_client import RegistryClient
from gateway.repository.storage import DocumentStorage, LocalFolderStorage, storage_key
from gateway.soap.message import Attachment, Element

if TYPE_CHECKING:
    from gateway.config import Settings

log = logging.getLogger("gateway.repository")


@dataclass(slots=True, kw_only=True)
class _Item:
    row: StoredDocument
    attachment: Attachment
    new: bool  # False: identical resubmission of a confirmed document (file reused)


class Repository:
    """One Document Repository: ``unique_id`` is its repositoryUniqueId.

    ``settle_seconds``: how old an unsettled document must be before a "not registered" answer
    deletes it (0 for the in-process registry; for a remote one at least its ITI-42 timeout,
    twice that to be safe, since the remote registry may commit after its client gave up).
    ``retry_seconds``: how often unsettled documents are looked at again. ``owner``: the lease
    of this process (``gateway.database.leases``), written in the rows it reserves.
    """

    def __init__(
        self,
        *,
        unique_id: str,
        registry: RegistryClient,
        storage: DocumentStorage,
        index: RepositoryIndex,
        owner: str,
        settle_seconds: float = 0.0,
        retry_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.unique_id = unique_id
        self.registry = registry
        self.storage = storage
        self.index = index
        self.clock = clock
        self.owner = owner
        self.recovery = Recovery(
            index=index,
            storage=storage,
            registry=registry,
            repository_unique_id=unique_id,
            owner=self.owner,
            settle_seconds=settle_seconds,
            clock=clock,
        )
        self._resolver = Resolver(self.recovery, retry_seconds)
        self._started = False

    @classmethod
    def open(
        cls,
        root: str | Path,
        *,
        unique_id: str,
        registry: RegistryClient,
        engine: Engine,
        owner: str,
        settle_seconds: float = 0.0,
        retry_seconds: float = 30.0,
    ) -> Repository:
        """A repository on the local-folder storage at ``root`` (``repository.storage_dir``)
        whose index is in the gateway database of ``engine`` (migrated), run by ``owner``."""
        return cls(
            unique_id=unique_id,
            registry=registry,
            storage=LocalFolderStorage(root, owner=owner),
            index=RepositoryIndex(engine),
            owner=owner,
            settle_seconds=settle_seconds,
            retry_seconds=retry_seconds,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        registry: RegistryClient,
        engine: Engine,
        owner: str,
        settle_seconds: float = 0.0,
    ) -> Repository:
        """The repository of a gateway process (``[repository]`` settings); the index file of
        earlier versions (``<data_dir>/repository/index.sqlite``) is imported once."""
        from gateway.repository.legacy import LEGACY_NAME, import_legacy_index

        repository = cls.open(
            settings.repository_storage_dir,
            unique_id=settings.repository.unique_id,
            registry=registry,
            engine=engine,
            owner=owner,
            settle_seconds=settle_seconds,
        )
        import_legacy_index(settings.data_dir / "repository" / LEGACY_NAME, repository.index)
        return repository

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Sweep (orphan files, unsettled documents) and start the background resolver.

        Call before the HTTP server accepts requests. Never fails because the registry is
        unreachable: what cannot be settled now stays unserved and is retried.
        """
        self.recovery.remove_orphans()
        left = self.recovery.resolve()
        if left:
            log.warning("%d document(s) await their registration outcome", left)
        self._resolver.start()
        self._started = True

    def stop(self) -> None:
        """Stop the background resolver and close the index (after the HTTP server stopped)."""
        if self._started:
            self._resolver.stop()
            self._started = False
        self.index.close()
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()

    # -- ITI-41 -------------------------------------------------------------------------------
    def provide(self, submission: Submission, documents: Sequence[ProvidedDocument]) -> Element:
        """Store the documents and register the submission; return the registry's answer.

        Standard: ITI TF-2 §3.41.4.1.3 (expected actions), §3.41.4.2 (the response is the
        registry's RegistryResponse). Raises: XDSErrorList (XDSRepositoryMetadataError,
        XDSMissingDocument, XDSMissingDocumentMetadata, InvalidDocumentContent,
        XDSRepositoryDuplicateUniqueIdInMessage, XDSNonIdenticalHash, XDSNonIdenticalSize,
        XDSRepositoryBusy ...), XDSRegistryNotAvailable, XDSRepositoryOutOfResources.
        """
        errors, _external = check_submission(submission, rules=ITI_41, repository=True)
        matches, match_errors = match_documents(submission.document_entries, documents)
        errors.extend(match_errors)
        for match in matches:
            errors.extend(check_document(match))
        if errors:
            raise XDSErrorList(errors)
        for match in matches:
            apply_computed(match, self.unique_id)
        items = self._reserve(matches)
        self._place(items)
        # The element goes to the registry client as it is (XML stays in the codecs).
        request = build_submit_objects_request(submission)
        try:
            response = self.registry.register(request)
        except BaseException:
            self._settle_unknown(items)
            raise
        self._settle(items, response_status(response))
        return response

    def _reserve(self, matches: Sequence[Match]) -> list[_Item]:
        rows = [
            StoredDocument(
                unique_id=m.entry.unique_id or "",
                storage_key=storage_key(m.entry.unique_id or ""),
                hash=m.document.attachment.digest(),
                size=m.document.attachment.size,
                mime_type=m.entry.mime_type or "",
            )
            for m in matches
        ]
        existing = self.index.reserve(rows, owner=self.owner, now=self.clock(), accept=_reusable)
        conflicts = [e for r, old in zip(rows, existing, strict=True) for e in _conflicts(r, old)]
        if conflicts:
            raise XDSErrorList(conflicts)
        return [
            _Item(row=row, attachment=m.document.attachment, new=old is None)
            for row, m, old in zip(rows, matches, existing, strict=True)
        ]

    def _place(self, items: Sequence[_Item]) -> None:
        try:
            for item in items:
                if item.new:
                    self.storage.store(item.row.storage_key, item.attachment)
        except BaseException as exc:
            self._abandon(items)
            if isinstance(exc, OSError):
                log.error("storing documents failed: %s", exc)
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise XDSRepositoryOutOfResources(f"No space to store: {exc}") from exc
                raise XDSRepositoryError(f"The documents could not be stored: {exc}") from exc
            raise

    def _settle(self, items: Sequence[_Item], status: str) -> None:
        if status == "Success":
            self.index.confirm(_new_ids(items))
        elif status == "Failure":
            self._abandon(items)
        else:  # ITI-42 has no other status; do not guess what was registered
            self._settle_unknown(items)

    def _abandon(self, items: Sequence[_Item]) -> None:
        """Delete new files, then their rows (never a resubmitted document's)."""
        ids = _new_ids(items)
        try:
            for item in items:
                if item.new:
                    self.storage.delete(item.row.storage_key)
        except OSError:
            log.exception("could not delete abandoned documents; recovery retries")
            self.index.mark_unresolved(ids, owner=self.owner)
            self._resolver.wake()
            return
        self.index.remove(ids, owner=self.owner)

    def _settle_unknown(self, items: Sequence[_Item]) -> None:
        """The registry gave no usable answer: confirm what it lists, leave the rest to recovery."""
        ids = _new_ids(items)
        if not ids:
            return
        confirmed: list[str] = []
        try:
            for unique_id in ids:
                answer = self.registry.is_registered(unique_id, self.unique_id)
                if answer is None:  # unreachable: asking about the others would only wait more
                    break
                if answer:
                    confirmed.append(unique_id)
        except Exception:
            log.exception("asking the registry about %s failed", ids)
        if confirmed:
            self.index.confirm(confirmed)
        rest = [u for u in ids if u not in confirmed]
        if rest:
            self.index.mark_unresolved(rest, owner=self.owner)
            self._resolver.wake()

    # -- ITI-43 -------------------------------------------------------------------------------
    def retrieve(self, requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        """Find each requested document; answer those found (request order) and the errors.

        Standard: ITI TF-2 §3.43.4.2.3 (error location = the DocumentUniqueId; status Success,
        PartialSuccess or Failure). Errors: XDSUnknownRepositoryId, XDSDocumentUniqueIdError,
        XDSRepositoryError.
        """
        documents: list[DocumentResponse] = []
        errors: list[XDSError] = []
        for request in requests:
            try:
                documents.append(self._find(request))
            except XDSError as error:
                errors.append(error)
        return RetrieveDocumentSetResponse.answer(documents, errors)

    def _find(self, request: DocumentRequest) -> DocumentResponse:
        uid = request.document_unique_id
        if request.repository_unique_id != self.unique_id:
            raise XDSUnknownRepositoryId(
                f"RepositoryUniqueId {request.repository_unique_id!r} is not this repository "
                f"({self.unique_id})",
                location=uid or None,
            )
        row = self.index.get(uid) if uid else None
        if row is None or row.state != CONFIRMED:
            raise XDSDocumentUniqueIdError(
                f"Document {uid!r} is not available from repository {self.unique_id}",
                location=uid or None,
            )
        try:
            attachment = self.storage.attachment(row.storage_key, content_type=row.mime_type)
        except FileNotFoundError:
            attachment = None
        if attachment is None or attachment.size != row.size:
            log.error("document %s: stored content missing or of the wrong size", uid)
            raise XDSRepositoryError(f"Document {uid!r} cannot be read", location=uid)
        return DocumentResponse(
            repository_unique_id=self.unique_id,
            document_unique_id=uid,
            mime_type=row.mime_type,
            attachment=attachment,
            home_community_id=request.home_community_id,  # echoed, ITI TF-2 §3.43.4.2.2
        )


def _new_ids(items: Sequence[_Item]) -> list[str]:
    return [item.row.unique_id for item in items if item.new]


def _reusable(candidate: StoredDocument, existing: StoredDocument) -> bool:
    """An identical resubmission: same bytes and mimeType as a confirmed document."""
    return not _conflicts(candidate, existing)


def _conflicts(candidate: StoredDocument, existing: StoredDocument | None) -> list[XDSError]:
    """Why a known uniqueId cannot be stored again (empty: an identical resubmission).

    Standard: ITI TF-3 Table 4.2.4.1-2 (XDSNonIdenticalHash, XDSNonIdenticalSize: a uniqueId
    re-used for other content; the codeContext names the uniqueId), ITI TF-2 §3.41.4.1.3.
    """
    if existing is None:
        return []
    uid = candidate.unique_id
    if existing.state != CONFIRMED:
        return [
            XDSRepositoryBusy(
                f"Document {uid} is being stored by another submission whose registration is "
                "not settled yet; retry later",
                location=uid,
            )
        ]
    errors: list[XDSError] = []
    if existing.hash != candidate.hash:
        errors.append(
            XDSNonIdenticalHash(
                f"Document {uid} is already stored with hash {existing.hash}; "
                f"this submission's document has hash {candidate.hash}",
                location=uid,
            )
        )
    if existing.size != candidate.size:
        errors.append(
            XDSNonIdenticalSize(
                f"Document {uid} is already stored with size {existing.size}; "
                f"this submission's document has size {candidate.size}",
                location=uid,
            )
        )
    if not errors and media_type(existing.mime_type) != media_type(candidate.mime_type):
        errors.append(
            XDSRepositoryMetadataError(
                f"Document {uid} is already stored with mimeType {existing.mime_type}; "
                f"this submission says {candidate.mime_type}",
                location=uid,
            )
        )
    return errors
