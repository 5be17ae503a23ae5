"""ITI-68 Retrieve Document: ``GET /fhir/Binary/{id}``, the ``attachment.url`` of ITI-67 answers.

``{id}`` is the DocumentReference id (the entryUUID): the registry says which repository holds
the document, its uniqueId, media type and patient (GetDocuments), then the repository answers
it (ITI-43, ITI TF-2 §3.43.4.2) and its content is streamed in chunks with the document's media
type (a KOS manifest as ``application/dicom``). The URL names no patient data (ITI-67
§2:3.67.5: "URLs ... carefully crafted so as to not expose sensitive data").

Errors (ITI-68 Table 2:3.68.4.2.2-1): unknown URI 404; a Deprecated document 410 Gone; an
``Accept`` the document's type does not meet 406. An ``Accept`` of a FHIR JSON type gets the
FHIR Binary resource (FHIR R4 binary.html §2.16.4.2 "Serving Binary Resources"), up to
``inline_limit`` bytes.
"""

from __future__ import annotations

import base64
from typing import Any

from gateway.fhir.iti67 import find_entry
from gateway.fhir.outcomes import xds_failure
from gateway.fhir.ports import Backends
from gateway.fhir.wire import JSON_MEDIA_TYPES, Answer, FhirError, json_answer, media_type
from gateway.metadata import vocabulary as v
from gateway.metadata.model import DocumentEntry
from gateway.metadata.retrieve import DocumentRequest, DocumentResponse, RetrieveDocumentSetResponse

TRANSACTION = "ITI-68"


def _acceptable(accept: str | None, document_type: str) -> str:
    """``"raw"`` for the document itself, ``"fhir"`` for a Binary resource. Raises: 406."""
    if not accept:
        return "raw"
    ranges = [media_type(part) for part in accept.split(",")]
    top = document_type.split("/", 1)[0]
    if any(r in ("*/*", document_type, f"{top}/*") for r in ranges):
        return "raw"
    if any(r in JSON_MEDIA_TYPES for r in ranges):
        return "fhir"
    raise FhirError.of(
        406,
        f"the document is {document_type}; Accept {accept!r} does not allow it (no conversion)",
        code="not-supported",
    )


def facts_of(entry: DocumentEntry) -> dict[str, Any]:
    """The audit facts of a retrieve (ITI TF-2 §3.43.5.1: patient, document, repository)."""
    return {
        "patient_ids": [entry.patient_id] if entry.patient_id else [],
        "document_unique_ids": [entry.unique_id] if entry.unique_id else [],
        "repository_unique_ids": [entry.repository_unique_id] if entry.repository_unique_id else [],
    }


def _retrieve(
    entry: DocumentEntry, backends: Backends
) -> tuple[RetrieveDocumentSetResponse, DocumentResponse]:
    repository = backends.repositories.get(entry.repository_unique_id or "")
    if repository is None or not entry.unique_id:
        raise FhirError.of(
            404,
            f"document {entry.unique_id} is held by repository {entry.repository_unique_id}, "
            "which this gateway does not reach",
            code="not-found",
        )
    request = DocumentRequest(
        repository_unique_id=entry.repository_unique_id or "", document_unique_id=entry.unique_id
    )
    answer = repository([request])
    if not answer.documents:
        codes = {e.code for e in answer.errors}
        if "XDSDocumentUniqueIdError" in codes:
            raise FhirError.of(
                404,
                f"document {entry.unique_id} is not available",
                code="not-found",
                xds_code="XDSDocumentUniqueIdError",
            )
        raise xds_failure(answer.errors, default=500)
    return answer, answer.documents[0]


def retrieve(
    resource_id: str,
    backends: Backends,
    *,
    accept: str | None,
    inline_limit: int,
    facts: dict[str, Any],
) -> Answer:
    """Answer ``GET /Binary/{id}``; ``facts`` receives the audit facts. Raises: FhirError."""
    entry, _associations = find_entry(resource_id, backends)
    facts.update(facts_of(entry))
    if entry.availability_status == v.STATUS_DEPRECATED:
        raise FhirError.of(
            410, f"document {entry.unique_id} is deprecated (replaced)", code="not-found"
        )
    mime = entry.mime_type or "application/octet-stream"
    form = _acceptable(accept, media_type(mime))
    answer, document = _retrieve(entry, backends)
    attachment = document.attachment
    if form == "fhir":
        try:
            if attachment.size > inline_limit:
                raise FhirError.of(
                    406,
                    f"the document ({attachment.size} bytes) is too large for a Binary "
                    f"resource; ask for {mime}",
                    code="too-costly",
                )
            data = base64.b64encode(attachment.read_bytes()).decode("ascii")
        finally:
            answer.discard()
        binary = {"resourceType": "Binary", "id": resource_id, "contentType": mime, "data": data}
        return json_answer(binary)
    headers = [("Content-Type", mime), ("Content-Length", str(attachment.size))]
    return Answer(status=200, headers=headers, body=attachment.chunks(), close=answer.discard)
