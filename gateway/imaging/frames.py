"""Single frames of a stored instance, as stored or decoded: for WADO-RS ``/frames`` and rendering.

Built on the reading half of :mod:`gateway.imaging.transcode` (the one place that finds the pixel
data in a stored file) and on the same pydicom decoders (python-gdcm, pylibjpeg-openjpeg,
pylibjpeg-rle), so there is one decoder in the gateway. Nothing reads more than the frames asked
for: the header is parsed up to the pixel data, a native frame is read at its offset, an
encapsulated frame is located through the Basic (or Extended) Offset Table or by walking the items
(pydicom's ``encaps.get_frame``), and a decoded frame is decoded alone.

Standards: DICOM PS3.5 §8.2 (native and encapsulated pixel data), §A.4 (encapsulation, Basic
Offset Table), PS3.3 C.7.6.3 (Image Pixel Module), PS3.18 §8.7.3.3 (frame bulk data).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ImplicitVRLittleEndian

from gateway.imaging import transcode
from gateway.imaging.transcode import CannotTranscode

NATIVE = frozenset(transcode.OUTPUTS) - {DeflatedExplicitVRLittleEndian}


@dataclass(frozen=True, slots=True, kw_only=True)
class PixelInfo:
    """Where a stored instance's pixel data are and how they are described."""

    transfer_syntax_uid: str
    frames: int
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    photometric_interpretation: str
    keyword: str  # PixelData, FloatPixelData, DoubleFloatPixelData
    vr: str
    start: int  # where the value starts in the file
    length: int  # its length (0xFFFFFFFF for encapsulated data)
    header: Dataset  # the data set up to the pixel data (rendering reads its LUT attributes)

    @property
    def encapsulated(self) -> bool:
        return self.transfer_syntax_uid not in NATIVE

    @property
    def frame_length(self) -> int:
        """Bytes of one native frame (whole bytes only, as transcode converts)."""
        bits = self.bits_allocated
        if bits % 8:
            raise CannotTranscode(f"Bits Allocated {bits} is not served frame by frame")
        return self.rows * self.columns * self.samples_per_pixel * bits // 8


def pixel_info(path: str | os.PathLike[str]) -> PixelInfo | None:
    """Read a stored file's header and find its pixel data; None when it has none.

    Raises: CannotTranscode (the file cannot be read, or is Deflated: no random access).
    """
    with open(path, "rb") as handle:
        try:
            head = dcmread(handle, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many kinds on garbled input
            raise CannotTranscode(f"the stored file cannot be read ({exc})") from exc
        syntax = str(head.file_meta.get("TransferSyntaxUID", ""))
        if syntax == DeflatedExplicitVRLittleEndian:
            raise CannotTranscode("frames of a Deflated instance are not served (no random access)")
        found = transcode._pixel_element(handle, syntax == ImplicitVRLittleEndian)
    if found is None:
        return None
    keyword, vr, start, length = found
    return PixelInfo(
        transfer_syntax_uid=syntax,
        frames=int(head.get("NumberOfFrames", 1) or 1),
        rows=int(head.get("Rows", 0) or 0),
        columns=int(head.get("Columns", 0) or 0),
        samples_per_pixel=int(head.get("SamplesPerPixel", 1) or 1),
        bits_allocated=int(head.get("BitsAllocated", 8) or 8),
        photometric_interpretation=str(head.get("PhotometricInterpretation", "")),
        keyword=keyword,
        vr=vr or ("OB" if int(head.get("BitsAllocated", 8) or 8) <= 8 else "OW"),
        start=start,
        length=length,
        header=head,
    )


def check_frames(info: PixelInfo, numbers: Sequence[int]) -> None:
    """Frame numbers count from 1 (PS3.18 §8.3.3.1 frame list). Raises: ValueError."""
    for number in numbers:
        if not 1 <= number <= info.frames:
            raise ValueError(f"frame {number} does not exist (the instance has {info.frames})")


def stored_frames(
    path: str | os.PathLike[str], info: PixelInfo, numbers: Sequence[int]
) -> Iterator[bytes]:
    """The frames ``numbers`` as stored: native bytes, or the encapsulated frame's fragments
    joined (PS3.5 §A.4). Raises: ValueError (no such frame), CannotTranscode."""
    check_frames(info, numbers)
    with open(path, "rb") as handle:
        for number in numbers:
            if info.encapsulated:
                handle.seek(info.start)
                try:
                    yield get_frame(handle, number - 1, number_of_frames=info.frames)
                except (ValueError, IndexError) as exc:
                    raise CannotTranscode(f"frame {number} cannot be located ({exc})") from exc
            else:
                yield _native_frame(handle, info, number)


def _native_frame(handle: BinaryIO, info: PixelInfo, number: int) -> bytes:
    size = info.frame_length
    handle.seek(info.start + (number - 1) * size)
    data = handle.read(size)
    if len(data) != size:
        raise CannotTranscode(f"frame {number} is shorter than its description says")
    return data


def decoded_frame(
    path: str | os.PathLike[str], info: PixelInfo, number: int
) -> np.ndarray[Any, Any]:
    """Frame ``number`` decoded to an array (rows, columns[, samples]); colour comes as RGB
    when the decoder converts YBR (pydicom's default). Raises: ValueError, CannotTranscode."""
    check_frames(info, [number])
    syntax = info.transfer_syntax_uid
    problem = transcode.decode_problem(syntax) if info.encapsulated else None
    if problem is not None:
        raise CannotTranscode(problem)
    options: dict[str, Any] = as_pixel_options(info.header)
    options.update(transfer_syntax_uid=UID(syntax), pixel_keyword=info.keyword, pixel_vr=info.vr)
    if not info.encapsulated:
        options["transfer_syntax_uid"] = UID(transcode.OUTPUTS[0])  # native: same bytes
    try:
        with open(path, "rb") as handle:
            handle.seek(info.start)
            array, _properties = get_decoder(options["transfer_syntax_uid"]).as_array(
                handle, index=number - 1, **options
            )
    except CannotTranscode:
        raise
    except Exception as exc:  # decoders raise many kinds
        raise CannotTranscode(
            f"frame {number} in {transcode.name(syntax)} could not be decoded ({exc})"
        ) from exc
    return array


def native_bytes(array: np.ndarray[Any, Any]) -> bytes:
    """A decoded frame as little-endian native bytes (PS3.18 octet-stream bulk data)."""
    return transcode._little_endian(array)
