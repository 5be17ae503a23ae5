"""gateway.imaging.transcode on real compressed files (dcmtk and pylibjpeg-openjpeg encoders):
lossless syntaxes round-trip pixel-identical into every uncompressed output, lossy JPEG keeps its
Lossy Image Compression history, YBR_FULL_422 comes out RGB, multi-frame instances are decoded a
frame at a time, the result passes dciodvfy, and what cannot be done says why."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    JPEG2000,
    MPEG2MPML,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from gateway.imaging import synthetic, transcode
from gateway.imaging.transcode import CannotTranscode, Plan
from tests.support import compressed
from tests.support.dciodvfy import validate

OUTPUTS = transcode.OUTPUTS


@pytest.fixture(scope="module")
def ct_pairs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """A CT instance in each lossless syntax: syntax -> (uncompressed, compressed)."""
    folder = tmp_path_factory.mktemp("ct")
    pairs = compressed.study_files(folder, [("CT", syntax) for syntax in compressed.LOSSLESS])
    found = {}
    for plain, packed in pairs:
        syntax = str(pydicom.dcmread(packed, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        found.setdefault(syntax, (plain, packed))
    return found


@pytest.mark.parametrize("stored", compressed.LOSSLESS)
@pytest.mark.parametrize("output", OUTPUTS)
def test_lossless_syntaxes_round_trip_pixel_identical(
    ct_pairs: dict[str, tuple[Path, Path]], stored: str, output: str, tmp_path: Path
) -> None:
    plain, packed = ct_pairs[stored]
    target = tmp_path / "out.dcm"
    size = transcode.transcode(packed, target, output)
    assert size == target.stat().st_size
    result = pydicom.dcmread(target)
    original = pydicom.dcmread(plain)
    assert result.file_meta.TransferSyntaxUID == output
    assert result.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    assert result.SOPInstanceUID == original.SOPInstanceUID  # not a new instance
    assert result.PixelData == original.PixelData  # the very bytes, not only equal values
    assert result.PhotometricInterpretation == "MONOCHROME2"
    assert "LossyImageCompression" not in result
    for keyword in ("PatientName", "StudyInstanceUID", "AccessionNumber", "ImagePositionPatient"):
        assert result.get(keyword) == original.get(keyword)


@pytest.mark.parametrize("stored", [JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless])
def test_decompressed_instances_pass_dciodvfy(
    ct_pairs: dict[str, tuple[Path, Path]], stored: str, tmp_path: Path
) -> None:
    plain, packed = ct_pairs[stored]
    assert validate(plain).errors == []  # the synthetic original is a valid CT Image
    target = tmp_path / "out.dcm"
    transcode.transcode(packed, target, ExplicitVRLittleEndian)
    report = validate(target)
    assert report.errors == [], report.text


def test_native_instances_are_rewritten_without_decoding(tmp_path: Path) -> None:
    spec = synthetic.StudySpec(series=[synthetic.SeriesSpec(modality="CT", count=1)])
    ds = synthetic.make_study(spec)[0]
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    source = tmp_path / "implicit.dcm"
    source.write_bytes(synthetic.encode(ds))
    for output in OUTPUTS:
        target = tmp_path / f"{output}.dcm"
        transcode.transcode(source, target, output)
        result = pydicom.dcmread(target)
        assert result.file_meta.TransferSyntaxUID == output
        assert result.PixelData == ds.PixelData
        assert result["PixelData"].VR == "OW"  # 16 bits allocated (PS3.5 §8.1.2)


def _peak_memory(packed: Path, target: Path) -> int:
    """Peak bytes Python allocated (numpy included) while transcoding ``packed``."""
    tracemalloc.start()
    try:
        transcode.transcode(packed, target, ExplicitVRLittleEndian)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("syntax", [JPEGLosslessSV1, JPEG2000Lossless])
def test_multiframe_is_decoded_one_frame_at_a_time(syntax: str, tmp_path: Path) -> None:
    """The peak does not grow with the number of frames: 8 and 96 frames of 256 x 256 x 16 bit
    (128 KiB each; 12 MiB in all for 96) cost the same few frames' worth."""
    peaks = {}
    for frames in (8, 96):
        folder = tmp_path / str(frames)
        folder.mkdir()
        plain = compressed.multiframe_file(folder, frames=frames, rows=256, columns=256)
        packed = compressed.compress(plain, folder / "packed.dcm", syntax)
        target = folder / "out.dcm"
        peaks[frames] = _peak_memory(packed, target)
        result = pydicom.dcmread(target)
        assert int(result.NumberOfFrames) == frames
        assert result.PixelData == pydicom.dcmread(plain).PixelData
    whole = 96 * 256 * 256 * 2
    assert peaks[96] < 1.5 * peaks[8], peaks
    assert peaks[96] < whole / 5, peaks


