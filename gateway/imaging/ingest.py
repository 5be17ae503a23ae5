"""Taking in instances: check the header, keep the bytes exactly as received, index them.

The same path serves a C-STORE (the data set as the peer encoded it, behind the File Meta
Information the SCP writes, received into a file that is moved into place) and a folder import
(the Part 10 file byte for byte). Nothing is decoded and re-encoded, and no data set is held in
memory: only the header up to the Pixel Data is parsed, to check and index it.

A data set that cannot be parsed, lacks one of the UIDs an imaging manifest needs (SOP Class,
SOP Instance, Study Instance, Series Instance) or does not match its C-STORE request is refused
with the status of DICOM PS3.4 §B.2.3 / PS3.7 Annex C and never stored.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy.exc import SQLAlchemyError

from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.storage import InstanceStore, is_uid

log = logging.getLogger("gateway.imaging")

# DICOM PS3.4 Table B.2-1 (Storage Service Class statuses) and PS3.7 Annex C.
STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources (disk)
STATUS_INDEX_UNAVAILABLE = 0xA701  # Refused: Out of Resources (database)
STATUS_SOP_CLASS_MISMATCH = 0xA900  # Error: Data Set does not match SOP Class
STATUS_CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand (not a parseable data set)
STATUS_MISSING_UID = 0xC001  # Error: Cannot understand (a required UID is missing or invalid)
STATUS_INSTANCE_MISMATCH = 0xC002  # Error: Cannot understand (SOP Instance UID != request)

_REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


class InstanceRejected(ValueError):
    """An instance was refused; ``status`` is the C-STORE status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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


