"""RAD-69 on the actor side (gateway.imaging.retrieve, transcode): every error code of RAD TF-3
§4.69.4.2.3 and the NIST exception cases, PartialSuccess, transfer syntax conversion, streaming
from disk, homeCommunityId echo."""

from __future__ import annotations

import io
import re

import pydicom
import pytest
from pydicom.dataset import Dataset

from gateway.errors import XDSRepositoryError
from gateway.imaging import synthetic
from gateway.imaging.source import ImagingSource
from gateway.metadata import retrieve as codec
from gateway.metadata.retrieve import Status
from tests.unit.imaging.support import SOURCE_UID, study_spec

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
JPEG = "1.2.840.10008.1.2.4.50"


@pytest.fixture
def stored(source: ImagingSource) -> dict[str, tuple[Dataset, bytes]]:
    """One study stored: CT explicit (2), MR implicit (2), CT deflated (1), CR JPEG (1)."""
    spec = study_spec(
        series=(
            synthetic.SeriesSpec(modality="CT", count=2),
            synthetic.SeriesSpec(modality="MR", count=2, transfer_syntax=IMPLICIT),
            synthetic.SeriesSpec(modality="CT", count=1, transfer_syntax=DEFLATED),
            synthetic.SeriesSpec(modality="CR", count=1, transfer_syntax=JPEG),
        )
    )
    found = {}
    for ds in synthetic.make_study(spec):
        data = synthetic.encode(ds)
        source.ingest.store_encoded(data)
        found[str(ds.SOPInstanceUID)] = (ds, data)
    return found


def request(
    items: list[tuple[Dataset, str]], syntaxes: tuple[str, ...] = (EXPLICIT,), **document: str
) -> codec.RetrieveImagingDocumentSetRequest:
    """One StudyRequest/SeriesRequest per item (study and series UIDs of the dataset)."""
    studies = []
    for ds, repository in items:
        doc = codec.DocumentRequest(
            repository_unique_id=repository,
            document_unique_id=document.get("uid", str(ds.SOPInstanceUID)),
            home_community_id=document.get("home"),
        )
        series = codec.SeriesRequest(
            series_instance_uid=document.get("series", str(ds.SeriesInstanceUID)), documents=(doc,)
        )
        studies.append(
            codec.StudyRequest(
                study_instance_uid=document.get("study", str(ds.StudyInstanceUID)),
                series=(series,),
            )
        )
    return codec.RetrieveImagingDocumentSetRequest(
        studies=tuple(studies), transfer_syntaxes=syntaxes
    )


def of(stored: dict[str, tuple[Dataset, bytes]], syntax: str) -> list[tuple[Dataset, bytes]]:
    return [v for v in stored.values() if v[0].file_meta.TransferSyntaxUID == syntax]


