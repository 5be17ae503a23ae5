"""A stored instance in another transfer syntax: the imaging source's one conversion module.

RAD-69 uses it (RAD TF-3 §4.69.4.2.3: "the Imaging Document Source shall encode the pixel data
using one of the DICOM transfer syntaxes included in the request, or return an error"), and so will
WADO-RS. The interface is small:

- :func:`choose`: which syntax to send an instance stored in ``stored`` in, given the syntaxes a
  peer accepts (its own, unchanged, when accepted), or :class:`CannotTranscode` saying why none;
- :func:`transcode`: write the stored file in that syntax to another file, or
  :class:`CannotTranscode` saying why it cannot be done.

What can be made: Explicit VR Little Endian, Implicit VR Little Endian and Deflated Explicit VR
Little Endian (PS3.5 §A.2, §A.1, §A.5), from those three and from every encapsulated syntax
pydicom has a decoder for here (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE: python-gdcm,
pylibjpeg-openjpeg, pylibjpeg-rle). Nothing is compressed, video is not decoded, and the retired
Explicit VR Big Endian is only sent as stored.

Bounded memory: the data set in front of the pixel data is read as a data set; the pixel data are
never held whole. Encapsulated frames are decoded one at a time, straight from the stored file, and
written to the target as they come (so a 2000-frame instance costs one decoded frame); native
pixel data are copied in chunks, unchanged (they are little endian in all three syntaxes).

What changes in the data set (lossless syntaxes round-trip pixel-identical; lossy ones yield the
pixel values the decoder gives):

- Photometric Interpretation: YBR_FULL / YBR_FULL_422 come out RGB (pydicom's colour conversion),
  the JPEG 2000 component transforms (YBR_ICT / YBR_RCT) RGB too, as PS3.5 §8.2.1 / §8.2.4 allow
  once the data are no longer JPEG / JPEG 2000; Planar Configuration is 0 (colour-by-pixel) for
  multi-sample data, which is what the decoder yields (PS3.3 C.7.6.3.1.3).
- Lossy Image Compression (0028,2110), Ratio (0028,2112) and Method (0028,2114) are kept: once
  "01" it is never reset (PS3.3 C.7.6.1.1.5). An instance in a JPEG process that is always lossy
  (Baseline, Extended: PS3.5 §A.4.1/§A.4.2) that does not say so gets "01", ISO_10918_1 and the
  measured ratio (C.7.6.1.1.5.2), so decoding does not hide the loss.
- The Extended Offset Table (7FE0,0001/0002) and Encapsulated Pixel Data Value Total Length
  (7FE0,0003) only describe encapsulated data and are dropped.
- The SOP Instance UID is kept: decoding changes the encoding, not the image. PS3.3 C.7.6.1.1.5
  has a lossy image "decompressed and transferred in uncompressed format" keep its history, and
  asks a new SOP Instance UID only of a (lossy) compressed version of an image.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomFileLike
from pydicom.filereader import read_dataset, read_file_meta_info
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
)

OUTPUTS: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
)
_ALWAYS_LOSSY_JPEG = frozenset({JPEGBaseline8Bit, JPEGExtended12Bit})
_PIXEL_TAGS = {
    0x7FE00010: "PixelData",
    0x7FE00008: "FloatPixelData",
    0x7FE00009: "DoubleFloatPixelData",
}
_ENCAPSULATED_ONLY = (0x7FE00001, 0x7FE00002, 0x7FE00003)  # extended offsets, total length
_ITEM, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE0DD
_CHUNK = 1024 * 1024


class CannotTranscode(Exception):
    """An instance cannot be given in the transfer syntax asked for; ``str()`` says why, in
    one plain sentence."""


@dataclass(frozen=True, slots=True)
class Plan:
    """How to send one instance: in ``syntax``, converted from ``stored`` when they differ."""

    stored: str
    syntax: str

    @property
    def convert(self) -> bool:
        return self.stored != self.syntax


def is_transfer_syntax(uid: str) -> bool:
    """True for a transfer syntax of the DICOM registry (PS3.6 Annex A) that pydicom knows."""
    try:
        return bool(UID(uid).is_transfer_syntax)
    except Exception:  # pydicom raises for non-UID strings in some versions
        return False


def name(syntax: str) -> str:
    """A transfer syntax's name and UID, for messages (``JPEG Lossless, ... (1.2.840...)``)."""
    try:
        known = UID(syntax).name
    except Exception:  # not a UID pydicom can name
        known = ""
    return f"{known} ({syntax})" if known and known != syntax else syntax


