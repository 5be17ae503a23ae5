"""The plain objects the repository's handlers and actor exchange (no XML here).

Standard: ITI TF-2 §3.41.4.1.2 (a Document with the id of its DocumentEntry), §3.43.4.1.2
(DocumentRequest), §3.43.4.2.2 (DocumentResponse, status of the RegistryResponse).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import XDSError
from gateway.soap.message import Attachment

SUCCESS = "Success"
PARTIAL_SUCCESS = "PartialSuccess"
FAILURE = "Failure"


@dataclass(slots=True, kw_only=True)
class ProvidedDocument:
    """One ``xdsb:Document`` of an ITI-41 request: the id of its DocumentEntry and its content."""

    id: str
    attachment: Attachment


@dataclass(slots=True, kw_only=True)
class DocumentRequest:
    """One ``xdsb:DocumentRequest`` of an ITI-43 request (values as sent; None when absent)."""

    repository_unique_id: str | None
    document_unique_id: str | None
    home_community_id: str | None = None


@dataclass(slots=True, kw_only=True)
class RetrievedDocument:
    """A document found for a request: its mimeType (from the metadata) and its content."""

    request: DocumentRequest
    mime_type: str
    attachment: Attachment


@dataclass(slots=True, kw_only=True)
class RetrieveResult:
    """What the repository found for an ITI-43 request: documents in request order, errors."""

    documents: list[RetrievedDocument] = field(default_factory=list)
    errors: list[XDSError] = field(default_factory=list)

    @property
    def status(self) -> str:
        """Success (no error), PartialSuccess (some documents and errors), Failure (none found).

        Standard: ITI TF-2 §3.43.4.2.3.
        """
        if not any(not e.is_warning for e in self.errors):
            return SUCCESS
        return PARTIAL_SUCCESS if self.documents else FAILURE
