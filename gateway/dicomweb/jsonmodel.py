"""DICOM JSON (PS3.18 Annex F) of stored instances, with bulk data as ``BulkDataURI``.

The file is read with large values deferred (pydicom's ``defer_size``): a 2 GB Pixel Data element
is never loaded. Before conversion, every binary element (VR OB, OD, OF, OL, OV, OW, UN) longer
than :data:`BULK_THRESHOLD` or of undefined length (encapsulated pixel data) is taken out of the
data set, wherever it is nested, and put back into the JSON as ``{"vr": ..., "BulkDataURI": ...}``
(PS3.18 §F.2.6); the URI names its place: ``.../bulkdata/7FE00010`` at the top level,
``.../bulkdata/00880200/1/7FE00010`` inside item 1 (counting from 1) of a sequence.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
BULK_THRESHOLD = 1024  # bytes: binary values above this are bulk data
DEFER = 64 * 1024  # values above this are not read at all
_UNDEFINED = 0xFFFFFFFF
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

BulkPath = tuple[int, ...]  # tag, item (1-based), tag, item, ..., tag


def read(path: str | os.PathLike[str]) -> Dataset:
    """The whole data set with large values deferred (never loaded unless asked for)."""
    return dcmread(path, defer_size=DEFER)


def _vr(ds: Dataset, tag: BaseTag) -> str:
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return "OW" if vr in ("OB or OW", "US or OW") else str(vr).split(" ")[0]


def _length(ds: Dataset, tag: BaseTag) -> int:
    raw = ds.get_item(tag)
    length = getattr(raw, "length", None)
    if isinstance(length, int):
        return length
    value = getattr(raw, "value", None)
    return len(value) if isinstance(value, bytes | bytearray) else 0


def take_bulk(ds: Dataset, prefix: BulkPath = ()) -> list[tuple[BulkPath, str]]:
    """Remove the bulk data elements of ``ds`` (recursively); return their paths and VRs."""
    found: list[tuple[BulkPath, str]] = []
    for tag in list(ds.keys()):
        if tag.group == 0x0002:
            continue
        vr = _vr(ds, tag)
        if vr in BULK_VRS:
            length = _length(ds, tag)
            pixels = not prefix and int(tag) in PIXEL_TAGS  # always by reference (§F.2.6)
            if pixels or length == _UNDEFINED or length > BULK_THRESHOLD:
                found.append(((*prefix, int(tag)), vr))
                del ds[tag]
        elif vr == "SQ":
            for number, item in enumerate(ds[tag].value or [], start=1):
                found.extend(take_bulk(item, (*prefix, int(tag), number)))
    return found


def path_text(path: BulkPath) -> str:
    """``00880200/1/7FE00010``: tags as 8 hex digits, item numbers as decimals."""
    return "/".join(f"{p:08X}" if i % 2 == 0 else str(p) for i, p in enumerate(path))


def parse_path(text: str) -> BulkPath:
    """The inverse of :func:`path_text`. Raises: ValueError."""
    parts = [p for p in text.split("/") if p]
    if not parts or len(parts) % 2 == 0:
        raise ValueError(f"bulk data path {text!r} must end with a tag")
    out: list[int] = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            if len(part) != 8:
                raise ValueError(f"{part!r} is not a tag of 8 hexadecimal digits")
            out.append(int(part, 16))
        else:
            number = int(part)
            if number < 1:
                raise ValueError("sequence items count from 1")
            out.append(number)
    return tuple(out)


def to_json(ds: Dataset, bulk_base: str) -> dict[str, Any]:
    """The PS3.18 Annex F object of ``ds`` (File Meta Information left out), bulk data as
    BulkDataURI below ``bulk_base`` (``.../instances/{uid}/bulkdata``)."""
    # keys(), not iteration: iterating converts (and so reads) deferred values
    for tag in [t for t in ds.keys() if t.group == 0x0002]:  # noqa: SIM118
        del ds[tag]
    bulk = take_bulk(ds)
    payload = ds.to_json_dict(bulk_data_threshold=1 << 62, suppress_invalid_tags=True)
    for path, vr in bulk:
        _place(payload, path, {"vr": vr, "BulkDataURI": f"{bulk_base}/{path_text(path)}"})
    return _sorted(payload)


def _place(payload: dict[str, Any], path: BulkPath, element: dict[str, Any]) -> None:
    target = payload
    for index in range(0, len(path) - 1, 2):
        sequence = target.setdefault(f"{path[index]:08X}", {"vr": "SQ", "Value": []})
        target = sequence["Value"][path[index + 1] - 1]
    target[f"{path[-1]:08X}"] = element


def _sorted(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(payload):
        element = payload[key]
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {**element, "Value": [_sorted(item) for item in element["Value"]]}
        out[key] = element
    return out


def bulk_element(ds: Dataset, path: BulkPath) -> tuple[str, bytes]:
    """The VR and value of the bulk data element at ``path`` (not for pixel data: that is
    streamed from the file). Raises: KeyError (no such element or item)."""
    target = ds
    for index in range(0, len(path) - 1, 2):
        items = target[Tag(path[index])].value or []
        if not 1 <= path[index + 1] <= len(items):
            raise KeyError(f"no item {path[index + 1]}")
        target = items[path[index + 1] - 1]
    tag = Tag(path[-1])
    if tag not in target:
        raise KeyError(f"no element {path[-1]:08X}")
    element = target[tag]
    value = element.value
    return str(element.VR), bytes(value) if value is not None else b""


def chunks(
    path: str | os.PathLike[str], start: int, length: int, size: int = 1 << 20
) -> Iterator[bytes]:
    """``length`` bytes of a file from ``start``, in pieces of ``size``."""
    with open(path, "rb") as handle:
        handle.seek(start)
        left = length
        while left > 0:
            data = handle.read(min(size, left))
            if not data:
                return
            left -= len(data)
            yield data
