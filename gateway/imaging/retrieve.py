"""What the imaging document source does for a RAD-69 request (the actor side, no XML).

For each requested instance (RAD TF-3 §4.69.4.2.3):

- a RepositoryUniqueId other than this source's: XDSUnknownRepositoryId;
- a SOP Instance UID this source does not hold, or holds in another study or series:
  XDSDocumentUniqueIdError (NIST ids_2018-4811 cases 2-4);
- an instance that cannot be given in any requested transfer syntax: XDSRepositoryError saying
  why ("the Imaging Document Source shall encode the pixel data using one of the DICOM transfer
  syntaxes included in the request, or return an error", §4.69.4.2.3);
- otherwise the stored file, streamed from disk: byte for byte when its syntax is listed, else
  converted first into a listed uncompressed one, decompressing if needed
  (``gateway.imaging.transcode``: one instance decoded at a time, frame by frame, into a
  temporary file the MTOM writer streams).

Status (ITI TF-2 §3.43.4.2.3): Success when every instance is returned, PartialSuccess when some
are, Failure when none is. A request listing no transfer syntax this source knows at all fails as
a whole with XDSRepositoryError (NIST ids_2018-4811 case 9).
"""

from __future__ import annotations

import logging

from gateway.errors import (
    XDSDocumentUniqueIdError,
    XDSError,
    XDSRepositoryError,
    XDSUnknownRepositoryId,
)
from gateway.imaging import transcode
from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.storage import InstanceStore
from gateway.metadata.retrieve import (
    DocumentResponse,
    ImagingDocumentRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
)
from gateway.soap.message import Attachment

log = logging.getLogger("gateway.imaging")

MIME_TYPE = "application/dicom"


class ImagingRetriever:
    """Answers RAD-69 requests from the instance index and store."""

    def __init__(self, *, index: ImagingIndex, store: InstanceStore, unique_id: str) -> None:
        self.index, self.store, self.unique_id = index, store, unique_id

    def retrieve(self, request: RetrieveImagingDocumentSetRequest) -> RetrieveDocumentSetResponse:
        """Collect every requested instance that can be returned, and an error for the others.

        Standard: RAD TF-3 §4.69.4.2.3. Raises: XDSRepositoryError when no requested transfer
        syntax is a DICOM transfer syntax at all.
        """
        if not any(transcode.is_transfer_syntax(ts) for ts in request.transfer_syntaxes):
            raise XDSRepositoryError(
                "none of the requested transfer syntaxes "
                f"({', '.join(request.transfer_syntaxes)}) is supported"
            )
        errors: list[XDSError] = []
        documents: list[DocumentResponse] = []
        wanted = list(request.documents())
        records = self.index.instances([item.document.document_unique_id for item in wanted])
        try:
            for item in wanted:
                try:
                    record = records.get(item.document.document_unique_id)
                    documents.append(self._one(item, record, request.transfer_syntaxes))
                except XDSError as error:
                    errors.append(error)
        except BaseException:
            for found in documents:
                found.attachment.discard()
            raise
        return RetrieveDocumentSetResponse.answer(documents, errors)

    def _one(
        self,
        item: ImagingDocumentRequest,
        record: InstanceRecord | None,
        syntaxes: tuple[str, ...],
    ) -> DocumentResponse:
        document = item.document
        uid = document.document_unique_id
        if document.repository_unique_id != self.unique_id:
            raise XDSUnknownRepositoryId(
                f"Unknown Repository UID [{document.repository_unique_id}]. "
                f"Expected [{self.unique_id}]",
                location=uid,
            )
        record = self._check(item.study_instance_uid, item.series_instance_uid, uid, record)
        try:
            plan = transcode.choose(record.transfer_syntax_uid, syntaxes)
        except transcode.CannotTranscode as exc:
            raise XDSRepositoryError(
                f"instance {uid} cannot be provided in a requested transfer syntax: {exc}",
                location=uid,
            ) from exc
        attachment = (
            self._converted(record, plan.syntax)
            if plan.convert
            else Attachment.from_file(self.store.path(record.path), content_type=MIME_TYPE)
        )
        return DocumentResponse(
            repository_unique_id=self.unique_id,
            document_unique_id=uid,
            attachment=attachment,
            mime_type=MIME_TYPE,
            home_community_id=document.home_community_id,  # echoed, RAD TF-3 §4.69.4.2.2
        )

    def _check(
        self, study_uid: str, series_uid: str, uid: str, record: InstanceRecord | None
    ) -> InstanceRecord:
        if record is None or not self.store.path(record.path).is_file():
            raise XDSDocumentUniqueIdError(
                f"No DICOM instance with SOP Instance UID {uid} is available", location=uid
            )
        if record.study_instance_uid != study_uid or record.series_instance_uid != series_uid:
            raise XDSDocumentUniqueIdError(
                f"Instance {uid} is not in study {study_uid} / series {series_uid} "
                "as the request says",
                location=uid,
            )
        return record

    def _converted(self, record: InstanceRecord, syntax: str) -> Attachment:
        """The instance in ``syntax``, in a temporary file the attachment owns (and removes)."""
        target = self.store.temporary_file()
        try:
            transcode.transcode(self.store.path(record.path), target, syntax)
        except Exception as exc:
            target.unlink(missing_ok=True)
            if not isinstance(exc, transcode.CannotTranscode):
                log.exception("cannot convert %s to %s", record.sop_instance_uid, syntax)
            else:
                log.warning("cannot convert %s to %s: %s", record.sop_instance_uid, syntax, exc)
            raise XDSRepositoryError(
                f"instance {record.sop_instance_uid} could not be converted to "
                f"{transcode.name(syntax)}: {exc}",
                location=record.sop_instance_uid,
            ) from exc
        return Attachment.from_file(target, content_type=MIME_TYPE, owned=True)
