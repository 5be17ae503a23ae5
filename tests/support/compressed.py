"""Real compressed DICOM files for the tests, made from uncompressed synthetic instances.

dcmtk encodes JPEG (``dcmcjpeg``: lossless SV1 by default, ``+el`` any lossless process, ``+eb``
baseline), JPEG-LS (``dcmcjpls``, lossless by default) and RLE (``dcmcrle``); dcmtk has no JPEG
2000 encoder, so pydicom's ``Dataset.compress`` with pylibjpeg-openjpeg makes those. Every file is
a real, decodable code stream (unlike ``gateway.imaging.synthetic``'s stand-in JPEG data). Tests
that need dcmtk skip with a reason when it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from gateway.imaging import synthetic

# transfer syntax -> (dcmtk tool, options)
DCMTK = {
    JPEGLosslessSV1: ("dcmcjpeg", ()),
    JPEGLossless: ("dcmcjpeg", ("+el",)),
    JPEGBaseline8Bit: ("dcmcjpeg", ("+eb",)),
    JPEGLSLossless: ("dcmcjpls", ()),
    RLELossless: ("dcmcrle", ()),
}
LOSSLESS = (JPEGLosslessSV1, JPEGLSLossless, JPEG2000Lossless, RLELossless)


def tool(name: str) -> str:
    """The path of a dcmtk tool; skips the calling test when dcmtk is not installed."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"dcmtk {name} is not installed (apt-get install dcmtk)")
    return found


def compress(source: Path, target: Path, syntax: str) -> Path:
    """Write ``source`` (uncompressed Part 10) to ``target`` in ``syntax``; return ``target``."""
    if syntax in DCMTK:
        name, options = DCMTK[syntax]
        result = subprocess.run(
            [tool(name), *options, str(source), str(target)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    elif syntax == ExplicitVRLittleEndian:  # uncompressed, as written
        shutil.copyfile(source, target)
    elif syntax == JPEG2000Lossless:
        ds = pydicom.dcmread(source)
        ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg", generate_instance_uid=False)
        ds.save_as(target, enforce_file_format=True)
    else:
        raise ValueError(f"no encoder for {syntax} in the tests")
    assert str(pydicom.dcmread(target, stop_before_pixels=True).file_meta.TransferSyntaxUID) == (
        syntax
    )
    return target


def study_files(
    folder: Path, series: Sequence[tuple[str, str]], *, spec: synthetic.StudySpec | None = None
) -> list[tuple[Path, Path]]:
    """One synthetic study with a series per ``(modality, syntax)``, two 64x64 instances each:
    ``(uncompressed file, compressed file)`` pairs. Modality US gives 8-bit samples (JPEG
    Baseline), CT 12 bits in 16."""
    spec = spec or synthetic.StudySpec()
    spec.series = [
        synthetic.SeriesSpec(modality=modality, count=2, rows=64, columns=64)
        for modality, _ in series
    ]
    instances = synthetic.make_study(spec)
    plain = synthetic.write_study(instances, folder / "plain")
    pairs = []
    for path, ds in zip(plain, instances, strict=True):
        syntax = series[int(ds.SeriesNumber) - 1][1]
        target = folder / "compressed" / path.relative_to(folder / "plain")
        target.parent.mkdir(parents=True, exist_ok=True)
        pairs.append((path, compress(path, target, syntax)))
    return pairs


def rgb_file(folder: Path, *, rows: int = 48, columns: int = 64) -> Path:
    """An 8-bit RGB Secondary Capture instance (colour-by-pixel) with smooth gradients, so a
    lossy JPEG of it stays close to the original."""
    spec = synthetic.StudySpec(series=[synthetic.SeriesSpec(modality="OT", count=1)])
    ds: Dataset = synthetic.make_study(spec)[0]
    y, x = np.mgrid[0:rows, 0:columns]
    pixels = np.stack([x * 255 // columns, y * 255 // rows, (x + y) * 127 // (rows + columns)], -1)
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds["PixelData"].VR = "OB"
    path = folder / "rgb.dcm"
    path.write_bytes(synthetic.encode(ds))
    return path


def multiframe_file(folder: Path, *, frames: int, rows: int = 128, columns: int = 128) -> Path:
    """A multi-frame Grayscale Word Secondary Capture instance (12 bits stored in 16, Explicit
    VR Little Endian), each frame a different pattern."""
    spec = synthetic.StudySpec(series=[synthetic.SeriesSpec(modality="OT", count=1)])
    ds: Dataset = synthetic.make_study(spec)[0]
    ds.SOPClassUID = synthetic.MULTIFRAME_GRAYSCALE_WORD_SC
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.FrameIncrementPointer, ds.FrameTime = 0x00181063, 40.0
    z, y, x = np.mgrid[0:frames, 0:rows, 0:columns]
    ds.PixelData = ((x * 13 + y * 7 + z * 101) % 4096).astype("<u2").tobytes()
    path = folder / "multiframe.dcm"
    path.write_bytes(synthetic.encode(ds))
    return path


def pixels(path: Path) -> np.ndarray:
    """The decoded pixel array of a file (all frames)."""
    return pydicom.dcmread(path).pixel_array
