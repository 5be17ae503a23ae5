"""ImagingStudy from a KOS manifest with stand-in backends: counts, modalities, and the Endpoint
switch (WADO-RS when DICOMweb serves the location, RAD-69 otherwise)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pytest
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from gateway.fhir.docref import Links
from gateway.fhir.imaging import StudyBuilder
from gateway.fhir.kos import KOS_SOP_CLASS_UID, ManifestError, read_manifest
from gateway.fhir.ports import Backends, InstanceFacts
from gateway.metadata.datatypes import Code
from gateway.metadata.retrieve import (
    DocumentRequest,
    DocumentResponse,
    RetrieveDocumentSetResponse,
    Status,
)
from gateway.soap.message import Attachment
from tests.factories import make_document_entry
from tests.support.fhir_check import check_resource

CT, MR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
SOURCE, OTHER = "1.2.3.100", "1.2.3.200"
REPOSITORY = "1.2.3.40"
LINKS = Links(base="https://region.example/fhir", root="https://region.example")


def kos(series: Sequence[tuple[str, str, list[str]]]) -> bytes:
    """A KOS listing ``series`` = (series UID, Retrieve Location UID, SOP Class per instance)."""
    ds = Dataset()
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = "1.2.3.9.1"
    ds.StudyInstanceUID = "1.2.3.9"
    ds.StudyDate, ds.StudyDescription = "20240102", "CT and MR"
    items = []
    for series_uid, location, classes in series:
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.RetrieveLocationUID = location
        sops = []
        for n, sop_class in enumerate(classes):
            sop = Dataset()
            sop.ReferencedSOPClassUID = sop_class
            sop.ReferencedSOPInstanceUID = f"{series_uid}.{n + 1}"
            sops.append(sop)
        item.ReferencedSOPSequence = DicomSequence(sops)
        items.append(item)
    study = Dataset()
    study.StudyInstanceUID = ds.StudyInstanceUID
    study.ReferencedSeriesSequence = DicomSequence(items)
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([study])
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def backends(data: bytes, **overrides: Any) -> Backends:
    asked: list[int] = []

    def retrieve(requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        asked.append(1)
        document = DocumentResponse(
            repository_unique_id=REPOSITORY,
            document_unique_id=requests[0].document_unique_id,
            mime_type="application/dicom",
            attachment=Attachment.from_bytes(data),
        )
        return RetrieveDocumentSetResponse(status=Status.SUCCESS, documents=[document])

    values: dict[str, Any] = {
        "query": lambda _q: [],
        "repositories": {REPOSITORY: retrieve},
        "domain_oid": "1.3.6.1.4.1.21367.13.20.1000",
        "rad69_urls": {SOURCE: "/xdsi/source", OTHER: "https://hospital-b.example/xdsi/source"},
    }
    values.update(overrides)
    return Backends(**values)


ENTRY = make_document_entry(
    entry_uuid="urn:uuid:0f3c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    repository_unique_id=REPOSITORY,
    event_code_list=[Code("CT", "1.2.840.10008.2.16.4")],
    service_start_time=None,
)
TWO_SOURCES = [("1.2.3.9.10", SOURCE, [CT, CT, CT]), ("1.2.3.9.20", OTHER, [MR, MR])]


def test_counts_modalities_and_rad69_endpoints() -> None:
    study = StudyBuilder(backends(kos(TWO_SOURCES))).build(ENTRY, LINKS)
    check_resource(study)
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 5)
    assert [s["numberOfInstances"] for s in study["series"]] == [3, 2]
    # no index: the one DCM modality of the eventCodeList, then the SOP Class's
    assert [s["modality"]["code"] for s in study["series"]] == ["CT", "CT"]
    endpoints = {e["identifier"][0]["value"]: e for e in study["contained"]}
    assert endpoints[f"urn:oid:{SOURCE}"]["address"] == "https://region.example/xdsi/source"
    assert endpoints[f"urn:oid:{OTHER}"]["address"] == "https://hospital-b.example/xdsi/source"
    assert {e["connectionType"]["code"] for e in endpoints.values()} == {"ihe-xds"}
    assert study["started"] == "2024-01-02"  # the KOS Study Date (no serviceStartTime)


def test_wado_rs_when_dicomweb_serves_the_location() -> None:
    builder = StudyBuilder(
        backends(kos(TWO_SOURCES), wado_rs="/dicomweb", wado_rs_locations=frozenset({SOURCE}))
    )
    study = builder.build(ENTRY, LINKS)
    check_resource(study)
    kinds = {e["identifier"][0]["value"]: e for e in study["contained"]}
    wado = kinds[f"urn:oid:{SOURCE}"]
    assert (wado["connectionType"]["code"], wado["address"]) == (
        "dicom-wado-rs",
        "https://region.example/dicomweb",
    )
    assert kinds[f"urn:oid:{OTHER}"]["connectionType"]["code"] == "ihe-xds"
    assert study["series"][0]["endpoint"] == [{"reference": f"#{wado['id']}"}]


def test_the_index_gives_modality_and_numbers() -> None:
    facts = {
        "1.2.3.9.20.1": InstanceFacts(modality="MR", series_number=2, instance_number=1),
        "1.2.3.9.20.2": InstanceFacts(modality="MR", series_number=2, instance_number=2),
    }
    entry = make_document_entry(repository_unique_id=REPOSITORY, event_code_list=[])
    builder = StudyBuilder(backends(kos(TWO_SOURCES), instances=lambda uids: facts))
    study = builder.build(entry, LINKS)
    check_resource(study)
    ct, mr = study["series"]
    assert (ct["modality"]["code"], "number" in ct) == ("CT", False)  # from the SOP Class
    assert (mr["modality"]["code"], mr["number"]) == ("MR", 2)
    assert [i["number"] for i in mr["instance"]] == [1, 2]


def test_manifests_are_read_once() -> None:
    calls: list[int] = []
    base = backends(kos(TWO_SOURCES))
    [retrieve] = base.repositories.values()

    def counting(requests: Sequence[DocumentRequest]) -> RetrieveDocumentSetResponse:
        calls.append(1)
        return retrieve(requests)

    builder = StudyBuilder(backends(kos(TWO_SOURCES), repositories={REPOSITORY: counting}))
    builder.build(ENTRY, LINKS)
    builder.build(ENTRY, LINKS)
    assert calls == [1]


@pytest.mark.parametrize("data", [b"not dicom", kos([])])
def test_unreadable_manifests(data: bytes) -> None:
    with pytest.raises(ManifestError):
        read_manifest(data)
