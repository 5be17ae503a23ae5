"""Instance files on disk: one DICOM Part 10 file per SOP Instance, written atomically and durably.

Layout: ``<root>/<Study Instance UID>/<Series Instance UID>/<SOP Instance UID>.dcm``. UIDs are
checked against the DICOM UID syntax (PS3.5 §9.1: digits and dots, at most 64 characters) before
they become path components, so no peer-supplied value can leave the root.

A file is written to a temporary name in its final folder, flushed and ``fsync``-ed, renamed over
any earlier copy (``os.replace``: a reader sees the old or the new file, never a mix) and the
folder is ``fsync``-ed so the rename itself survives a crash (POSIX rename(2), fsync(2)). A file
already written elsewhere on the store's file system (a received C-STORE data set in
``.tmp/incoming``) is ``fsync``-ed and renamed into place the same way, never copied.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1024 * 1024
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
        self.incoming_dir = self.tmp_dir / "incoming"  # C-STORE data sets while they arrive
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


def _fsync_file(path: Path) -> None:
    # fsync(2) flushes the file's data whichever descriptor names it (the writer's is pynetdicom's).
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
