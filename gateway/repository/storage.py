"""Where the repository's bytes live: a small backend interface and the local-folder backend.

The transactions never touch files: they hand an :class:`~gateway.soap.message.Attachment` to
:meth:`DocumentStorage.store` under a *key* and get one back from
:meth:`DocumentStorage.attachment` to stream in an ITI-43 response. An object-store backend
(S3 and the like) implements the same six methods (its ``attachment`` returning an Attachment
whose ``chunks()`` streams from the store) and needs no change anywhere else.

Keys are **uniqueId-addressed**: ``storage_key(uniqueId)`` is the SHA-256 of the DocumentEntry
uniqueId in lower-case hex. Hashing (rather than using the uniqueId as a file name) keeps
characters such as ``^`` out of paths and spreads files evenly; addressing by uniqueId rather than
by content keeps one file per registered uniqueId, so "a file the registry does not list" has a
precise meaning and deleting one document never touches another that has the same bytes.

Local folder layout (``root`` is ``repository.storage_dir``, ``<data_dir>/repository`` by
default; several gateway processes and machines may share it, e.g. on NFS)::

    documents/ab/abcd...      one file per stored document (key = file name), 256 fan-out
                              folders made (and fsync'd) when the storage is opened
    staging/<owner>/          temporary files of one process's stores in progress, locked by
                              that process while it lives (``gateway.owners.StagingFolder``);
                              folders of processes that are gone are removed at start

Temporary files live below ``root`` so that they are on the documents' file system and a rename
puts them in place.

Durability: :meth:`LocalFolderStorage.store` is atomic and durable. Content goes to a temporary
file that is fsync'd and then renamed onto its final name; the directory is fsync'd after the
rename (as is every folder's parent when a folder is created) so the name survives a power cut.
A request's spooled MTOM part (an *owned* temporary on the same file system) is fsync'd and
renamed, never copied, so a 1 GB document is never read twice nor held in memory. Removing a
file is followed by an fsync of its directory too.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from gateway.owners import StagingFolder
from gateway.soap.message import Attachment

_KEY = re.compile(r"^[0-9a-f]{64}$")


def storage_key(unique_id: str) -> str:
    """The storage key of a DocumentEntry uniqueId: SHA-256 of its UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(unique_id.encode("utf-8")).hexdigest()


class DocumentStorage(Protocol):
    """What the repository needs from a place that keeps bytes."""

    def store(self, key: str, attachment: Attachment) -> None:
        """Put the attachment's content under ``key`` atomically and durably (replacing any)."""
        ...

    def attachment(
        self, key: str, *, content_type: str, content_id: str | None = None
    ) -> Attachment:
        """An attachment streaming the content under ``key`` (FileNotFoundError if absent)."""
        ...

    def size(self, key: str) -> int | None:
        """Size in bytes of the content under ``key``, or None when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the content under ``key`` durably; nothing happens if there is none."""
        ...

    def keys(self) -> Iterator[str]:
        """Every key that holds content (for the start-up sweep)."""
        ...

    def recover(self) -> None:
        """Remove what interrupted stores left behind (called once at start-up)."""
        ...


class LocalFolderStorage:
    """Documents as files below a folder, uniqueId-addressed, stored atomically and durably."""

    def __init__(self, root: str | os.PathLike[str], *, owner: str = "") -> None:
        self.root = Path(root)
        self.documents = self.root / "documents"
        self.staging_root = self.root / "staging"
        for folder in (self.root, self.documents, self.staging_root):
            _make_dir(folder)
        # A folder of this process's own (removing those of processes that are gone), or, for
        # a storage used without an owner, the staging folder itself.
        self._own = StagingFolder(self.staging_root, owner) if owner else None
        self.staging = self._own.path if self._own is not None else self.staging_root
        # Every fan-out folder exists before the first store, so a store only ever renames into
        # a folder whose own name is already durable.
        created = False
        for n in range(256):
            folder = self.documents / f"{n:02x}"
            if not folder.is_dir():
                folder.mkdir(mode=0o700, exist_ok=True)
                created = True
        if created:
            _fsync_dir(self.documents)

    # -- writing ------------------------------------------------------------------------------
    def store(self, key: str, attachment: Attachment) -> None:
        """Place the content at the key's path: fsync'd temporary file, rename, directory fsync.

        An owned spool file on the same file system is renamed (``Attachment.save_to``), after
        which the attachment refers to the stored file and no longer owns it.
        """
        final = self.path(key)
        source = attachment.path
        if source is not None and attachment.owned and self._same_device(source):
            _fsync_file(source)
            attachment.save_to(final)
        else:
            temporary = self.staging / f"{uuid.uuid4().hex}.tmp"
            try:
                with open(temporary, "xb") as out:
                    for chunk in attachment.chunks():
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, final)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        _fsync_dir(final.parent)

    def delete(self, key: str) -> None:
        """Unlink the key's file (if any) and fsync its directory."""
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def recover(self) -> None:
        """Remove temporaries of stores that never reached their rename: loose files in the
        staging folder (this storage's own without an owner, else left by versions before
        per-process folders) and those of this process's folder. Folders of other processes
        are removed by ``StagingFolder`` when their process is gone, never while it lives."""
        for folder in {self.staging_root, self.staging}:
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            _fsync_dir(folder)

    def close(self) -> None:
        """Remove this process's staging folder at a clean stop."""
        if self._own is not None:
            self._own.close()

    # -- reading ------------------------------------------------------------------------------
    def attachment(
        self, key: str, *, content_type: str, content_id: str | None = None
    ) -> Attachment:
        """A file-backed attachment (never owned: serving it never removes it)."""
        path = self.path(key)
        if not path.is_file():
            raise FileNotFoundError(str(path))
        return Attachment.from_file(path, content_type=content_type, content_id=content_id)

    def size(self, key: str) -> int | None:
        """The file's size, or None when it does not exist."""
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def keys(self) -> Iterator[str]:
        """Every key with a file, found by walking the fan-out folders."""
        for folder in _subdirs(self.documents):
            for entry in os.scandir(folder):
                if entry.is_file(follow_symlinks=False) and _KEY.match(entry.name):
                    yield entry.name

    def path(self, key: str) -> Path:
        """The file of a key: ``documents/<key[0:2]>/<key>``.

        Raises:
            ValueError: ``key`` is not a storage key (64 lower-case hex digits).
        """
        if not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.documents / key[:2] / key

    def _same_device(self, path: Path) -> bool:
        try:
            return os.stat(path).st_dev == os.stat(self.staging).st_dev
        except OSError:
            return False


def _subdirs(folder: Path) -> Iterator[Path]:
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            yield Path(entry.path)


def _make_dir(folder: Path) -> None:
    """Create ``folder`` and missing parents, fsyncing each parent so the new names persist."""
    if folder.is_dir():
        return
    _make_dir(folder.parent)
    folder.mkdir(mode=0o700, exist_ok=True)
    _fsync_dir(folder.parent)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    # POSIX: a rename or unlink is durable only once the directory holding the name is fsync'd.
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
