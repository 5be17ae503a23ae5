"""Helpers shared by the imaging tests (unit and integration): a recording repository, a source
on a temporary folder and database, synthetic studies, and readers for what was published."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from lxml import etree
from pydicom.dataset import Dataset

from gateway.errors import XDSRepositoryError
from gateway.imaging import synthetic
from gateway.imaging.index import ImagingIndex
from gateway.imaging.rad68 import InProcessRepositoryClient
from gateway.imaging.source import ImagingSource
from gateway.metadata.ebrim import parse_submit_objects_request
from gateway.metadata.model import Submission
from gateway.metadata.retrieve import Status, build_registry_response
from gateway.soap import ns
from gateway.soap.message import Attachment, cid_from_href

DOMAIN_OID = "1.3.6.1.4.1.21367.13.20.1000"
SOURCE_UID = "1.3.6.1.4.1.21367.13.80.100"
AE_TITLE = "XDSI_SOURCE"
LOCAL_ISSUER_OID = "1.3.6.1.4.1.21367.13.20.2000"


@dataclass(slots=True)
class Published:
    """One ITI-41 request the recording repository received."""

    request: etree._Element
    submission: Submission
    document_id: str
    content: bytes

    @property
    def kos(self) -> Dataset:
        import io

        return pydicom.dcmread(io.BytesIO(self.content))


@dataclass(slots=True)
class RecordingRepository:
    """An in-process repository that records every ITI-41 request and answers Success (or what
    ``answer`` says)."""

    received: list[Published] = field(default_factory=list)
    answer: str = Status.SUCCESS
    event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: etree._Element, attachments: Sequence[Attachment]) -> Any:
        by_cid = {a.content_id: a for a in attachments}
        document = request.find(ns.qname(ns.XDSB, "Document"))
        assert document is not None
        include = document.find(ns.qname(ns.XOP, "Include"))
        assert include is not None
        content = by_cid[cid_from_href(include.get("href", ""))].read_bytes()
        submission = parse_submit_objects_request(request, repository=True)
        with self.lock:
            self.received.append(
                Published(
                    request=request,
                    submission=submission,
                    document_id=document.get("id", ""),
                    content=content,
                )
            )
            self.event.set()
        if self.answer == Status.FAILURE:
            return build_registry_response(
                Status.FAILURE, [XDSRepositoryError("refused by the test")]
            )
        return build_registry_response(Status(self.answer))

    def client(self) -> InProcessRepositoryClient:
        return InProcessRepositoryClient(self)

    def wait(self, count: int, timeout: float = 20.0) -> list[Published]:
        """Wait until ``count`` requests arrived; return them."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
                self.event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} publications, got {len(self.received)}")
            self.event.wait(remaining)


@dataclass(slots=True)
class PublishWatcher:
    """An observer of the source's publication results (what tests wait for)."""

    results: list[Any] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, result: Any) -> None:
        with self.condition:
            self.results.append(result)
            self.condition.notify_all()

    def wait(self, count: int, timeout: float = 20.0) -> list[Any]:
        """Wait until ``count`` results arrived; return them."""
        with self.condition:
            if not self.condition.wait_for(lambda: len(self.results) >= count, timeout):
                raise AssertionError(f"expected {count} results, got {self.results}")
            return list(self.results)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        """Wait for a result matching ``predicate`` (earlier ones, e.g. a publication of a study
        still arriving on a loaded machine, are skipped); return it."""

        def found() -> Any:
            return next((r for r in self.results if predicate(r)), None)

        with self.condition:
            if not self.condition.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no matching result in {self.results}")
            return found()


OPENED: list[ImagingIndex] = []  # indexes of make_source: close_sources() ends their leases


def close_sources() -> None:
    """Release the leases and engines of the sources ``make_source`` made (test teardown)."""
    while OPENED:
        OPENED.pop().close()


def make_source(
    tmp_path: Path,
    repository: RecordingRepository | Callable[..., Any] | Any,
    *,
    db_url: str | None = None,
    idle: float = 30.0,
    lookup: Callable[[str], str | None] | None = None,
    unique_id: str = SOURCE_UID,
    **options: Any,
) -> ImagingSource:
    """A source on ``tmp_path`` (not started) publishing to ``repository``."""
    index = ImagingIndex.from_url(db_url or f"sqlite:///{tmp_path / 'imaging.sqlite'}")
    OPENED.append(index)
    if isinstance(repository, RecordingRepository):
        client: Any = repository.client()
    elif hasattr(repository, "provide_and_register"):
        client = repository  # a RepositoryClient (e.g. SoapRepositoryClient)
    else:
        client = InProcessRepositoryClient(repository)
    options.setdefault("fsync", False)  # durability: test_imaging_ingest and the integration tests
    return ImagingSource(
        unique_id=unique_id,
        ae_title=AE_TITLE,
        storage_dir=tmp_path / "store",
        index=index,
        repository=client,
        domain_oid=DOMAIN_OID,
        domain_id_for_local=lookup,
        port=0,
        study_idle_seconds=idle,
        **options,
    )


