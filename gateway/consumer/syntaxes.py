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

from gateway.metadata import transfer_syntaxes

NATIVE = transfer_syntaxes.NATIVE
COMPRESSED = transfer_syntaxes.COMPRESSED
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
