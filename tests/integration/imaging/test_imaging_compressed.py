"""Compressed studies end to end, with real tools over loopback: dcmtk ``dcmsend`` (which, by
default, proposes a compressed file's syntax first and, when it can decompress it (JPEG), the
uncompressed ones after it in the same presentation context, and decompresses when one of those
is accepted) sends JPEG Lossless SV1,
JPEG-LS, JPEG 2000 and RLE files; each is stored in the syntax it was sent in; RAD-69 returns it
byte for byte when that syntax is listed, and decompressed with identical pixel data when only
uncompressed syntaxes are; and ``dicomtrolley`` (a third-party RAD-69 client, its request
unmodified) retrieves a JPEG study completely.

Standards: PS3.8 §7.1.1.13-14 and PS3.7 §D.3.2 (one syntax per context, the acceptor chooses);
PS3.4 §B.4.1 (no coercion); RAD TF-3 §4.69.4.2.3 (one of the requested syntaxes, or an error).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from gateway.imaging import synthetic
from gateway.imaging.source import ImagingSource
from gateway.metadata import retrieve as codec
from gateway.metadata.retrieve import Status
from tests.integration.imaging.conftest import Running, serve_rad69
from tests.integration.imaging.test_imaging_dicom import retrieve, whole_study
from tests.support import compressed
from tests.unit.imaging.support import AE_TITLE, RecordingRepository, make_source

SENT = [
    ("CT", JPEGLosslessSV1),
    ("CT", JPEGLSLossless),
    ("CT", JPEG2000Lossless),
    ("CT", RLELossless),
]


def dcmsend(host: str, port: int, files: list[Path], *options: str) -> str:
    """Send files with dcmtk's dcmsend (its defaults unless ``options``); return its log."""
    result = subprocess.run(
        [compressed.tool("dcmsend"), "-v", "+v", "-aec", AE_TITLE, *options, host, str(port)]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def stored_syntaxes(source: ImagingSource, files: list[Path]) -> dict[str, str]:
    """SOP Instance UID -> transfer syntax the source stored it in (index and file agree)."""
    found = {}
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    for uid, record in source.index.instances(uids).items():
        on_disk = pydicom.dcmread(source.store.path(record.path), stop_before_pixels=True)
        assert str(on_disk.file_meta.TransferSyntaxUID) == record.transfer_syntax_uid
        found[uid] = record.transfer_syntax_uid
    return found


def test_dcmsend_files_are_stored_in_the_syntax_they_were_sent_in(
    running: Running, tmp_path: Path
) -> None:
    pairs = compressed.study_files(tmp_path, SENT)
    sent = [packed for _, packed in pairs]
    log = dcmsend(running.host, running.port, sent)
    assert "=LittleEndianExplicit" in log  # dcmsend offered to decompress (SV1) ...
    stored = stored_syntaxes(running.source, sent)
    assert len(stored) == len(sent)
    for path in sent:
        ds = pydicom.dcmread(path)
        uid = str(ds.SOPInstanceUID)
        assert stored[uid] == ds.file_meta.TransferSyntaxUID  # ... and was not asked to
        record = running.source.index.instances([uid])[uid]
        kept = pydicom.dcmread(running.source.store.path(record.path))
        assert kept.PixelData == ds.PixelData  # the very code stream sent


def test_rad69_returns_stored_bytes_or_decompressed_pixels(
    running: Running, tmp_path: Path
) -> None:
    pairs = compressed.study_files(tmp_path, SENT)
    dcmsend(running.host, running.port, [packed for _, packed in pairs])
    instances = [pydicom.dcmread(packed) for _, packed in pairs]
    originals = {str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p, _ in pairs}

    listed = tuple(syntax for _, syntax in SENT)
    result = retrieve(running.rad69_url, whole_study(instances, listed))
    assert (result.status, result.errors) == (Status.SUCCESS, [])
    assert len(result.documents) == len(pairs)
    for document in result.documents:
        record = running.source.index.instances([document.document_unique_id])
        stored = running.source.store.path(record[document.document_unique_id].path)
        assert document.attachment.read_bytes() == stored.read_bytes()  # byte-identical
    result.discard()

    for syntaxes in ((ExplicitVRLittleEndian,), (ImplicitVRLittleEndian,)):
        result = retrieve(running.rad69_url, whole_study(instances, syntaxes))
        assert (result.status, result.errors) == (Status.SUCCESS, [])
        assert len(result.documents) == len(pairs)
        for document in result.documents:
            ds = pydicom.dcmread(document.attachment.open())
            original = originals[document.document_unique_id]
            assert ds.file_meta.TransferSyntaxUID == syntaxes[0]
            assert ds.SOPInstanceUID == original.SOPInstanceUID
            assert ds.PixelData == original.PixelData  # identical pixel values
        result.discard()


def test_operator_order_prefers_uncompressed(tmp_path: Path) -> None:
    """``imaging_source.transfer_syntax_preference`` = Explicit VR Little Endian: dcmsend's
    proposal (JPEG Lossless SV1, then uncompressed, in one context) is answered with Explicit VR
    Little Endian, so dcmsend decompresses before sending."""
    source = make_source(
        tmp_path, RecordingRepository(), transfer_syntax_order=(ExplicitVRLittleEndian,)
    )
    host, port = source.start()
    try:
        pairs = compressed.study_files(tmp_path, [("CT", JPEGLosslessSV1)])
        sent = [packed for _, packed in pairs]
        dcmsend(host, port, sent)
        assert set(stored_syntaxes(source, sent).values()) == {ExplicitVRLittleEndian}
    finally:
        source.stop()


# -- dicomtrolley ---------------------------------------------------------------------------------

DICOMTROLLEY_REPOSITORY = "1.3.6.1.4.1000"  # the RepositoryUniqueId dicomtrolley's template names


@pytest.fixture
def trolley_source(tmp_path: Path) -> Iterator[tuple[ImagingSource, str]]:
    """A source whose unique id is the one dicomtrolley's request names, RAD-69 over HTTP."""
    source = make_source(tmp_path, RecordingRepository(), unique_id=DICOMTROLLEY_REPOSITORY)
    source.start()
    http = serve_rad69(source, tmp_path / "spool")
    host, port = http.address
    try:
        yield source, f"http://{host}:{port}/xdsi/source"
    finally:
        http.stop()
        source.stop()


def test_dicomtrolley_retrieves_a_jpeg_study_completely(
    trolley_source: tuple[ImagingSource, str], tmp_path: Path
) -> None:
    """dicomtrolley lists JPEG Lossless SV1, Implicit and Explicit VR Little Endian: the SV1
    series comes back as stored, JPEG Baseline, JPEG-LS and JPEG 2000 decompressed."""
    from dicomtrolley.core import InstanceReference
    from dicomtrolley.rad69 import Rad69

    source, url = trolley_source
    series = [
        ("US", JPEGBaseline8Bit),
        ("CT", JPEGLosslessSV1),
        ("CT", JPEGLSLossless),
        ("CT", JPEG2000Lossless),
    ]
    pairs = compressed.study_files(tmp_path, series)
    host, port = source.address
    dcmsend(host, port, [packed for _, packed in pairs])
    refs = []
    expected = {}
    for plain, packed in pairs:
        ds = pydicom.dcmread(packed)
        refs.append(
            InstanceReference(
                study_uid=str(ds.StudyInstanceUID),
                series_uid=str(ds.SeriesInstanceUID),
                instance_uid=str(ds.SOPInstanceUID),
            )
        )
        expected[str(ds.SOPInstanceUID)] = (plain, packed, str(ds.file_meta.TransferSyntaxUID))
    with requests.Session() as session:
        datasets = list(Rad69(session=session, url=url).datasets(refs))
    assert sorted(str(ds.SOPInstanceUID) for ds in datasets) == sorted(expected)
    for ds in datasets:
        plain, packed, sent_in = expected[str(ds.SOPInstanceUID)]
        if sent_in == JPEGLosslessSV1:
            assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
            assert ds.PixelData == pydicom.dcmread(packed).PixelData
        elif sent_in == JPEGBaseline8Bit:  # lossy: the decoder's values
            assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
            assert (ds.pixel_array == pydicom.dcmread(packed).pixel_array).all()
            assert ds.LossyImageCompression == "01"
        else:
            assert ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
            assert ds.PixelData == pydicom.dcmread(plain).PixelData


def test_instances_that_cannot_be_decoded_name_the_reason(running: Running, tmp_path: Path) -> None:
    """A JPEG Baseline stand-in (synthetic, not a real code stream) asked for uncompressed: the
    document fails with a plain reason, the rest of the request succeeds."""
    spec = synthetic.StudySpec(
        series=[
            synthetic.SeriesSpec(modality="US", count=1, transfer_syntax=JPEGBaseline8Bit),
            synthetic.SeriesSpec(modality="CT", count=1),
        ]
    )
    instances = synthetic.make_study(spec)
    paths = synthetic.write_study(instances, tmp_path / "study")
    dcmsend(running.host, running.port, paths)
    result = retrieve(running.rad69_url, whole_study(instances, (ExplicitVRLittleEndian,)))
    assert result.status == Status.PARTIAL_SUCCESS
    [error] = result.errors
    assert error.location == str(instances[0].SOPInstanceUID)
    assert "could not be decoded" in error.context
    result.discard()
    assert isinstance(result, codec.RetrieveDocumentSetResponse)