def choose(stored: str, accepted: Sequence[str]) -> Plan:
    """The syntax to send an instance stored in ``stored`` to a peer accepting ``accepted``.

    The stored syntax when accepted (the file goes out byte for byte), else the first accepted
    one of :data:`OUTPUTS` when the stored data can be decoded.
    Standard: RAD TF-3 §4.69.4.2.3. Raises: CannotTranscode.
    """
    if stored in accepted:
        return Plan(stored, stored)
    targets = [syntax for syntax in accepted if syntax in OUTPUTS]
    if not targets:
        outputs = ", ".join(UID(s).name for s in OUTPUTS[:-1]) + f" or {UID(OUTPUTS[-1]).name}"
        raise CannotTranscode(
            f"it is stored in {name(stored)} and the gateway converts only into {outputs}"
        )
    problem = decode_problem(stored)
    if problem is not None:
        raise CannotTranscode(problem)
    return Plan(stored, targets[0])


def decode_problem(stored: str) -> str | None:
    """Why pixel data stored in ``stored`` cannot be read here, or None when they can."""
    if stored in OUTPUTS:
        return None
    try:
        decoder = get_decoder(stored)
    except (NotImplementedError, ValueError):
        return f"it is stored in {name(stored)}, which the gateway cannot decode"
    if decoder.is_native:  # Explicit VR Big Endian (retired): sent only as stored
        return f"it is stored in {name(stored)}, which the gateway sends only as stored"
    if not decoder.is_available:
        return f"no decoder for {name(stored)} is installed (python-gdcm, pylibjpeg plugins)"
    return None


def transcode(source: str | os.PathLike[str], target: str | os.PathLike[str], syntax: str) -> int:
    """Write the Part 10 file ``source`` to ``target`` in ``syntax``; return the new size.

    ``target`` is left incomplete on failure (the caller owns and removes it).
    Standard: PS3.10 §7.1 (File Meta Information names the new syntax), PS3.5 §A.1/A.2/A.5.
    Raises: CannotTranscode.
    """
    if syntax not in OUTPUTS:
        raise CannotTranscode(f"the gateway does not write {name(syntax)}")
    try:
        stored = str(read_file_meta_info(source).TransferSyntaxUID)
    except (InvalidDicomError, OSError, AttributeError, ValueError) as exc:
        raise CannotTranscode(f"the stored file cannot be read ({exc})") from exc
    if stored == syntax:
        shutil.copyfile(source, target)
        return os.path.getsize(target)
    problem = decode_problem(stored)
    if problem is not None:
        raise CannotTranscode(problem)
    try:
        with open(source, "rb") as handle, open(target, "wb") as out:
            parts = _read(handle, stored)
            _write(out, parts, syntax)
    except CannotTranscode:
        raise
    except Exception as exc:  # decoders raise many kinds (RuntimeError, ValueError, gdcm's ...)
        raise CannotTranscode(
            f"its pixel data in {name(stored)} could not be decoded ({exc})"
        ) from exc
    return os.path.getsize(target)


# -- reading ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parts:
    """A stored file taken apart: data set before the pixel data, the pixel data as a stream of
    native little-endian bytes, and the data set after it."""

    head: Dataset
    meta: FileMetaDataset
    keyword: str | None  # PixelData, FloatPixelData ... or None (no pixel data)
    vr: str
    pixels: Iterator[bytes]
    length: int  # bytes of native pixel data (without padding)
    tail: Dataset


def _read(handle: BinaryIO, stored: str) -> _Parts:
    if stored == DeflatedExplicitVRLittleEndian:
        return _read_inflated(handle)  # pydicom inflates the whole data set in memory anyway
    head = dcmread(handle, stop_before_pixels=True)
    implicit = stored == ImplicitVRLittleEndian
    found = _pixel_element(handle, implicit)
    if found is None:
        return _Parts(head, head.file_meta, None, "", iter(()), 0, Dataset())
    keyword, vr, start, length = found
    end = _value_end(handle, start, length)
    handle.seek(end)
    tail = read_dataset(handle, is_implicit_VR=implicit, is_little_endian=True)
    if stored in OUTPUTS:  # native: the same little-endian bytes, copied
        vr = vr or _native_vr(head, keyword)
        return _Parts(
            head, head.file_meta, keyword, vr, _copied(handle, start, length), length, tail
        )
    native = _frame_length(head) * _frame_count(head)
    ratio = _lossy_ratio(head, stored, native, end - start)
    if ratio is not None:
        _mark_lossy(head, ratio)
    frames = _frames(handle, start, head, stored, keyword, vr)
    first = next(frames, None)  # decoded before the data set is written: it describes the pixels
    pixels = itertools.chain([] if first is None else [first], frames)
    vr = "OB" if int(head.BitsAllocated) <= 8 else "OW"
    return _Parts(head, head.file_meta, keyword, vr, pixels, native, tail)


