"""A C-STORE data set on its way in: held in memory up to a bound, else streamed to a file, then
handed to :class:`gateway.imaging.ingest.Ingest` once its last fragment has arrived.

The stored file is the data set exactly as the peer encoded it, behind a File Meta Information
this SCP writes from the C-STORE request and the presentation context (a C-STORE carries no File
Meta, PS3.7 §9.3.1). A data set up to ``memory_limit`` bytes (most images) is kept as its
fragments and written in one system call where it belongs; a bigger one goes, fragment by
fragment, to a file in this process's own folder of the store's ``.tmp/incoming`` (``<owner>``,
on the store's file system), which is renamed into place, never copied. So memory per
association stays bounded whatever the size of the instance. A transfer cut off midway leaves
nothing behind: its file is removed, and what a crash of the process left goes with its folder
(``gateway.owners.StagingFolder``: removed by the next start of a process once this one is gone,
never while it lives, so processes sharing the storage folder leave each other's files alone).

Standard: DICOM PS3.7 §9.3.1 (C-STORE), PS3.8 Annex E (P-DATA fragments), PS3.10 §7.1 (File
Meta Information), PS3.4 Table B.2-1 (statuses).
"""

from __future__ import annotations

import logging
import os
import secrets
import struct
import time
from collections.abc import Callable
from pathlib import Path

from gateway import __version__
from gateway.imaging.index import InstanceRecord
from gateway.imaging.ingest import (
    STATUS_OUT_OF_RESOURCES,
    STATUS_SUCCESS,
    Admitted,
    Ingest,
    InstanceRejected,
)

log = logging.getLogger("gateway.imaging")

# This implementation's UID: 2.25 + a name-based UUID (PS3.5 §B.2), fixed once and for all.
IMPLEMENTATION_CLASS_UID = "2.25.46515241360016450253727312518294280276"
IMPLEMENTATION_VERSION_NAME = f"XDSIGW_{__version__}"[:16]
MEMORY_LIMIT = 4 * 1024 * 1024
STALE_SECONDS = 3600.0  # an incoming file untouched this long belongs to no transfer in progress
PREAMBLE = bytes(128) + b"DICM"


