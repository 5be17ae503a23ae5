"""Transfer syntaxes a consumer asks for in RAD-69 (``--transfer-syntax``).

RAD TF-3 §4.69.4.1.2: the TransferSyntaxUIDList names the syntaxes the consumer accepts, and the
source returns each instance in one of them (converting if it can, RAD TF-3 §4.69.4.2.3). A
consumer that only stores and forwards files accepts anything, so by default every syntax of the
DICOM registry that the gateway's source may hold is listed, native ones first: instances then
come back exactly as the modality sent them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import MappingProxyType

from pydicom.uid import UID

NATIVE = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian (PS3.5 §A.2)
    "1.2.840.10008.1.2",  # Implicit VR Little Endian (PS3.5 §A.1)
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian (PS3.5 §A.5)
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still found in archives)
)
COMPRESSED = (
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K (Lossless Only)
    "1.2.840.10008.1.2.4.202",  # HTJ2K with RPCL Options (Lossless Only)
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.101",  # MPEG2 Main Profile / High Level
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 High Profile / Level 4.1
    "1.2.840.10008.1.2.4.103",  # MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1
    "1.2.840.10008.1.2.4.104",  # MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video
    "1.2.840.10008.1.2.4.105",  # MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video
    "1.2.840.10008.1.2.4.106",  # MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2
    "1.2.840.10008.1.2.4.107",  # HEVC/H.265 Main Profile / Level 5.1
    "1.2.840.10008.1.2.4.108",  # HEVC/H.265 Main 10 Profile / Level 5.1
)
ALL = NATIVE + COMPRESSED
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
GROUPS = MappingProxyType({"all": ALL, "native": NATIVE, "compressed": COMPRESSED})


def parse_transfer_syntaxes(values: Iterable[str]) -> tuple[str, ...]:
    """Transfer syntax UIDs from option values: dotted UIDs, pydicom keywords
    (``ExplicitVRLittleEndian``), or the groups ``all``, ``native``, ``compressed``; values may
    be comma-separated. Order is kept, duplicates dropped. Raises: ValueError."""
    chosen: list[str] = []
    for value in values:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            if item.lower() in GROUPS:
                chosen.extend(GROUPS[item.lower()])
            else:
                chosen.append(_one(item))
    if not chosen:
        raise ValueError("no transfer syntax given")
    return tuple(dict.fromkeys(chosen))


def _one(item: str) -> str:
    if item[0].isdigit():
        if len(item) > 64 or not _UID.match(item):  # PS3.5 §9.1
            raise ValueError(f"{item!r} is not a UID")
        return item
    for candidate in ALL:
        if UID(candidate).keyword == item:
            return candidate
    raise ValueError(
        f"unknown transfer syntax {item!r} (a UID, a pydicom keyword, or all/native/compressed)"
    )
