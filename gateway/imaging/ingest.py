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
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from sqlalchemy.exc import SQLAlchemyError

from gateway.imaging.committer import GroupCommitter
from gateway.imaging.header import Header, clip, fast_header
from gateway.imaging.index import ImagingIndex, InstanceRecord
from gateway.imaging.journal import Entry as JournalEntry
from gateway.imaging.journal import Journal
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
HEAD_BYTES = 256 * 1024  # read for the fast header path of a data set received into a file


class InstanceRejected(ValueError):
    """An instance was refused; ``status`` is the C-STORE status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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
        patient_id=clip(dataset.get("PatientID"), 256),  # column sizes of schema.py
        modality=clip(dataset.get("Modality"), 16),
        series_number=_integer(dataset.get("SeriesNumber")),
        instance_number=_integer(dataset.get("InstanceNumber")),
    )


def _integer(value: object) -> int | None:
    """An IS value as a 32-bit integer (None when absent, malformed or out of range)."""
    try:
        number = int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or -(2**31) <= number < 2**31 else None


Placed = tuple[int, "Path | None"]  # (size, journal entry) of a file put in place


class Ingest:
    """Checks, stores and indexes instances (thread-safe: no state besides its collaborators)."""

    def __init__(self, store: InstanceStore, index: ImagingIndex) -> None:
        self.store = store
        self.index = index
        self.rows = GroupCommitter(index)  # rows of concurrent C-STOREs share a commit
        self.journal: Journal | None = None
        # Called with every instance indexed (gateway.imaging.rejection: a Rejection Note is
        # applied as soon as it is stored); its exceptions fail a C-STORE not yet answered.
        self.after_index: Callable[[InstanceRecord], object] | None = None

    # -- the journal of C-STOREs answered before their rows were flushed (SQLite) -----------------
    def open_journal(self) -> None:
        """Start journaling C-STOREs (SQLite with fsync on: ``gateway.imaging.journal``), after
        re-indexing what a crash of the machine may have lost. Raises: OSError."""
        if self.journal is not None or not self.store.fsync:
            return
        if self.index.engine.dialect.name != "sqlite":
            return  # PostgreSQL commits are durable by themselves
        journal = Journal(
            self.store.tmp_dir / "journal", self.store.root, self.index.sync_log, self._recover
        )
        journal.open()
        self.journal = journal

    def close_journal(self) -> None:
        """Flush the log a last time and remove this process's journal."""
        journal, self.journal = self.journal, None
        if journal is not None:
            journal.close()

    def _recover(self, entry: JournalEntry) -> None:
        """Index again an answered instance whose row a crash may have lost; remove the file of
        one that was never answered (its data did not all reach the disk)."""
        final = entry.final
        if not (final.exists() and os.path.samefile(final, entry.path)):
            return  # replaced since, or never in place: the link's file is nobody's
        data = entry.path.read_bytes()
        relative = final.relative_to(self.store.root).as_posix()
        if len(data) != entry.size or zlib.crc32(data) != entry.crc:
            current = self.index.instance(final.stem)
            if current is None or current.path != relative:
                log.warning("removed %s: never answered, its data did not reach the disk", final)
                final.unlink()
            return
        current = self.index.instance(final.stem)
        if current is not None and current.path == relative and current.size == entry.size:
            return  # its row was flushed
        try:
            header = header_of(read_header(data))
        except InstanceRejected as exc:  # cannot be: it was checked before it was written
            log.error("journaled instance %s unreadable: %s", final, exc)
            return
        self.index.record_instances([_record(header, relative, entry.size)], durable=True)
        log.info("re-indexed instance %s from the imaging journal", header.sop_instance_uid)

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
        return self._keep(header, lambda relative: (self.store.write(relative, (data,)), None))

    def store_received(
        self,
        path: Path,
        *,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
        dataset_offset: int | None = None,
        transfer_syntax_uid: str | None = None,
    ) -> InstanceRecord:
        """Store a C-STORE data set received into a Part 10 file by moving that file into place.

        ``path`` is on the store's file system (the receiving process's folder in
        ``.tmp/incoming``); on success it is gone (renamed, never copied), on refusal it is left
        to its owner. Request UIDs as in :meth:`store_encoded`; ``dataset_offset`` (where the
        data set starts, after the File Meta) and ``transfer_syntax_uid`` let the header be read
        by the fast path.
        Standard: PS3.4 §B.2.3. Raises: InstanceRejected.
        """
        header = None
        if dataset_offset is not None and transfer_syntax_uid:
            with open(path, "rb") as handle:
                handle.seek(dataset_offset)
                head = handle.read(HEAD_BYTES)
            complete = dataset_offset + len(head) >= path.stat().st_size
            header = fast_header(head, transfer_syntax_uid, complete=complete)
        if header is None:
            header = header_of(read_header(path))
        _check_request(header, sop_class_uid, sop_instance_uid)
        return self._keep(header, lambda relative: (self.store.adopt(relative, path), None))

    def store_received_parts(
        self,
        meta: bytes,
        data: Sequence[bytes],
        *,
        transfer_syntax_uid: str,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> InstanceRecord:
        """:meth:`receive_parts`, its row indexed before this returns."""
        admitted = self.receive_parts(
            meta,
            data,
            transfer_syntax_uid=transfer_syntax_uid,
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
        )
        admitted.index(answered=False)
        return admitted.record

    def receive_parts(
        self,
        meta: bytes,
        data: Sequence[bytes],
        *,
        transfer_syntax_uid: str,
        sop_class_uid: str | None = None,
        sop_instance_uid: str | None = None,
    ) -> Admitted:
        """Store a C-STORE data set received into memory: ``meta`` (preamble and the File Meta
        Information the SCP wrote) and the data set's fragments as they came, written in one
        system call. Request UIDs as in :meth:`store_encoded`.

        When this returns the instance is durable: its file is on the disk, and its index row
        too, or (a new instance, SQLite) its journal entry, the row then being committed by
        :meth:`Admitted.index` (``gateway.imaging.journal``).
        Standard: PS3.4 §B.2.3, PS3.10 §7.1. Raises: InstanceRejected.
        """
        whole = data[0] if len(data) == 1 else b"".join(data)
        header = fast_header(whole, transfer_syntax_uid, complete=True)
        if header is None:
            header = header_of(read_header(meta + whole))
        _check_request(header, sop_class_uid, sop_instance_uid)

        def place(relative: str) -> Placed:
            journal = self.journal
            if journal is not None:  # a new instance: created in place, journaled (one flush)
                crc = zlib.crc32(whole, zlib.crc32(meta))
                done = self.store.write_journaled(relative, (meta, whole), journal, crc)
                if done is not None:
                    return done
            return self.store.write_parts(relative, (meta, whole)), None

        record, entry = self._place(header, place)
        if entry is None:
            self._index(record, None, answered=False)
            return Admitted(record, None)
        return Admitted(record, partial(self._index, record, entry))

    def store_file(self, path: str | os.PathLike[str]) -> InstanceRecord:
        """Store a Part 10 file from disk byte for byte (folder import).

        Raises: InstanceRejected (not DICOM, missing UIDs, unreadable).
        """
        header = header_of(read_header(path))
        with open(path, "rb") as source:
            return self._keep(
                header, lambda relative: (self.store.write(relative, _chunks(source)), None)
            )

    def _keep(self, header: Header, place: Callable[[str], Placed]) -> InstanceRecord:
        """Put the file in place (``place(relative) -> (size, journal entry)``), then index it;
        the row is durable (or journaled) when this returns."""
        record, entry = self._place(header, place)
        self._index(record, entry, answered=False)
        return record

    def _place(
        self, header: Header, place: Callable[[str], Placed]
    ) -> tuple[InstanceRecord, Path | None]:
        relative = self.store.relative_path(
            header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid
        )
        try:
            size, entry = place(relative)
        except OSError as exc:
            log.error("cannot store instance %s: %s", header.sop_instance_uid, exc)
            raise InstanceRejected(STATUS_OUT_OF_RESOURCES, f"cannot store: {exc}") from exc
        return _record(header, relative, size), entry

    def _index(self, record: InstanceRecord, entry: Path | None, *, answered: bool) -> None:
        """Commit the row of a placed file. A journaled one (``entry``) is committed without a
        flush; if that fails once the C-STORE was answered, the journal indexes it later.
        Raises: InstanceRejected (0xA701) when not ``answered``."""
        journal = self.journal if entry is not None else None
        try:  # no flush for a journaled row, nor when the store does not flush (tests, bench)
            old = self.rows.record(record, durable=entry is None and self.store.fsync)
        except SQLAlchemyError as exc:
            log.error("cannot index instance %s: %s", record.sop_instance_uid, exc)
            if journal is not None and entry is not None:
                if answered:
                    journal.retry(entry)  # answered: it is on the disk, it will be indexed
                    return
                journal.abandon(entry)
            raise InstanceRejected(STATUS_INDEX_UNAVAILABLE, "cannot index the instance") from exc
        if journal is not None and entry is not None:
            journal.committed(entry)
        if old is not None and old.path != record.path:
            self.store.remove(old.path)  # the instance moved to another study or series
        if self.after_index is not None:
            self._after_index(record, answered=answered)

    def _after_index(self, record: InstanceRecord, *, answered: bool) -> None:
        assert self.after_index is not None
        try:
            self.after_index(record)
        except Exception as exc:
            log.exception("instance %s: processing after indexing failed", record.sop_instance_uid)
            if not answered:  # the peer sends it again: applying it again is harmless
                raise InstanceRejected(STATUS_INDEX_UNAVAILABLE, f"not processed: {exc}") from exc


@dataclass(slots=True)
class Admitted:
    """An instance stored durably; its index row committed, or to commit with :meth:`index`."""

    record: InstanceRecord
    _commit: Callable[..., None] | None

    def index(self, *, answered: bool = True) -> None:
        """Commit the row if still to do (once). ``answered``: the C-STORE-RSP is sent, so a
        failure is left to the journal instead of raised. Raises: InstanceRejected."""
        commit, self._commit = self._commit, None
        if commit is not None:
            commit(answered=answered)


def _record(header: Header, relative: str, size: int) -> InstanceRecord:
    return InstanceRecord(
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


def _check_request(header: Header, sop_class_uid: str | None, sop_instance_uid: str | None) -> None:
    """The data set must be the instance the C-STORE request names (PS3.4 §B.2.3)."""
    if sop_class_uid and header.sop_class_uid != sop_class_uid:
        raise InstanceRejected(
            STATUS_SOP_CLASS_MISMATCH,
            f"SOP Class UID differs from the request's: {header.sop_class_uid}, not "
            f"{sop_class_uid}",
        )
    if sop_instance_uid and header.sop_instance_uid != sop_instance_uid:
        raise InstanceRejected(
            STATUS_INSTANCE_MISMATCH,
            f"SOP Instance UID differs from the request's: {header.sop_instance_uid}, not "
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