def test_whole_study_in_stored_syntaxes_comes_back_byte_identical(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    items = [(ds, SOURCE_UID) for ds, _ in stored.values()]
    result = source.retriever.retrieve(request(items, (EXPLICIT, IMPLICIT, DEFLATED, JPEG)))
    assert (result.status, result.errors) == (Status.SUCCESS, [])
    assert len(result.documents) == 6
    for document in result.documents:
        assert document.attachment.path is not None  # streamed from the stored file
        assert not document.attachment.owned  # never deleted after sending
        assert document.attachment.read_bytes() == stored[document.document_unique_id][1]
        assert (document.repository_unique_id, document.mime_type) == (
            SOURCE_UID,
            "application/dicom",
        )


@pytest.mark.parametrize(
    ("stored_syntax", "requested", "expected"),
    [
        (EXPLICIT, (IMPLICIT,), IMPLICIT),
        (IMPLICIT, (EXPLICIT,), EXPLICIT),
        (DEFLATED, (EXPLICIT, IMPLICIT), EXPLICIT),
        (EXPLICIT, (JPEG, DEFLATED), DEFLATED),
    ],
)
def test_native_instances_are_converted_to_a_requested_syntax(
    source: ImagingSource,
    stored: dict[str, tuple[Dataset, bytes]],
    stored_syntax: str,
    requested: tuple[str, ...],
    expected: str,
) -> None:
    ds, _ = of(stored, stored_syntax)[0]
    result = source.retriever.retrieve(request([(ds, SOURCE_UID)], requested))
    assert result.status == Status.SUCCESS
    [document] = result.documents
    attachment = document.attachment
    assert attachment.owned  # a temporary file, removed once sent
    converted = pydicom.dcmread(io.BytesIO(attachment.read_bytes()))
    assert converted.file_meta.TransferSyntaxUID == expected
    assert converted.SOPInstanceUID == ds.SOPInstanceUID
    assert converted.PixelData == ds.PixelData
    assert converted.PatientName == ds.PatientName
    attachment.discard()
    assert attachment.path is not None and not attachment.path.exists()


def test_undecodable_instance_not_in_the_list_is_an_error_for_that_document(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    """The synthetic JPEG stand-in cannot be decoded: that document fails, saying why; the
    others come back (PartialSuccess)."""
    jpeg, _ = of(stored, JPEG)[0]
    ct, _ = of(stored, EXPLICIT)[0]
    result = source.retriever.retrieve(request([(jpeg, SOURCE_UID), (ct, SOURCE_UID)]))
    assert result.status == Status.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in result.documents] == [ct.SOPInstanceUID]
    [error] = result.errors
    assert (error.code, error.location) == ("XDSRepositoryError", jpeg.SOPInstanceUID)
    assert "could not be decoded" in error.context
    assert [
        p for p in source.store.tmp_dir.iterdir() if p.is_file()
    ] == []  # the half-written file is gone


def test_compressed_instance_that_no_listed_syntax_can_hold_is_an_error(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    jpeg, _ = of(stored, JPEG)[0]
    j2k = "1.2.840.10008.1.2.4.90"
    result = source.retriever.retrieve(request([(jpeg, SOURCE_UID)], (j2k,)))
    assert result.status == Status.FAILURE
    [error] = result.errors
    assert (error.code, error.location) == ("XDSRepositoryError", jpeg.SOPInstanceUID)
    assert "cannot be provided in a requested transfer syntax" in error.context
    assert "JPEG Baseline" in error.context and "converts only into" in error.context


def test_unknown_repository(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    ds, _ = next(iter(stored.values()))
    result = source.retriever.retrieve(request([(ds, SOURCE_UID + ".999")]))
    assert (result.status, result.documents) == (Status.FAILURE, [])
    [error] = result.errors
    assert error.code == "XDSUnknownRepositoryId"
    assert error.context == f"Unknown Repository UID [{SOURCE_UID}.999]. Expected [{SOURCE_UID}]"
    assert error.location == ds.SOPInstanceUID


@pytest.mark.parametrize("case", ["unknown-instance", "other-series", "other-study"])
def test_unknown_or_misplaced_instance(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]], case: str
) -> None:
    ds, _ = of(stored, EXPLICIT)[0]
    other, _ = of(stored, IMPLICIT)[0]
    overrides = {
        "unknown-instance": {"uid": str(ds.SOPInstanceUID) + ".999"},
        "other-series": {"series": str(other.SeriesInstanceUID)},
        "other-study": {"study": "2.25.12345"},
    }[case]
    result = source.retriever.retrieve(request([(ds, SOURCE_UID)], **overrides))
    assert result.status == Status.FAILURE
    assert [e.code for e in result.errors] == ["XDSDocumentUniqueIdError"]


def test_missing_file_is_reported_as_unavailable(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    ds, _ = of(stored, EXPLICIT)[0]
    record = source.index.instance(str(ds.SOPInstanceUID))
    assert record is not None
    source.store.path(record.path).unlink()
    result = source.retriever.retrieve(request([(ds, SOURCE_UID)]))
    assert [e.code for e in result.errors] == ["XDSDocumentUniqueIdError"]


def test_partial_success_lists_found_documents_and_errors(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    ds, data = of(stored, EXPLICIT)[0]
    gone = request([(ds, SOURCE_UID)], uid="2.25.4242").studies
    found = request([(ds, SOURCE_UID)]).studies
    result = source.retriever.retrieve(
        codec.RetrieveImagingDocumentSetRequest(studies=found + gone, transfer_syntaxes=(EXPLICIT,))
    )
    assert result.status == Status.PARTIAL_SUCCESS
    assert [d.attachment.read_bytes() for d in result.documents] == [data]
    assert [(e.code, e.location) for e in result.errors] == [
        ("XDSDocumentUniqueIdError", "2.25.4242")
    ]


def test_unsupported_transfer_syntax_list_fails_the_request(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    ds, _ = next(iter(stored.values()))
    with pytest.raises(XDSRepositoryError, match=re.escape("1.2.840.10008.1.2.1.999")):
        source.retriever.retrieve(request([(ds, SOURCE_UID)], ("1.2.840.10008.1.2.1.999",)))


def test_home_community_id_is_echoed(
    source: ImagingSource, stored: dict[str, tuple[Dataset, bytes]]
) -> None:
    ds, _ = of(stored, EXPLICIT)[0]
    result = source.retriever.retrieve(request([(ds, SOURCE_UID)], home="urn:oid:1.2.3"))
    assert result.documents[0].home_community_id == "urn:oid:1.2.3"
    result = source.retriever.retrieve(request([(ds, SOURCE_UID)]))
    assert result.documents[0].home_community_id is None