def study_spec(**overrides: Any) -> synthetic.StudySpec:
    """A three-series CT/MR study in three transfer syntaxes (small: 2+2+1 instances)."""
    values: dict[str, Any] = {
        "patient_id": "PAT-0042",
        "patient_name": "Doe^Jane^Q^Dr^III",
        "birth_date": "19800214",
        "sex": "F",
        "accession_number": "ACC-7",
        "accession_issuer_oid": "1.3.6.1.4.1.21367.13.202.2000",
        "study_date": "20240315",
        "study_time": "142530.123",
        "study_description": "CT and MR of the chest",
        "series": (
            synthetic.SeriesSpec(modality="CT", count=2, body_part="CHEST"),
            synthetic.SeriesSpec(
                modality="MR",
                count=2,
                body_part="HEAD",
                transfer_syntax=synthetic.ImplicitVRLittleEndian,
            ),
            synthetic.SeriesSpec(
                modality="CT",
                count=1,
                body_part="ABDOMEN",
                transfer_syntax=synthetic.DeflatedExplicitVRLittleEndian,
            ),
        ),
    }
    values.update(overrides)
    return synthetic.StudySpec(**values)


def encoded_study(spec: synthetic.StudySpec) -> list[bytes]:
    """The Part 10 bytes of every instance of a study."""
    return [synthetic.encode(ds) for ds in synthetic.make_study(spec)]


def evidence_instances(kos: Dataset) -> dict[str, tuple[str, str, str, str]]:
    """``{SOP Instance UID: (series UID, SOP Class UID, Retrieve Location UID, AE title)}``."""
    found = {}
    for study in kos.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            for item in series.ReferencedSOPSequence:
                found[str(item.ReferencedSOPInstanceUID)] = (
                    str(series.SeriesInstanceUID),
                    str(item.ReferencedSOPClassUID),
                    str(series.RetrieveLocationUID),
                    str(series.RetrieveAETitle),
                )
    return found


NIST_TESTS = (
    Path(__file__).resolve().parents[4] / "shared" / "conformance" / "nist-testkit" / "tests"
)
_MODALITY_OF = {
    "1.2.840.10008.5.1.4.1.1.2": "CT",
    "1.2.840.10008.5.1.4.1.1.4": "MR",
    "1.2.840.10008.5.1.4.1.1.1": "CR",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX",
    "1.2.840.10008.5.1.4.1.1.7": "OT",
}


def reference_kos(test: str) -> Path:
    """The NIST gold KOS of an ids_2018-4801x test (skips when the testkit is absent)."""
    import pytest

    path = NIST_TESTS / test / "ValidateKOS" / "kos-evaluate.dcm"
    if not path.is_file():
        pytest.skip(f"NIST testkit not found at {NIST_TESTS} (../shared/conformance absent)")
    return path


def standin_study(kos_path: Path) -> list[Dataset]:
    """Synthetic instances with the UIDs, patient and study attributes a NIST gold KOS lists:
    our own images standing in for the NIST data set (ids_2018-4800 "Do not use your own
    images" is about the real Connectathon run; the checks only compare these attributes)."""
    kos = pydicom.dcmread(kos_path)
    instances = []
    for study in kos.CurrentRequestedProcedureEvidenceSequence:
        for number, series in enumerate(study.ReferencedSeriesSequence, start=1):
            for index, item in enumerate(series.ReferencedSOPSequence, start=1):
                ds = _standin(kos, str(item.ReferencedSOPClassUID), number, index)
                ds.StudyInstanceUID = str(study.StudyInstanceUID)
                ds.SeriesInstanceUID = str(series.SeriesInstanceUID)
                ds.SOPInstanceUID = str(item.ReferencedSOPInstanceUID)
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                instances.append(ds)
    return instances


def _standin(kos: Dataset, sop_class: str, series_number: int, number: int) -> Dataset:
    spec = synthetic.StudySpec(
        patient_id=str(kos.PatientID),
        patient_name=str(kos.PatientName),
        birth_date=str(kos.get("PatientBirthDate", "") or ""),
        sex=str(kos.get("PatientSex", "") or ""),
        accession_number=str(kos.AccessionNumber),
        study_date=str(kos.StudyDate),
        study_time=str(kos.StudyTime),
        series=(synthetic.SeriesSpec(modality=_MODALITY_OF.get(sop_class, "OT"), count=1),),
    )
    ds = synthetic.make_study(spec)[0]
    ds.SOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SeriesNumber, ds.InstanceNumber = series_number, number
    return ds
