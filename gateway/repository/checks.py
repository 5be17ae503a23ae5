"""The Document Repository's own ITI-41 rules: pure functions over the model and the attachments.

What the repository checks besides the metadata validation of ``gateway.metadata.validate``
(ITI TF-2 §3.41.4.1.3, "Expected Actions"; codes ITI TF-3 Table 4.2.4.1-2):

- every DocumentEntry has its Document and every Document its DocumentEntry, matched by the
  ``Document/@id`` = ExtrinsicObject ``id`` (XDSMissingDocument, XDSMissingDocumentMetadata);
- a size or hash in the metadata equals what was received (hash compared ignoring case);
  otherwise XDSRepositoryMetadataError;
- a document whose MIME part (or inline ``xmime:contentType``) names a specific media type names
  the DocumentEntry's mimeType (InvalidDocumentContent, codeContext naming the uniqueId). A part
  typed ``application/octet-stream`` or untyped says nothing and is accepted: many senders
  (and inline base64 without xmime:contentType) give every part that type.

Then the repository sets hash, size and repositoryUniqueId itself (§3.41.4.1.3: "adding or
replacing" them before the ITI-42 it sends).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import (
    InvalidDocumentContent,
    XDSError,
    XDSMissingDocument,
    XDSMissingDocumentMetadata,
    XDSRepositoryMetadataError,
)
from gateway.metadata.model import DocumentEntry
from gateway.repository.model import ProvidedDocument

UNSPECIFIED_TYPES = frozenset({"", "application/octet-stream"})


@dataclass(slots=True, kw_only=True)
class Match:
    """A DocumentEntry and the Document that carries its content."""

    entry: DocumentEntry
    document: ProvidedDocument


def _describe(entry: DocumentEntry) -> str:
    return f"DocumentEntry {entry.entry_uuid} (uniqueId {entry.unique_id})"


def match_documents(
    entries: Sequence[DocumentEntry], documents: Sequence[ProvidedDocument]
) -> tuple[list[Match], list[XDSError]]:
    """Pair DocumentEntries with Documents by id; return the pairs and every mismatch.

    Standard: ITI TF-2 §3.41.4.1.3. Errors: XDSMissingDocument (an entry without Document),
    XDSMissingDocumentMetadata (a Document without entry), XDSRepositoryMetadataError (two
    Documents with one id).
    """
    errors: list[XDSError] = []
    by_id: dict[str, ProvidedDocument] = {}
    for document in documents:
        if document.id in by_id:
            errors.append(
                XDSRepositoryMetadataError(
                    f"Two Document elements have id {document.id!r}", location=document.id
                )
            )
            continue
        by_id[document.id] = document
    entry_ids = {entry.entry_uuid for entry in entries}
    for document_id in by_id:
        if document_id not in entry_ids:
            errors.append(
                XDSMissingDocumentMetadata(
                    f"Document {document_id!r} has no DocumentEntry (ExtrinsicObject) with that id",
                    location=document_id or None,
                )
            )
    matches: list[Match] = []
    for entry in entries:
        attached = by_id.get(entry.entry_uuid)
        if attached is None:
            errors.append(
                XDSMissingDocument(
                    f"{_describe(entry)} has no attached Document", location=entry.entry_uuid
                )
            )
        else:
            matches.append(Match(entry=entry, document=attached))
    return matches, errors


def media_type(value: str | None) -> str:
    """The media type of a Content-Type or mimeType value, lower case, without parameters."""
    return (value or "").split(";", 1)[0].strip().lower()


def check_document(match: Match) -> list[XDSError]:
    """Compare a document with its entry: size, hash, media type.

    Standard: ITI TF-2 §3.41.4.1.3 (size and hash, XDSRepositoryMetadataError); ITI TF-3
    Table 4.2.4.1-2 (InvalidDocumentContent: a document that does not match its metadata).
    """
    entry, attachment = match.entry, match.document.attachment
    errors: list[XDSError] = []
    if entry.size is not None and entry.size != attachment.size:
        errors.append(
            XDSRepositoryMetadataError(
                f"{_describe(entry)}: size {entry.size} in the metadata, "
                f"{attachment.size} bytes received",
                location=entry.entry_uuid,
            )
        )
    digest = attachment.digest()
    if entry.hash is not None and entry.hash.strip().lower() != digest:
        errors.append(
            XDSRepositoryMetadataError(
                f"{_describe(entry)}: hash {entry.hash} in the metadata, "
                f"the document received has SHA-1 {digest}",
                location=entry.entry_uuid,
            )
        )
    declared = media_type(attachment.content_type)
    specific = declared not in UNSPECIFIED_TYPES and bool(entry.mime_type)
    if specific and declared != media_type(entry.mime_type):
        errors.append(
            InvalidDocumentContent(
                f"{entry.unique_id}: the document is sent as {declared} but "
                f"{_describe(entry)} has mimeType {entry.mime_type}",
                location=entry.entry_uuid,
            )
        )
    return errors


def apply_computed(match: Match, repository_unique_id: str) -> None:
    """Set the entry's hash (lower-case SHA-1 hex), size and repositoryUniqueId from the bytes.

    Standard: ITI TF-2 §3.41.4.1.3; ITI TF-3 §4.2.3.2 (DocumentEntry hash, size,
    repositoryUniqueId).
    """
    attachment = match.document.attachment
    match.entry.hash = attachment.digest()
    match.entry.size = attachment.size
    match.entry.repository_unique_id = repository_unique_id
