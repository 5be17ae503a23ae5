"""Which process owns which temporary files: an owner id per process, and locks that die with it.

Several gateway processes may share one folder: the workers of ``serve --workers N`` share a
data folder, and several machines may share a storage folder. Each process therefore keeps its
temporary files (SOAP spool, C-STORE data sets being received) in a folder of its own,
``<parent>/<owner>``, and its rows in shared queues carry its owner id. Start-up and cleaning
must then tell a live owner (whose files are in use) from a dead one (whose files are leftovers):

A process holds an exclusive ``flock`` on ``<owner>.lock`` in a folder of locks for as long as
it lives. The kernel drops the lock when the process ends, SIGKILL and crashes included, so
whoever can take an owner's lock knows that owner is gone: no clock, no timeout, no guess. (On
NFS, flock is carried by NFSv4 byte-range locks, which the server also releases once a dead
client's lease runs out.) The lock is taken before the owner's folder is created and dropped
after the folder is removed, so a folder whose lock can be taken is never one still being set
up. Only a process that holds a lock file's lock deletes that file.

Stdlib only: every room may use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("gateway")

LOCK_SUFFIX = ".lock"
OWNERS = ".owners"  # the lock files of a StagingFolder's parent
_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def new_owner_id(pid: int | None = None) -> str:
    """A name for this run of this process, unique across machines and restarts.

    ``host-pid-random``: readable in folder listings and logs; the random part keeps a reused
    pid from ever naming a dead process's files as its own.
    """
    host = _UNSAFE.sub("-", socket.gethostname()).strip("-.") or "host"
    return f"{host}-{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """Who this gateway process is: its worker slot (0 when it runs alone), pid and owner id.

    ``serve --workers N`` numbers its workers 1..N; a restarted worker keeps its slot and gets a
    new pid and owner id. Process leases and per-process staging use ``owner``.
    """

    index: int = 0
    pid: int = field(default_factory=os.getpid)
    owner: str = field(default_factory=new_owner_id)

    @property
    def label(self) -> str:
        """``worker 2`` or ``main``, for log lines."""
        return f"worker {self.index}" if self.index else "main"


class OwnerLock:
    """An exclusive flock on ``<folder>/<owner>.lock``: held means that owner is alive."""

    def __init__(self, folder: Path, owner: str, fd: int) -> None:
        self.folder, self.owner, self._fd = folder, owner, fd

    @property
    def path(self) -> Path:
        return self.folder / f"{self.owner}{LOCK_SUFFIX}"

    @classmethod
    def acquire(cls, folder: Path, owner: str) -> OwnerLock:
        """Take ``owner``'s lock for this process (waiting out a cleaner that holds it a moment)."""
        fd = _open_locked(folder, owner, blocking=True)
        assert fd is not None
        return cls(folder, owner, fd)

    @classmethod
    def try_acquire(cls, folder: Path, owner: str) -> OwnerLock | None:
        """The lock of ``owner`` if nobody holds it (that owner is gone), else None."""
        fd = _open_locked(folder, owner, blocking=False)
        return None if fd is None else cls(folder, owner, fd)

    def release(self, *, remove: bool = True) -> None:
        """Drop the lock (and, by default, its file: the owner leaves nothing behind)."""
        if self._fd < 0:
            return
        if remove:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)
        self._fd = -1


def _open_locked(folder: Path, owner: str, *, blocking: bool) -> int | None:
    """An fd of ``<folder>/<owner>.lock`` holding its flock, or None (non-blocking, held).

    A cleaner may unlink a lock file between our open and our flock (it took the lock first,
    saw a dead owner, removed the file): a lock on an unlinked file protects nothing, so the
    file is opened again until the locked inode is the one the name points to.
    """
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{owner}{LOCK_SUFFIX}"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            current = os.stat(path).st_ino
        except BlockingIOError:
            os.close(fd)
            return None
        except FileNotFoundError:
            current = -1
        except BaseException:
            os.close(fd)
            raise
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)


def owner_alive(folder: Path, owner: str) -> bool:
    """True while the process named ``owner`` holds its lock in ``folder``."""
    if not (folder / f"{owner}{LOCK_SUFFIX}").exists():
        return False  # never started here, or ended cleanly (its lock file went with it)
    lock = OwnerLock.try_acquire(folder, owner)
    if lock is None:
        return True
    lock.release()
    return False


class StagingFolder:
    """``<parent>/<owner>``: temporary files of this process only, removed when it stops.

    The owners' locks live in ``<parent>/.owners``, out of the way of anything that sweeps loose
    files from ``parent``. Creating the folder removes the folders of owners that are gone
    (their files are leftovers of a crash); folders of live owners, other workers or other
    machines, are left alone.
    """

    def __init__(self, parent: Path, owner: str) -> None:
        self.parent = parent
        self._lock = OwnerLock.acquire(parent / OWNERS, owner)  # before the folder exists
        self.path = parent / owner
        if self.path.exists():  # only a dead run of the same owner id could have left it
            shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(mode=0o700)
        remove_dead_owners(parent, keep=owner)

    def close(self) -> None:
        """Remove the folder with whatever is left in it, then drop the lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._lock.release()


def remove_dead_owners(parent: Path, *, keep: str) -> int:
    """Remove ``<parent>/<owner>`` folders of owners that are gone; return how many.

    Lock files of owners that died before making their folder go too. Loose files in
    ``parent`` (written by versions before per-owner folders) are not touched.
    """
    locks = parent / OWNERS
    removed = 0
    for entry in os.scandir(parent):
        if entry.name in (OWNERS, keep) or not entry.is_dir(follow_symlinks=False):
            continue
        lock = OwnerLock.try_acquire(locks, entry.name)
        if lock is None:
            continue  # alive
        shutil.rmtree(entry.path, ignore_errors=True)
        lock.release()
        removed += 1
        log.info("removed %s: left by %s, which is no longer running", entry.path, entry.name)
    for entry in os.scandir(locks):
        name = entry.name.removesuffix(LOCK_SUFFIX)
        if name != keep and entry.name.endswith(LOCK_SUFFIX) and not (parent / name).exists():
            lock = OwnerLock.try_acquire(locks, name)
            if lock is not None:
                lock.release()
    return removed
