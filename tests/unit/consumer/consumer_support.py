"""Test data of the consumer: a KOS manifest built with pydicom, instances, fake sources."""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from gateway.consumer.manifest import KOS_SOP_CLASS_UID, InstanceRef
from gateway.imaging import synthetic
from gateway.metadata.retrieve import (
    DocumentResponse,
    ImagingDocumentRequest,
    RegistryError,
    RetrieveDocumentSetResponse,
)
from gateway.soap.message import Attachment

CT = "1.2.840.10008.5.1.4.1.1.2"
LOCATION_A = "1.3.6.1.4.1.21367.13.80.1"
LOCATION_B = "1.3.6.1.4.1.21367.13.80.2"
PATIENT = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"


def kos_bytes(
    study_uid: str,
    series: Sequence[tuple[str, str | None, Sequence[str]]],
    *,
    accession: str = "ACC-1",
    sop_class: str = KOS_SOP_CLASS_UID,
) -> bytes:
    """A minimal KOS whose evidence lists ``(series UID, Retrieve Location UID, SOP UIDs)``."""
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = str(generate_uid())
    ds.PatientID, ds.PatientName = "PAT-1", "Test^Patient"
    ds.StudyInstanceUID, ds.AccessionNumber = study_uid, accession
    ds.Modality = "KO"
    series_items = []
    for series_uid, location, sops in series:
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        if location is not None:
            item.RetrieveLocationUID = location
            item.RetrieveAETitle = "SOURCE"
        refs = []
        for sop in sops:
            ref = Dataset()
            ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CT, sop
            refs.append(ref)
        item.ReferencedSOPSequence = DicomSequence(refs)
        series_items.append(item)
    study = Dataset()
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = DicomSequence(series_items)
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([study])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def study(count: int, series: int = 1) -> tuple[list[Dataset], list[InstanceRef]]:
    """A synthetic study and the references a manifest would give for it (location A)."""
    spec = synthetic.StudySpec(
        series=tuple(synthetic.SeriesSpec(modality="CT", count=count) for _ in range(series))
    )
    instances = synthetic.make_study(spec)
    refs = [
        InstanceRef(
            study_instance_uid=str(ds.StudyInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            sop_class_uid=str(ds.SOPClassUID),
            retrieve_location_uid=LOCATION_A,
        )
        for ds in instances
    ]
    return instances, refs


@dataclass
class FakeSource:
    """An imaging source answering RAD-69 from a dict of Part 10 bytes, with scripted faults."""

    files: dict[str, bytes]
    corrupt_once: set[str] = field(default_factory=set)  # truncated the first time asked
    withhold: set[str] = field(default_factory=set)  # never returned
    fail_calls: int = 0  # the first n calls raise PeerError
    calls: list[list[str]] = field(default_factory=list)
    syntaxes: list[tuple[str, ...]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    gate: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retrieve(
        self, refs: Sequence[ImagingDocumentRequest], transfer_syntaxes: Sequence[str]
    ) -> RetrieveDocumentSetResponse:
        from gateway.consumer.errors import PeerError

        with self._lock:
            self.calls.append([ref.document.document_unique_id for ref in refs])
            self.syntaxes.append(tuple(transfer_syntaxes))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            failing = len(self.calls) <= self.fail_calls
        try:
            if self.gate is not None:
                self.gate.wait(10)
            if failing:
                raise PeerError("RAD-69 to fake: connection refused")
            return self._answer(refs)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(self, refs: Sequence[ImagingDocumentRequest]) -> RetrieveDocumentSetResponse:
        documents, errors = [], []
        for ref in refs:
            uid = ref.document.document_unique_id
            data = self.files.get(uid)
            if data is None or uid in self.withhold:
                errors.append(
                    RegistryError(code="XDSDocumentUniqueIdError", context="unknown", location=uid)
                )
                continue
            with self._lock:
                if uid in self.corrupt_once:
                    self.corrupt_once.discard(uid)
                    data = data[: len(data) - 7]
            documents.append(
                DocumentResponse(
                    repository_unique_id=ref.document.repository_unique_id,
                    document_unique_id=uid,
                    mime_type="application/dicom",
                    attachment=Attachment.from_bytes(data),
                )
            )
        return RetrieveDocumentSetResponse.answer(documents, errors)
