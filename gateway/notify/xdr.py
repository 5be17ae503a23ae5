"""XDR-I: the Document Recipient's inbox at ``/xdr/recipient`` and what ``push`` sends.

The recipient (ITI TF-2b §3.41 Provide and Register Document Set-b with no registry behind it;
RAD TF-1 §18 XDR-I: RAD-68 semantics, a KOS manifest as the document) reads the submission,
validates it with the ITI-41 rules (ITI TF-3 §4.2.4: an XDR Document Recipient checks the
metadata a Document Source sends, not registry state: no patient identity feed, no existing
objects), and keeps it in the inbox: the request and each document in a folder below
``<data_dir>/xdr/inbox`` (written in a private folder, flushed, renamed into place), then a row
of ``xdr_inbox``; only then does it answer Success. A crash leaves either nothing or a whole
entry (a folder without its row is ignored).

``inbox accept ID`` (or ``xdr.auto_import``) queues an outbox row of kind ``xdr`` (target
``import``): the serving gateway imports the entry with the importer the assembly gives it
(RAD-69 from the sender's Retrieve Location into the local imaging source, then the local
manifest registered), retried with back-off like any delivery, so an import survives restarts
and a sender that is away for a while.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gateway.database.engine import write_transaction
from gateway.errors import (
    XDSError,
    XDSErrorList,
    XDSMissingDocument,
    XDSMissingDocumentMetadata,
    XDSRepositoryMetadataError,
)
from gateway.metadata import ebrim
from gateway.metadata.model import DocumentEntry, Submission
from gateway.metadata.provide import (
    parse_provide_request,
    read_documents,
    serialize_provide_request,
)
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.metadata.validate import ITI_41, validate_submission
from gateway.notify.notifier import study_uids
from gateway.notify.outbox import Claimed, Message, enqueue
from gateway.notify.schema import xdr_inbox
from gateway.soap.dispatch import Context
from gateway.soap.message import Attachment, SoapRequest, SoapResponse

log = logging.getLogger("gateway.notify")

RECEIVED, ACCEPTING, ACCEPTED, FAILED = "received", "accepting", "accepted", "failed"
KOS_FORMAT = "1.2.840.10008.5.1.4.1.1.88.59"
REQUEST_FILE = "request.xml"


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One received submission."""

    id: int
    received_at: float
    state: str
    patient_id: str | None
    submission_set_unique_id: str | None
    source_id: str | None
    folder: Path
    summary: dict[str, Any]
    error: str | None

    @property
    def studies(self) -> list[str]:
        """Study Instance UIDs the documents name (referenceIdList)."""
        return [uid for d in self.summary.get("documents", []) for uid in d.get("studies", [])]

    def submission(self) -> Submission:
        """The received metadata, read again from the kept request."""
        body = parse_provide_request((self.folder / REQUEST_FILE).read_bytes())
        return ebrim.parse_submit_objects_request(body, repository=True)

    def documents(self) -> list[tuple[dict[str, Any], Path]]:
        """Each document's summary and the file of its content."""
        return [(d, self.folder / d["file"]) for d in self.summary.get("documents", [])]


class Inbox:
    """The ``xdr_inbox`` rows and their folders below ``root`` (``<data_dir>/xdr``)."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root
        self.entries = root / "inbox"
        self.staging = root / "tmp"

    # -- receive ----------------------------------------------------------------------------------
    def store(
        self, body: Any, documents: list[tuple[str, Attachment]], submission: Submission
    ) -> int:
        """Keep one submission: folder first (flushed, renamed), then its row. Returns its id."""
        self.entries.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(6)}"
        private = self.staging / name
        private.mkdir(mode=0o700)
        by_id = {e.entry_uuid: e for e in submission.document_entries}
        summary: dict[str, Any] = {"documents": []}
        try:
            _write(private / REQUEST_FILE, [serialize_provide_request(body)])
            for number, (document_id, attachment) in enumerate(documents, 1):
                file = f"document-{number}"
                _write(private / file, _content(attachment))
                entry = by_id.get(document_id)
                summary["documents"].append(_describe(document_id, file, entry))
            _fsync_dir(private)
            final = self.entries / name
            os.rename(private, final)
            _fsync_dir(self.entries)
        except BaseException:
            shutil.rmtree(private, ignore_errors=True)
            raise
        s = submission.submission_set
        try:
            with write_transaction(self.engine) as conn:
                inserted = conn.execute(
                    insert(xdr_inbox).values(
                        received_at=time.time(),
                        state=RECEIVED,
                        patient_id=s.patient_id if s else None,
                        submission_set_unique_id=s.unique_id if s else None,
                        source_id=s.source_id if s else None,
                        folder=name,
                        summary=json.dumps(summary, sort_keys=True),
                    )
                ).inserted_primary_key
                assert inserted is not None
                row_id = inserted[0]
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return int(row_id)

    # -- read -------------------------------------------------------------------------------------
    def list(self) -> list[InboxEntry]:
        """Every entry, newest last."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(xdr_inbox).order_by(xdr_inbox.c.id)).all()
        return [self._entry(row) for row in rows]

    def get(self, entry_id: int) -> InboxEntry | None:
        """One entry, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(xdr_inbox).where(xdr_inbox.c.id == entry_id)).first()
        return None if row is None else self._entry(row)

    def _entry(self, row: Any) -> InboxEntry:
        return InboxEntry(
            id=row.id,
            received_at=row.received_at,
            state=row.state,
            patient_id=row.patient_id,
            submission_set_unique_id=row.submission_set_unique_id,
            source_id=row.source_id,
            folder=self.entries / row.folder,
            summary=json.loads(row.summary),
            error=row.error,
        )

    # -- accept -----------------------------------------------------------------------------------
    def accept(self, entry_id: int) -> int | None:
        """Queue the import of a received (or failed) entry: the outbox row's id, or None when
        there is no such entry in a state to accept."""
        with write_transaction(self.engine) as conn:
            changed = conn.execute(
                update(xdr_inbox)
                .where(xdr_inbox.c.id == entry_id, xdr_inbox.c.state.in_((RECEIVED, FAILED)))
                .values(state=ACCEPTING, error=None)
            ).rowcount
            if not changed:
                return None
            [row_id] = enqueue(conn, [Message("xdr", "import", {"inbox": entry_id})])
        return row_id

    def finished(self, entry_id: int, *, error: str | None) -> None:
        """Record an import's outcome."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(xdr_inbox)
                .where(xdr_inbox.c.id == entry_id)
                .values(
                    state=FAILED if error else ACCEPTED,
                    error=error,
                    accepted_at=None if error else time.time(),
                )
            )