def _meta_element(group_element: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
    if len(value) % 2:
        value += pad
    tag = struct.pack("<HH", 0x0002, group_element)
    if vr == b"OB":
        return tag + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return tag + vr + struct.pack("<H", len(value)) + value


def file_meta(
    *, sop_class_uid: str, sop_instance_uid: str, transfer_syntax_uid: str, source_ae: str
) -> bytes:
    """Preamble, prefix and File Meta Information (Explicit VR Little Endian, PS3.10 §7.1) for a
    received data set; Source Application Entity Title is the sender, as dcmtk writes it."""
    elements = [
        _meta_element(0x0001, b"OB", b"\x00\x01", b"\0"),
        _meta_element(0x0002, b"UI", sop_class_uid.encode("ascii", "replace"), b"\0"),
        _meta_element(0x0003, b"UI", sop_instance_uid.encode("ascii", "replace"), b"\0"),
        _meta_element(0x0010, b"UI", transfer_syntax_uid.encode("ascii"), b"\0"),
        _meta_element(0x0012, b"UI", IMPLEMENTATION_CLASS_UID.encode("ascii"), b"\0"),
        _meta_element(0x0013, b"SH", IMPLEMENTATION_VERSION_NAME.encode("ascii"), b" "),
    ]
    if source_ae:
        elements.append(_meta_element(0x0016, b"AE", source_ae.encode("ascii", "replace"), b" "))
    body = b"".join(elements)
    return PREAMBLE + _meta_element(0x0000, b"UL", struct.pack("<I", len(body)), b"") + body


class DataSetReceiver:
    """Receives one C-STORE data set (``association.Receiver``) and stores it when complete."""

    def __init__(
        self,
        ingest: Ingest,
        *,
        sop_class_uid: str,
        sop_instance_uid: str,
        transfer_syntax_uid: str,
        calling_ae: str,
        on_stored: Callable[[InstanceRecord], None],
        incoming_dir: Path,
        memory_limit: int = MEMORY_LIMIT,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        """``incoming_dir``: where a data set bigger than ``memory_limit`` is received, the
        receiving process's own folder on the store's file system (``StoreSCP.start``)."""
        self.ingest = ingest
        self.sop_class_uid = sop_class_uid
        self.sop_instance_uid = sop_instance_uid
        self.transfer_syntax_uid = transfer_syntax_uid
        self.calling_ae = calling_ae
        self.on_stored = on_stored
        self.on_refused = on_refused
        self.memory_limit = memory_limit
        self.incoming_dir = incoming_dir
        self.meta = file_meta(
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            transfer_syntax_uid=transfer_syntax_uid,
            source_ae=calling_ae,
        )
        self._parts: list[bytes] = []
        self._held = 0
        self._admitted: Admitted | None = None
        self._fd: int | None = None
        self._path: Path | None = None

    def write(self, fragment: memoryview) -> None:
        """Keep one fragment (copied: the view is the association's reused buffer)."""
        if self._fd is not None:
            _write_all(self._fd, fragment)
            return
        self._parts.append(bytes(fragment))
        self._held += len(fragment)
        if self._held > self.memory_limit:
            self._spill()

    def _spill(self) -> None:
        """Too big for memory: continue in a file of this process's incoming folder."""
        path = self.incoming_dir / f"c-store-{secrets.token_hex(12)}.dcm"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        self._fd = os.open(path, flags, 0o600)
        self._path = path
        _write_all(self._fd, memoryview(self.meta))
        for part in self._parts:
            _write_all(self._fd, memoryview(part))
        self._parts.clear()

    def finish(self) -> tuple[int, str | None]:
        """Store the data set durably; (status, error comment) for the C-STORE-RSP (PS3.4
        B.2.3). A journaled row is committed by :meth:`after_response`."""
        try:
            admitted = self._store()
        except InstanceRejected as exc:
            log.warning(
                "C-STORE from %s of %s refused (0x%04X): %s",
                self.calling_ae,
                self.sop_instance_uid,
                exc.status,
                exc,
            )
            if self.on_refused is not None:
                self.on_refused()
            return exc.status, str(exc)
        except Exception as exc:  # every peer gets an answer, even when this code is wrong
            log.exception("C-STORE from %s of %s failed", self.calling_ae, self.sop_instance_uid)
            return STATUS_OUT_OF_RESOURCES, f"internal error: {type(exc).__name__}"
        finally:
            self.discard()  # a refused data set's file (a stored one was renamed away)
        self._admitted = admitted
        return STATUS_SUCCESS, None

    def after_response(self) -> None:
        """The C-STORE-RSP is sent: commit a journaled row (its instance is durable already,
        see ``gateway.imaging.journal``), then tell the listener."""
        admitted, self._admitted = self._admitted, None
        if admitted is None:
            return
        admitted.index(answered=True)
        self.on_stored(admitted.record)

    def _store(self) -> Admitted:
        request = {
            "sop_class_uid": self.sop_class_uid or None,
            "sop_instance_uid": self.sop_instance_uid or None,
        }
        if self._fd is None:
            return self.ingest.receive_parts(
                self.meta, self._parts, transfer_syntax_uid=self.transfer_syntax_uid, **request
            )
        os.close(self._fd)
        self._fd = None
        assert self._path is not None
        record = self.ingest.store_received(
            self._path,
            dataset_offset=len(self.meta),
            transfer_syntax_uid=self.transfer_syntax_uid,
            **request,
        )
        return Admitted(record, None)

    def discard(self) -> None:
        """Forget the data set: close and remove its file, if any (idempotent)."""
        self._parts.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            path, self._path = self._path, None
            try:
                path.unlink()
                log.debug("removed the partial C-STORE data set %s", path.name)
            except FileNotFoundError:
                pass  # renamed into place


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def sweep(folder: Path, *, older_than: float = STALE_SECONDS) -> int:
    """Remove loose data sets a crash left in ``folder`` (the store's ``.tmp/incoming``, where
    versions before per-process folders received them); return how many.

    Only files untouched for ``older_than`` seconds go, and no folder: the per-process folders
    are their owners' (``gateway.owners``).
    """
    removed = 0
    limit = time.time() - older_than
    for entry in os.scandir(folder):
        try:
            if entry.is_file() and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        log.info("removed %d stale C-STORE data set(s) from %s", removed, folder)
    return removed