def _pixel_element(handle: BinaryIO, implicit: bool) -> tuple[str, str, int, int] | None:
    """The pixel data element the file is positioned at: keyword, VR (explicit only), where its
    value starts and its length; None at the end of the file."""
    header = handle.read(8)
    if len(header) < 8:
        return None
    group, element, length = struct.unpack("<HHL", header)
    keyword = _PIXEL_TAGS.get(group << 16 | element)
    if keyword is None:
        raise CannotTranscode(f"unexpected element ({group:04X},{element:04X}) at the pixel data")
    vr = ""
    if not implicit:  # OB/OW/OF/OD: VR, 2 reserved bytes, then a 4-byte length (PS3.5 §7.1.2)
        vr = header[4:6].decode("ascii")
        (length,) = struct.unpack("<L", handle.read(4))
    return keyword, vr, handle.tell(), length


def _read_inflated(handle: BinaryIO) -> _Parts:
    ds = dcmread(handle)
    keyword = next((k for k in _PIXEL_TAGS.values() if k in ds), None)
    tail = Dataset()
    for elem in list(ds):
        if elem.tag > 0x7FE00010:
            tail.add(elem)
            del ds[elem.tag]
    if keyword is None:
        return _Parts(ds, ds.file_meta, None, "", iter(()), 0, tail)
    value = bytes(ds[keyword].value)
    vr = str(ds[keyword].VR)
    del ds[keyword]
    return _Parts(ds, ds.file_meta, keyword, vr, iter((value,)), len(value), tail)


def _value_end(handle: BinaryIO, start: int, length: int) -> int:
    """Where the pixel data value ends: after its length, or after the items of encapsulated
    data and their Sequence Delimitation Item (PS3.5 §A.4)."""
    if length != 0xFFFFFFFF:
        return start + length
    handle.seek(start)
    while True:
        header = handle.read(8)
        if len(header) < 8:
            raise CannotTranscode("the encapsulated pixel data end before their delimiter")
        group, element, item_length = struct.unpack("<HHL", header)
        tag = group << 16 | element
        if tag == _SEQUENCE_END:
            return handle.tell()
        if tag != _ITEM:
            raise CannotTranscode(f"unexpected ({group:04X},{element:04X}) in encapsulated data")
        handle.seek(item_length, os.SEEK_CUR)


def _copied(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    position, left = start, length
    while left > 0:
        handle.seek(position)
        chunk = handle.read(min(_CHUNK, left))
        if not chunk:
            raise CannotTranscode("the stored pixel data are shorter than their length says")
        position += len(chunk)
        left -= len(chunk)
        yield chunk


def _frames(
    handle: BinaryIO, start: int, head: Dataset, stored: str, keyword: str, vr: str
) -> Iterator[bytes]:
    """Decode one frame at a time from the file; update ``head``'s pixel description from what
    the decoder reports (Photometric Interpretation, Planar Configuration)."""
    options: dict[str, Any] = as_pixel_options(head)
    options.update(transfer_syntax_uid=UID(stored), pixel_keyword=keyword, pixel_vr=vr)
    decoder = get_decoder(stored)
    expected = _frame_length(head)
    handle.seek(start)
    for array, properties in decoder.iter_array(handle, **options):
        _describe(head, properties)
        data = _little_endian(array)
        if len(data) != expected:
            raise CannotTranscode(f"a decoded frame has {len(data)} bytes, not {expected}")
        yield data


def _little_endian(array: np.ndarray[Any, Any]) -> bytes:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little).tobytes()