Importer = Callable[[InboxEntry], None]  # raises on failure (PermanentFailure: do not retry)


def make_sender(inbox: Inbox, importer: Importer) -> Callable[[Claimed], None]:
    """The outbox sender of kind ``xdr`` (target ``import``): import one inbox entry."""
    from gateway.notify.outbox import PermanentFailure

    def send(item: Claimed) -> None:
        entry = inbox.get(int(item.payload["inbox"]))
        if entry is None:
            raise PermanentFailure(f"inbox entry {item.payload['inbox']} is gone")
        try:
            importer(entry)
        except PermanentFailure as exc:
            inbox.finished(entry.id, error=str(exc))
            raise
        inbox.finished(entry.id, error=None)
        log.info("XDR inbox entry %d imported", entry.id)

    return send


def recipient(
    inbox: Inbox, *, auto_import: bool = False
) -> Callable[[SoapRequest, Context], SoapResponse]:
    """The ITI-41 handler of the XDR Document Recipient (ITI TF-2b §3.41.4.1.3, XDR)."""

    def handle(request: SoapRequest, ctx: Context) -> SoapResponse:
        submission = ebrim.parse_submit_objects_request(request.body, repository=True)
        ctx.audit.update(submission.audit_facts(), reply_to=request.addressing.reply_to)
        validate_submission(submission, rules=ITI_41)
        documents = read_documents(request.body, request.attachments)
        check_documents(submission.document_entries, documents)
        entry_id = inbox.store(request.body, documents, submission)
        log.info("XDR: submission kept as inbox entry %d (%d documents)", entry_id, len(documents))
        if auto_import:
            inbox.accept(entry_id)
        return SoapResponse(body=build_registry_response(Status.SUCCESS))

    return handle


def check_documents(
    entries: Iterable[DocumentEntry], documents: list[tuple[str, Attachment]]
) -> None:
    """Every DocumentEntry has its Document and every Document its entry (by id), once; a
    size or hash given in the metadata is the document's. Standard: ITI TF-2b §3.41.4.1.3.
    Raises: XDSErrorList (XDSMissingDocument, XDSMissingDocumentMetadata,
    XDSRepositoryMetadataError)."""
    errors: list[XDSError] = []
    by_id: dict[str, Attachment] = {}
    for document_id, attachment in documents:
        if document_id in by_id:
            errors.append(
                XDSRepositoryMetadataError(
                    f"two Documents have id {document_id!r}", location=document_id
                )
            )
        by_id[document_id] = attachment
    known = set()
    for entry in entries:
        known.add(entry.entry_uuid)
        found = by_id.get(entry.entry_uuid)
        if found is None:
            errors.append(
                XDSMissingDocument(f"{entry.entry_uuid} has no Document", location=entry.entry_uuid)
            )
            continue
        if entry.size is not None and entry.size != found.size:
            errors.append(
                XDSRepositoryMetadataError(
                    f"{entry.entry_uuid}: size {entry.size}, {found.size} bytes received",
                    location=entry.entry_uuid,
                )
            )
        if entry.hash is not None and entry.hash.strip().lower() != found.digest():
            errors.append(
                XDSRepositoryMetadataError(
                    f"{entry.entry_uuid}: the hash does not match the document",
                    location=entry.entry_uuid,
                )
            )
    for document_id in by_id.keys() - known:
        errors.append(
            XDSMissingDocumentMetadata(
                f"Document {document_id!r} has no DocumentEntry", location=document_id or None
            )
        )
    if errors:
        raise XDSErrorList(errors)


def _describe(document_id: str, file: str, entry: DocumentEntry | None) -> dict[str, Any]:
    if entry is None:
        return {"id": document_id, "file": file}
    return {
        "id": document_id,
        "file": file,
        "unique_id": entry.unique_id,
        "mime_type": entry.mime_type,
        "format_code": entry.format_code.code if entry.format_code else None,
        "patient_id": entry.patient_id,
        "studies": study_uids(entry),
    }


def _content(attachment: Attachment) -> Iterable[bytes]:
    if attachment.data is not None:
        yield attachment.data
        return
    assert attachment.path is not None
    with open(attachment.path, "rb") as source:
        while chunk := source.read(1024 * 1024):
            yield chunk


def _write(path: Path, chunks: Iterable[bytes]) -> None:
    with open(path, "xb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
