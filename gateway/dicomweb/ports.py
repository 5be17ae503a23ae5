"""What the DICOMweb room needs of the imaging source, as plain data and callables.

``gateway.dicomweb`` never imports the imaging room (``tests/unit/test_house.py``): the assembly
(``gateway/app.py``) builds one :class:`Backend` from the imaging source's public pieces (its
index, store, ingest, ``transcode`` and ``frames``) and translates their exceptions into the two
of this module. A test can build a Backend from anything that keeps the same promises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class Rejected(Exception):
    """An instance was not stored; ``status`` is the DICOM status (PS3.4 Table B.2-1) that
    STOW-RS reports as Failure Reason (0008,1197)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ConversionError(Exception):
    """An instance or frame cannot be given in the form asked for; ``str()`` says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredInstance:
    """One instance the imaging source holds (a row of its index, with the absolute path)."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    path: Path
    size: int
    received_at: float
    patient_id: str | None = None


class PixelData(Protocol):
    """Where an instance's pixel data are (``gateway.imaging.frames.PixelInfo``)."""

    transfer_syntax_uid: str
    frames: int
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    photometric_interpretation: str

    @property
    def encapsulated(self) -> bool: ...

    @property
    def header(self) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Frames:
    """Frame access (``gateway.imaging.frames``); every callable raises ConversionError or
    ValueError (no such frame)."""

    info: Callable[[Path], PixelData | None]
    stored: Callable[[Path, PixelData, Sequence[int]], Iterator[bytes]]
    decoded: Callable[[Path, PixelData, int], Any]  # a numpy array
    native_bytes: Callable[[Any], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backend:
    """The imaging source as DICOMweb sees it.

    - ``instance(uid)``, ``instances(uids)``, ``study(uid)``: index look-ups (None / missing /
      empty when unknown; ``study`` in series then instance order);
    - ``changed_since(t, limit)``: instances received or moved after ``t``, oldest first;
    - ``removed_since(t, limit)``: ``(SOP Instance UID, when)`` of instances taken away after
      ``t`` (rejected, IHE RAD IOCM), oldest first;
    - ``store(path)``: ingest a received Part 10 file as a C-STORE would (validation, atomic
      move into place, index, study idle timer), raises Rejected;
    - ``spool_dir``: where request parts are received (the store's file system);
    - ``plan(stored, accepted)``: the syntax to send in, raises ConversionError;
    - ``convert(source, target, syntax)``: write the file in ``syntax``, raises ConversionError.
    """

    instance: Callable[[str], StoredInstance | None]
    instances: Callable[[Sequence[str]], dict[str, StoredInstance]]
    study: Callable[[str], list[StoredInstance]]
    changed_since: Callable[[float, int], list[StoredInstance]]
    store: Callable[[Path], StoredInstance]
    spool_dir: Path
    plan: Callable[[str, Sequence[str]], str]
    convert: Callable[[Path, Path, str], None]
    frames: Frames
    removed_since: Callable[[float, int], list[tuple[str, float]]] = lambda _t, _n: []
