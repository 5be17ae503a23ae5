"""The plain objects the repository's ITI-41 handler and actor exchange (no XML here).

The ITI-43 objects (DocumentRequest, DocumentResponse, RetrieveDocumentSetResponse) are those of
``gateway.metadata.retrieve``, shared with every other actor.

Standard: ITI TF-2 §3.41.4.1.2 (a Document with the id of its DocumentEntry).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.soap.message import Attachment


@dataclass(slots=True, kw_only=True)
class ProvidedDocument:
    """One ``xdsb:Document`` of an ITI-41 request: the id of its DocumentEntry and its content."""

    id: str
    attachment: Attachment
