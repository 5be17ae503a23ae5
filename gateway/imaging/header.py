"""The header of a received data set, read fast: element framing only, no Dataset built.

A C-STORE is checked and indexed from a handful of elements (SOP Class and Instance, Study and
Series Instance UIDs, Patient ID, Modality, Series and Instance Number). pydicom reads a typical
CT header in 0.2-0.5 ms, a third to a half of the time budget of one instance at dcmtk's pace;
this walk over the elements' tags and lengths, up to the Pixel Data, takes a few tens of
microseconds. It is a fast path, not a second parser to trust: it answers only when everything
it read is plain (Explicit or Implicit VR Little Endian, lengths that fit, sequences that close,
UIDs that pass the UID syntax, text it can decode exactly as pydicom would) and returns None
otherwise, and the caller then asks pydicom (``gateway.imaging.ingest.read_header``), which
decides, refusals included. Deflated and Big Endian data sets always go to pydicom.

Standard: DICOM PS3.5 §7.1 (data elements: explicit and implicit VR, the VRs with a 4-byte
length), §7.5 (sequences and items, undefined lengths and delimiters), §6.2.2 (UN of undefined
length holds Implicit VR Little Endian), §6.1 (character repertoires), §9.1 (UID syntax).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from gateway.imaging.storage import is_uid

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"

SPECIFIC_CHARACTER_SET = 0x00080005
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
MODALITY = 0x00080060
PATIENT_ID = 0x00100020
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
SERIES_NUMBER = 0x00200011
INSTANCE_NUMBER = 0x00200013
WANTED = frozenset(
    {
        SPECIFIC_CHARACTER_SET,
        SOP_CLASS_UID,
        SOP_INSTANCE_UID,
        MODALITY,
        PATIENT_ID,
        STUDY_INSTANCE_UID,
        SERIES_INSTANCE_UID,
        SERIES_NUMBER,
        INSTANCE_NUMBER,
    }
)
# Float Pixel Data, Double Float Pixel Data, Pixel Data: where pydicom's stop_before_pixels stops
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})

UNDEFINED = 0xFFFFFFFF
ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD
MAX_DEPTH = 16
_LONG_VRS = frozenset(  # the VRs with a reserved field and a 4-byte length (PS3.5 §7.1.2)
    b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split()
)
_SHORT_VRS = frozenset(  # the VRs with a 2-byte length
    b"AE AS AT CS DA DS DT FD FL IS LO LT PN SH SL SS ST TM UI UL US".split()
)
_VALUE_VRS = frozenset({b"UI", b"LO", b"SH", b"CS", b"IS", b"UN"})  # of the wanted elements
# The character sets whose decoding pydicom and Python agree on byte for byte (PS3.3 C.12.1.1.2)
_CODECS = {"": "latin_1", "ISO_IR 6": "latin_1", "ISO_IR 100": "latin_1", "ISO_IR 192": "utf_8"}
_INTEGER = re.compile(rb"^ *[+-]?[0-9]+ *$")

_TAG_LENGTH = struct.Struct("<HHI")  # implicit VR element header; also item headers
_EXPLICIT = struct.Struct("<HH2sH")  # explicit VR element header, 2-byte length
_LONG_LENGTH = struct.Struct("<I")


class _Unsure(Exception):
    """Something the fast path does not vouch for: let pydicom decide."""


def scan(data: bytes, transfer_syntax_uid: str, *, complete: bool) -> dict[int, bytes] | None:
    """Raw values of the wanted top-level elements of a data set, or None when unsure.

    ``data`` is the data set (no File Meta), or its beginning when ``complete`` is False; then
    the walk must reach the Pixel Data inside ``data`` to answer.
    """
    if transfer_syntax_uid in (DEFLATED, BIG_ENDIAN):
        return None
    explicit = transfer_syntax_uid != IMPLICIT_VR_LE
    try:
        return _top_level(data, explicit, complete)
    except (_Unsure, struct.error):
        return None


def _top_level(data: bytes, explicit: bool, complete: bool) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    pos, end = 0, len(data)
    while pos < end:
        tag, header, length, sequence = _element(data, pos, explicit)
        if tag in PIXEL_TAGS:
            return found
        if tag >> 16 == 0xFFFE:
            raise _Unsure  # an item or delimiter outside a sequence
        if length == UNDEFINED:
            pos = _sequence(data, pos + header, sequence, 1)
            continue
        if tag in WANTED:
            if tag in found or (explicit and data[pos + 4 : pos + 6] not in _VALUE_VRS):
                raise _Unsure  # the same element twice, or with a VR pydicom would read apart
            found[tag] = data[pos + header : pos + header + length]
        pos += header + length
    if pos != end or not complete:
        raise _Unsure  # ran off the end of what was read
    return found


def _element(data: bytes, pos: int, explicit: bool) -> tuple[int, int, int, bool]:
    """(tag, header size, value length, whether the items of an undefined-length value are
    Explicit VR). Raises _Unsure for what the fast path does not vouch for."""
    if explicit:
        group, element, vr, short = _EXPLICIT.unpack_from(data, pos)
        tag = group << 16 | element
        if vr in _SHORT_VRS:
            header, length = 8, short
        elif vr in _LONG_VRS:
            header, length = 12, _LONG_LENGTH.unpack_from(data, pos + 8)[0]
        else:
            raise _Unsure  # an unknown VR (or implicit VR data in an explicit syntax)
        if length == UNDEFINED and vr not in (b"SQ", b"UN") and tag not in PIXEL_TAGS:
            raise _Unsure  # (encapsulated Pixel Data may come inside an item: an icon image)
        # an undefined-length UN holds Implicit VR Little Endian items (PS3.5 §6.2.2)
        return tag, header, length, vr == b"SQ"
    # implicit VR: an undefined length can only be a sequence (or the Pixel Data, not walked)
    group, element, length = _TAG_LENGTH.unpack_from(data, pos)
    return group << 16 | element, 8, length, False


def _check_room(data: bytes, pos: int, length: int) -> None:
    if pos + length > len(data):
        raise _Unsure


def _sequence(data: bytes, pos: int, explicit: bool, depth: int) -> int:
    """Walk the items of an undefined-length sequence from ``pos``; return the position after
    its Sequence Delimitation Item (PS3.5 §7.5.2)."""
    if depth > MAX_DEPTH:
        raise _Unsure
    while True:
        tag_group, tag_element, length = _TAG_LENGTH.unpack_from(data, pos)
        tag = tag_group << 16 | tag_element
        pos += 8
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise _Unsure
        if length == UNDEFINED:
            pos = _item(data, pos, explicit, depth)
        else:
            _check_room(data, pos, length)
            pos += length


def _item(data: bytes, pos: int, explicit: bool, depth: int) -> int:
    """Walk the elements of an undefined-length item; return the position after its Item
    Delimitation Item (PS3.5 §7.5.2)."""
    while True:
        group, element = struct.unpack_from("<HH", data, pos)
        if group == 0xFFFE:
            if group << 16 | element != ITEM_END:
                raise _Unsure
            return pos + 8
        _tag, header, length, sequence = _element(data, pos, explicit)
        if length == UNDEFINED:
            pos = _sequence(data, pos + header, sequence, depth + 1)
        else:
            _check_room(data, pos + header, length)
            pos += header + length


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """What the index keeps of a data set's header."""

    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str | None
    modality: str | None
    series_number: int | None
    instance_number: int | None