def test_jpeg_baseline_ybr_full_422_comes_out_rgb_and_still_lossy(tmp_path: Path) -> None:
    rgb = compressed.rgb_file(tmp_path)
    packed = compressed.compress(rgb, tmp_path / "jpeg.dcm", JPEGBaseline8Bit)
    stored = pydicom.dcmread(packed)
    assert stored.PhotometricInterpretation == "YBR_FULL_422"
    assert stored.LossyImageCompression == "01"  # dcmcjpeg records the loss
    target = tmp_path / "out.dcm"
    transcode.transcode(packed, target, ExplicitVRLittleEndian)
    result = pydicom.dcmread(target)
    assert (result.PhotometricInterpretation, result.PlanarConfiguration) == ("RGB", 0)
    assert result.LossyImageCompression == "01"
    assert result.LossyImageCompressionMethod == stored.LossyImageCompressionMethod
    assert result.LossyImageCompressionRatio == stored.LossyImageCompressionRatio
    assert np.array_equal(result.pixel_array, stored.pixel_array)  # what the decoder yields
    difference = result.pixel_array.astype(int) - pydicom.dcmread(rgb).pixel_array.astype(int)
    assert np.abs(difference).mean() < 3  # close to the original: lossy, not garbage


def test_jpeg_baseline_that_hides_its_loss_is_marked_lossy(tmp_path: Path) -> None:
    rgb = compressed.rgb_file(tmp_path)
    packed = compressed.compress(rgb, tmp_path / "jpeg.dcm", JPEGBaseline8Bit)
    ds = pydicom.dcmread(packed)
    for keyword in ("LossyImageCompression", "LossyImageCompressionMethod"):
        delattr(ds, keyword)
    del ds.LossyImageCompressionRatio
    ds.save_as(packed)
    target = tmp_path / "out.dcm"
    transcode.transcode(packed, target, ImplicitVRLittleEndian)
    result = pydicom.dcmread(target)
    assert result.LossyImageCompression == "01"
    assert result.LossyImageCompressionMethod == "ISO_10918_1"
    assert float(result.LossyImageCompressionRatio) > 1.0


def test_deflated_output_is_readable(
    ct_pairs: dict[str, tuple[Path, Path]], tmp_path: Path
) -> None:
    plain, packed = ct_pairs[RLELossless]
    target = tmp_path / "out.dcm"
    transcode.transcode(packed, target, DeflatedExplicitVRLittleEndian)
    assert target.stat().st_size < pydicom.dcmread(plain).PixelData.__len__()
    again = tmp_path / "again.dcm"
    transcode.transcode(target, again, ExplicitVRLittleEndian)  # deflated in, too
    assert pydicom.dcmread(again).PixelData == pydicom.dcmread(plain).PixelData


def test_choose_rules() -> None:
    assert transcode.choose(JPEGLSLossless, (JPEGLSLossless, ExplicitVRLittleEndian)) == Plan(
        JPEGLSLossless, JPEGLSLossless
    )
    plan = transcode.choose(JPEGLSLossless, (ImplicitVRLittleEndian,))
    assert (plan.syntax, plan.convert) == (ImplicitVRLittleEndian, True)
    # the consumer's order among the outputs (dicomtrolley: SV1, implicit, explicit)
    dicomtrolley = (JPEGLosslessSV1, ImplicitVRLittleEndian, ExplicitVRLittleEndian)
    plan = transcode.choose(JPEG2000Lossless, dicomtrolley)
    assert plan.syntax == ImplicitVRLittleEndian
    assert transcode.choose(ExplicitVRLittleEndian, (JPEG2000, DeflatedExplicitVRLittleEndian)) == (
        Plan(ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian)
    )
    with pytest.raises(CannotTranscode, match="converts only into"):
        transcode.choose(JPEGLosslessSV1, (JPEG2000Lossless,))
    with pytest.raises(CannotTranscode, match="cannot decode"):
        transcode.choose(MPEG2MPML, (ExplicitVRLittleEndian,))
    with pytest.raises(CannotTranscode, match="only as stored"):
        transcode.choose(ExplicitVRBigEndian, (ExplicitVRLittleEndian,))
    assert transcode.is_transfer_syntax(JPEGLSLossless)
    assert not transcode.is_transfer_syntax("1.2.840.10008.1.2.1.999")
    assert not transcode.is_transfer_syntax("not a uid")


def test_undecodable_data_and_unwritable_syntax_say_why(tmp_path: Path) -> None:
    spec = synthetic.StudySpec(
        series=[synthetic.SeriesSpec(modality="CR", count=1, transfer_syntax=JPEGBaseline8Bit)]
    )
    fake = synthetic.make_study(spec)[0]  # a stand-in JPEG stream that cannot be decoded
    source = tmp_path / "fake.dcm"
    source.write_bytes(synthetic.encode(fake))
    with pytest.raises(CannotTranscode, match="could not be decoded"):
        transcode.transcode(source, tmp_path / "out.dcm", ExplicitVRLittleEndian)
    with pytest.raises(CannotTranscode, match="does not write"):
        transcode.transcode(source, tmp_path / "out.dcm", JPEG2000Lossless)
    not_dicom = tmp_path / "not.dcm"
    not_dicom.write_bytes(b"hello")
    with pytest.raises(CannotTranscode, match="cannot be read"):
        transcode.transcode(not_dicom, tmp_path / "out.dcm", ExplicitVRLittleEndian)
