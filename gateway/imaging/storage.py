"""Instance files on disk: one DICOM Part 10 file per SOP Instance, written atomically and durably.

Layout: ``<root>/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm``. UIDs are
checked against the DICOM UID syntax (PS3.5 §9.1: digits and dots, at most 64 characters) before
they become path components, so no peer-supplied value can leave the root.

A file is written to a temporary name in its final folder, flushed and ``fsync``-ed, renamed over
any earlier copy (``os.replace``: a reader sees the old or the new file, never a mix) and the
folder is ``fsync``-ed so the rename itself survives a crash (POSIX rename(2), fsync(2)). A file
already written elsewhere on the store's file system (a received C-STORE data set in
``.tmp/incoming/<owner>``, the receiving process's own folder) is ``fsync``-ed and renamed into
place the same way, never copied. A C-STORE data set small enough to be held in memory is
written with one ``writev`` (:meth:`write_parts`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from gateway.imaging.journal import Journal

CHUNK = 1024 * 1024
IOV_MAX = 1024  # the smallest limit POSIX allows on writev's vector (Linux's)
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_uid(value: str | None) -> bool:
    """True for a syntactically valid DICOM UID (PS3.5 §9.1)."""
    return bool(value) and len(value or "") <= 64 and bool(_UID.match(value or ""))


class InstanceStore:
    """The folder holding every received instance."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp_dir = self.root / ".tmp"
        self.tmp_dir.mkdir(exist_ok=True)
        # C-STORE data sets while they arrive, in a folder per process (StoreSCP.start)
        self.incoming_dir = self.tmp_dir / "incoming"
        self.incoming_dir.mkdir(exist_ok=True)
        self.fsync = fsync

    def relative_path(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """Where an instance lives, relative to the root. Raises ValueError for a bad UID."""
        for name, uid in (("Study", study_uid), ("Series", series_uid), ("SOP", sop_uid)):
            if not is_uid(uid):
                raise ValueError(f"{name} Instance UID {uid!r} is not a valid DICOM UID")
        return f"{study_uid}/{series_uid}/{sop_uid}.dcm"

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file."""
        return self.root / relative

    def write(self, relative: str, chunks: Iterable[bytes]) -> int:
        """Write a file atomically and durably from byte chunks; return its size."""
        final = self.root / relative
        folder = final.parent
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{final.name}.{secrets.token_hex(6)}.part"
        size = 0
        try:
            with open(temporary, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                if self.fsync:
                    os.fsync(out.fileno())
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._sync_folders(folder, created)
        return size

    def write_parts(self, relative: str, parts: Sequence[bytes]) -> int:
        """Write a file held in memory atomically and durably, in one system call (``writev``);
        return its size. Same guarantees as :meth:`write`. Raises: OSError."""
        final = self.root / relative
        folder = final.parent
        created = not folder.is_dir()
        if created:
            folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{final.name}.{secrets.token_hex(6)}.part"
        size = sum(len(part) for part in parts)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            try:
                _write_all(fd, parts, size)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._sync_folders(folder, created)
        return size

    def write_journaled(
        self, relative: str, parts: Sequence[bytes], journal: Journal, crc: int
    ) -> tuple[int, Path] | None:
        """Create a new instance file with a pending link of ``journal`` beside it; (size,
        link), or None when the file exists already (then :meth:`write_parts` replaces it).

        The file is created under its final name (no rename: nothing reads a file before its
        index row exists) and linked before its data are written, so the two flushes it needs
        (``fsync`` of the file and of its folder) make the link durable too. The two run at
        once: both names exist before either starts, and neither depends on the other (a crash
        before both end leaves a link whose CRC-32 tells; the C-STORE was not answered).
        Raises: OSError (nothing left behind).
        """
        final = self.root / relative
        folder = final.parent
        created = not folder.is_dir()
        if created:
            folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        try:
            fd = os.open(final, flags, 0o644)
        except FileExistsError:
            return None
        size = sum(len(part) for part in parts)
        entry = journal.entry(final, crc, size)
        try:
            try:
                os.link(final, entry)
                _write_all(fd, parts, size)
                folders = _flusher().submit(self._sync_folders, folder, created)
                try:
                    os.fsync(fd)
                finally:
                    folders.result()
            finally:
                os.close(fd)
        except BaseException:
            final.unlink(missing_ok=True)
            journal.abandon(entry)
            raise
        return size, entry

    def adopt(self, relative: str, source: Path) -> int:
        """Move a finished file of ours into place atomically and durably; return its size.

        ``source`` should be on the store's file system (``incoming_dir``): then it is renamed,
        not copied. From another file system it is copied (atomically, like :meth:`write`) and
        left where it was. Raises OSError.
        """
        final = self.root / relative
        folder = final.parent
        created = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
        if self.fsync:
            _fsync_file(source)
        size = source.stat().st_size
        try:
            os.replace(source, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(source, "rb") as handle:  # another file system: no rename possible
                return self.copy_from(relative, handle)
        self._sync_folders(folder, created)
        return size

    def _sync_folders(self, folder: Path, created: bool) -> None:
        """Make a rename into ``folder`` (and the folder itself, when new) survive a crash."""
        if self.fsync:
            _fsync_dir(folder)
            if created:  # the new folders' own entries must reach the disk too
                _fsync_dir(folder.parent)
                _fsync_dir(folder.parent.parent)

    def write_bytes(self, relative: str, data: bytes) -> int:
        """Write ``data`` atomically and durably; return its size."""
        return self.write(relative, (data,))

    def copy_from(self, relative: str, source: BinaryIO) -> int:
        """Copy an open binary file into the store, in chunks; return the size."""
        return self.write(relative, iter(lambda: source.read(CHUNK), b""))

    def remove(self, relative: str) -> None:
        """Delete a stored file (no error when it is already gone)."""
        (self.root / relative).unlink(missing_ok=True)

    def temporary_file(self, suffix: str = ".dcm") -> Path:
        """A fresh path for a temporary file on the store's file system (caller removes it)."""
        return self.tmp_dir / f"{secrets.token_hex(12)}{suffix}"


_flushers: ThreadPoolExecutor | None = None
_flushers_lock = threading.Lock()


def _flusher() -> ThreadPoolExecutor:
    """Threads that flush folders while the calling thread flushes a file (GIL released)."""
    global _flushers
    with _flushers_lock:
        if _flushers is None:
            _flushers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="imaging-fsync")
        return _flushers


def _write_all(fd: int, parts: Sequence[bytes], size: int) -> None:
    """``writev`` the parts (one call unless the kernel writes less, or there are more parts
    than one call takes)."""
    pending = [memoryview(part) for part in parts if part]
    written = 0
    while pending:
        count = os.writev(fd, pending[:IOV_MAX])
        if count <= 0:
            raise OSError(errno.EIO, "writev wrote nothing")
        written += count
        while pending and count >= len(pending[0]):
            count -= len(pending[0])
            pending.pop(0)
        if pending and count:
            pending[0] = pending[0][count:]
    if written != size:
        raise OSError(errno.EIO, f"wrote {written} of {size} bytes")


def _fsync_file(path: Path) -> None:
    # fsync(2) flushes the file's data whichever descriptor names it (the receiver wrote it).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