def fast_header(data: bytes, transfer_syntax_uid: str, *, complete: bool) -> Header | None:
    """The header of a data set (or of its beginning, ``complete=False``) read by :func:`scan`,
    or None when the fast path cannot vouch for it: ask pydicom then
    (``gateway.imaging.ingest.read_header``)."""
    values = scan(data, transfer_syntax_uid, complete=complete)
    if values is None:
        return None
    uids = [
        uid(values.get(tag))
        for tag in (
            SOP_CLASS_UID,
            SOP_INSTANCE_UID,
            STUDY_INSTANCE_UID,
            SERIES_INSTANCE_UID,
        )
    ]
    try:
        patient = text(values.get(PATIENT_ID), values.get(SPECIFIC_CHARACTER_SET))
        modality = text(values.get(MODALITY), None)
        series_number = integer(values.get(SERIES_NUMBER))
        instance_number = integer(values.get(INSTANCE_NUMBER))
    except ValueError:  # UnicodeDecodeError included
        return None
    if None in uids or not modality.isascii():
        return None  # a refusal, or an odd value: pydicom's word counts
    sop_class, sop_instance, study, series = (str(value) for value in uids)
    return Header(
        sop_class_uid=sop_class,
        sop_instance_uid=sop_instance,
        study_instance_uid=study,
        series_instance_uid=series,
        transfer_syntax_uid=transfer_syntax_uid,
        patient_id=clip(patient, 256),
        modality=clip(modality, 16),
        series_number=series_number,
        instance_number=instance_number,
    )


def clip(value: object, limit: int) -> str | None:
    """A text value as the index keeps it: stripped, cut to ``limit`` (its column), None when
    empty."""
    stripped = str(value).strip() if value is not None else ""
    return stripped[:limit] or None


# -- values ---------------------------------------------------------------------------------------


def uid(raw: bytes | None) -> str | None:
    """A UI value as pydicom gives it (trailing NULs and spaces off), or None when absent or not
    a plain single UID."""
    if raw is None:
        return None
    value = raw.decode("ascii", "replace").rstrip("\0 ").strip()
    return value if is_uid(value) else None


def text(raw: bytes | None, charset: bytes | None) -> str:
    """A single-valued text value (LO, CS) decoded as pydicom would, trailing NULs and spaces
    off; "" when absent.

    Raises: ValueError (a character set or byte sequence the fast path leaves to pydicom, or
    several values).
    """
    if raw is None:
        return ""
    if b"\\" in raw:
        raise ValueError("multi-valued")
    name = (charset or b"").decode("ascii").strip(" \0")
    codec = _CODECS.get(name)
    if codec is None:
        raise ValueError(f"character set {name!r}")
    return raw.decode(codec).rstrip("\0 ")


def integer(raw: bytes | None) -> int | None:
    """An IS value as ``gateway.imaging.ingest`` reads it from pydicom: a plain integer in 32
    bits, else None. Raises: ValueError (a form pydicom might read otherwise)."""
    if raw is None or not raw.strip(b" \0"):
        return None
    value = raw.rstrip(b"\0")
    if not _INTEGER.match(value):
        raise ValueError("not a plain integer")
    number = int(value)
    return number if -(2**31) <= number < 2**31 else None