def read_header(source: bytes | BinaryIO | str | os.PathLike[str]) -> Dataset:
    """Parse a Part 10 file (bytes, open file or path) up to the Pixel Data.

    Raises: InstanceRejected(0xC000) when it is not DICOM or cannot be parsed.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return dcmread(stream, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise InstanceRejected(STATUS_CANNOT_UNDERSTAND, f"not a DICOM file: {exc}") from exc
    except Exception as exc:  # pydicom raises many kinds on garbled input
        raise InstanceRejected(STATUS_CANNOT_UNDERSTAND, f"unreadable data set: {exc}") from exc


def header_of(dataset: Dataset) -> Header:
    """Check the UIDs a manifest needs and summarise the header.

    Raises: InstanceRejected(0xC001) for a missing or malformed UID.
    """
    try:
        return _summarise(dataset)
    except InstanceRejected:
        raise
    except Exception as exc:  # a garbled element only fails when its value is read
        raise InstanceRejected(STATUS_CANNOT_UNDERSTAND, f"unreadable data set: {exc}") from exc


def _summarise(dataset: Dataset) -> Header:
    values = {}
    for keyword in _REQUIRED:
        value = str(dataset.get(keyword, "") or "").strip()
        if not is_uid(value):
            problem = "missing" if not value else f"not a valid UID ({value!r})"
            raise InstanceRejected(STATUS_MISSING_UID, f"{keyword} is {problem}")
        values[keyword] = value
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not is_uid(syntax):
        raise InstanceRejected(STATUS_CANNOT_UNDERSTAND, "no valid Transfer Syntax UID")
    return Header(
        sop_class_uid=values["SOPClassUID"],
        sop_instance_uid=values["SOPInstanceUID"],
        study_instance_uid=values["StudyInstanceUID"],
        series_instance_uid=values["SeriesInstanceUID"],
        transfer_syntax_uid=syntax,
        patient_id=_text(dataset.get("PatientID"), 256),  # column sizes of schema.py
        modality=_text(dataset.get("Modality"), 16),
        series_number=_integer(dataset.get("SeriesNumber")),
        instance_number=_integer(dataset.get("InstanceNumber")),
    )


def _text(value: object, limit: int) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text[:limit] or None


def _integer(value: object) -> int | None:
    """An IS value as a 32-bit integer (None when absent, malformed or out of range)."""
    try:
        number = int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or -(2**31) <= number < 2**31 else None


class Ingest:
    """Checks, stores and indexes instances (thread-safe: no state besides its collaborators)."""

    def __init__(self, store: InstanceStore, index: ImagingIndex) -> None:
        self.store = store
        self.index = index

    def store_encoded(
        self,
        data: bytes,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> InstanceRecord:
        """Store a Part 10 byte string (preamble, meta, data set as received).

        ``sop_class_uid``/``sop_instance_uid`` are the C-STORE request's Affected SOP Class and
        Instance UIDs, which the data set must carry (PS3.4 §B.2.3, 0xA900).
        Raises: InstanceRejected with the status to answer.
        """
        header = header_of(read_header(data))
        _check_request(header, sop_class_uid, sop_instance_uid)
        return self._keep(header, lambda relative: self.store.write(relative, iter((data,))))

    def store_received(
        self,
        path: Path,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> InstanceRecord:
        """Store a C-STORE data set received into a Part 10 file by moving that file into place.

        ``path`` is on the store's file system (``InstanceStore.incoming_dir``); on success it
        is gone (renamed, never copied), on refusal it is left to its owner. Request UIDs as in
        :meth:`store_encoded`. Standard: PS3.4 §B.2.3. Raises: InstanceRejected.
        """
        header = header_of(read_header(path))
        _check_request(header, sop_class_uid, sop_instance_uid)
        return self._keep(header, lambda relative: self.store.adopt(relative, path))

    def store_file(self, path: str | os.PathLike[str]) -> InstanceRecord:
        """Store a Part 10 file from disk byte for byte (folder import).

        Raises: InstanceRejected (not DICOM, missing UIDs, unreadable).
        """
        header = header_of(read_header(path))
        with open(path, "rb") as source:
            return self._keep(header, lambda relative: self.store.write(relative, _chunks(source)))

    def _keep(self, header: Header, place: Callable[[str], int]) -> InstanceRecord:
        """Put the file in place (``place(relative) -> size``), then index it."""
        relative = self.store.relative_path(
            header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
        try:
            size = place(relative)
        except OSError as exc:
            log.error("cannot store instance %s: %s", header.sop_instance_uid, exc)
            raise InstanceRejected(STATUS_OUT_OF_RESOURCES, f"cannot store: {exc}") from exc
        record = InstanceRecord(
            sop_instance_uid=header.sop_instance_uid,
            sop_class_uid=header.sop_class_uid,
            study_instance_uid=header.study_instance_uid,
            series_instance_uid=header.series_instance_uid,
            transfer_syntax_uid=header.transfer_syntax_uid,
            path=relative,
            size=size,
            patient_id=header.patient_id,
            modality=header.modality,
            series_number=header.series_number,
            instance_number=header.instance_number,
        )
        try:
            old = self.index.record_instance(record)
        except SQLAlchemyError as exc:
            log.error("cannot index instance %s: %s", header.sop_instance_uid, exc)
            raise InstanceRejected(STATUS_INDEX_UNAVAILABLE, "cannot index the instance") from exc
        if old is not None and old.path != relative:
            self.store.remove(old.path)  # the instance moved to another study or series
        return record


def _check_request(header: Header, sop_class_uid: str | None, sop_instance_uid: str | None) -> None:
    """The data set must be the instance the C-STORE request names (PS3.4 §B.2.3)."""
    if sop_class_uid and header.sop_class_uid != sop_class_uid:
        raise InstanceRejected(
            STATUS_SOP_CLASS_MISMATCH,
            f"SOP Class UID {header.sop_class_uid} differs from the request's {sop_class_uid}",
        )
    if sop_instance_uid and header.sop_instance_uid != sop_instance_uid:
        raise InstanceRejected(
            STATUS_INSTANCE_MISMATCH,
            f"SOP Instance UID {header.sop_instance_uid} differs from the request's "
            f"{sop_instance_uid}",
        )


def _chunks(source: BinaryIO, size: int = 1024 * 1024) -> Iterator[bytes]:
    while block := source.read(size):
        yield block


def dicom_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Every regular file below ``folder`` (sorted, hidden files and folders skipped)."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root) / name