def _describe(head: Dataset, properties: dict[str, Any]) -> None:
    head.PhotometricInterpretation = properties["photometric_interpretation"]
    if int(properties.get("samples_per_pixel", 1)) > 1:
        head.PlanarConfiguration = int(properties.get("planar_configuration", 0))


def _frame_count(head: Dataset) -> int:
    return int(head.get("NumberOfFrames", 1) or 1)


def _frame_length(head: Dataset) -> int:
    bits = int(head.BitsAllocated)
    if bits % 8:
        raise CannotTranscode(f"Bits Allocated {bits} is not converted (only whole bytes)")
    return int(head.Rows) * int(head.Columns) * int(head.SamplesPerPixel) * bits // 8


def _native_vr(head: Dataset, keyword: str) -> str:
    if keyword == "FloatPixelData":
        return "OF"
    if keyword == "DoubleFloatPixelData":
        return "OD"
    return "OB" if int(head.get("BitsAllocated", 16)) <= 8 else "OW"


def _lossy_ratio(head: Dataset, stored: str, native: int, encoded: int) -> float | None:
    """The measured ratio when an always-lossy JPEG instance does not say it is lossy."""
    if stored not in _ALWAYS_LOSSY_JPEG or str(head.get("LossyImageCompression", "")) == "01":
        return None
    return native / encoded if encoded > 0 else 1.0


def _mark_lossy(head: Dataset, ratio: float) -> None:
    """Lossy Image Compression "01" with its method and ratio (PS3.3 C.7.6.1.1.5)."""
    head.LossyImageCompression = "01"
    methods = list(head.get("LossyImageCompressionMethod", []) or [])
    ratios = list(head.get("LossyImageCompressionRatio", []) or [])
    head.LossyImageCompressionMethod = [*methods, "ISO_10918_1"]
    head.LossyImageCompressionRatio = [*ratios, f"{ratio:.4g}"[:16]]


# -- writing ------------------------------------------------------------------------------------


class _Deflater:
    """A write-only file object that deflates into ``out`` (PS3.5 §A.5: raw deflate, RFC 1951)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.position = 0

    def write(self, data: bytes) -> int:
        self.out.write(self.compressor.compress(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Only "where am I" (a deflate stream cannot go back): pydicom's writer never seeks."""
        if (offset, whence) not in ((0, os.SEEK_CUR), (self.position, os.SEEK_SET)):
            raise OSError("a deflated stream cannot seek")
        return self.position

    def finish(self) -> None:
        self.out.write(self.compressor.flush())


def _write(out: BinaryIO, parts: _Parts, syntax: str) -> None:
    implicit = syntax == ImplicitVRLittleEndian
    meta = FileMetaDataset(parts.meta)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # the writer of this file
    meta.pop("ImplementationVersionName", None)
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(DicomFileLike(out), meta, enforce_standard=True)
    sink: Any = _Deflater(out) if syntax == DeflatedExplicitVRLittleEndian else out
    body = DicomFileLike(sink)
    body.is_little_endian, body.is_implicit_VR = True, implicit
    head = parts.head
    for tag in _ENCAPSULATED_ONLY:
        head.pop(tag, None)
    write_dataset(body, _without_meta(head))
    if parts.keyword is not None:
        _write_pixels(sink, parts, implicit)
    write_dataset(body, parts.tail)
    if isinstance(sink, _Deflater):
        sink.finish()


def _write_pixels(sink: Any, parts: _Parts, implicit: bool) -> None:
    tag = next(t for t, k in _PIXEL_TAGS.items() if k == parts.keyword)
    padded = parts.length + parts.length % 2
    if padded >= 0xFFFFFFFF:
        raise CannotTranscode("the decoded pixel data exceed the 4 GB a DICOM element holds")
    group_element = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if implicit:
        sink.write(group_element + struct.pack("<L", padded))
    else:
        sink.write(group_element + parts.vr.encode("ascii") + b"\x00\x00")
        sink.write(struct.pack("<L", padded))
    written = 0
    for chunk in parts.pixels:
        sink.write(chunk)
        written += len(chunk)
    if written != parts.length:
        raise CannotTranscode(f"{written} bytes of pixel data came out, {parts.length} expected")
    if padded != parts.length:
        sink.write(b"\x00")


def _without_meta(ds: Dataset) -> Dataset:
    """The data set without group 0002 (a stored file's meta is in ``file_meta`` already)."""
    for elem in ds.group_dataset(0x0002):
        del ds[elem.tag]
    return ds
