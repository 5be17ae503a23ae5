"""Transfer syntax choice and conversion for RAD-69.

RAD TF-3 §4.69.4.2.3: the Imaging Document Source returns each instance in one of the transfer
syntaxes the request lists. An instance stored in a listed syntax goes out byte for byte; one
stored in a native (uncompressed) syntax is re-encoded into the first listed native syntax this
source can write (Implicit VR Little Endian, Explicit VR Little Endian, Deflated Explicit VR Little
Endian: PS3.5 §A.1, §A.2, §A.5); anything else (compressed pixel data, which would need a codec)
cannot be delivered and is reported per document.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from pydicom import dcmread, dcmwrite
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

CONVERTIBLE: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
)


def is_known_transfer_syntax(uid: str) -> bool:
    """True for a transfer syntax of the DICOM registry (PS3.6 Annex A) that pydicom knows."""
    try:
        return bool(UID(uid).is_transfer_syntax)
    except Exception:  # pydicom raises for non-UID strings in some versions
        return False


def choose(stored: str, requested: Sequence[str]) -> tuple[str, bool] | None:
    """Pick the transfer syntax to send an instance stored in ``stored``.

    Returns ``(syntax, convert)`` or None when no requested syntax is possible.
    """
    if stored in requested:
        return stored, False
    if stored not in CONVERTIBLE:
        return None
    for candidate in requested:
        if candidate in CONVERTIBLE:
            return candidate, True
    return None


def convert(source: str | os.PathLike[str], target: str | os.PathLike[str], syntax: str) -> int:
    """Re-encode a Part 10 file with native pixel data into ``syntax``; return the new size.

    The data set is decoded and written again with pydicom (no pixel decoding is needed for
    native data); the File Meta Information names the new transfer syntax (PS3.10 §7.1).
    """
    if syntax not in CONVERTIBLE:
        raise ValueError(f"cannot convert into transfer syntax {syntax}")
    dataset = dcmread(source)
    stored = str(dataset.file_meta.TransferSyntaxUID)
    if stored not in CONVERTIBLE:
        raise ValueError(f"cannot convert from transfer syntax {stored}")
    dataset.file_meta.TransferSyntaxUID = UID(syntax)
    dcmwrite(
        target,
        dataset,
        implicit_vr=syntax == ImplicitVRLittleEndian,
        little_endian=True,
        enforce_file_format=True,
    )
    return os.path.getsize(target)
