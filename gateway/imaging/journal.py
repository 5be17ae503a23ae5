"""A redo journal of the instances answered since the index last reached the disk (SQLite).

Why: a C-STORE is answered "Success" only when the instance will survive a power loss, its file
and its index row. Making the row durable by itself costs a flush of SQLite's log per instance
(``synchronous=FULL``), on top of the file's own flush; one association's pace is bounded by
those flushes. Instead, the instance file is created with a hard link to it in this journal,
and both reach the disk with the file's own flush (one ``fsync`` of the file, then of both
folders); the row is committed with ``synchronous=NORMAL`` (in the operating system's hands,
not yet on the disk). Every ``interval`` seconds the syncer flushes SQLite's log once (a
``synchronous=FULL`` commit) and then removes the entries of the rows committed before it. After
a crash of the machine, :meth:`Journal.open` finds the entries of the process that died, checks
each file against the CRC-32 and size in its entry's name (named before the file's data reached
the disk, so a file that did not get there is recognised and removed: it was never answered),
and indexes again the files whose rows were lost (the entry's name says where the file is). So
an answered instance is never lost: either its row was flushed, or its entry survived with it.

Each process journals into a folder of its own, locked (``flock``) while it runs; another
process (``serve --workers``, or the next start) recovers only folders whose lock is free.
PostgreSQL commits are durable on their own: the journal is for SQLite only.

Standard: none (write-ahead logging of the index, the technique of PS3.4 §B.2.3's "stored"
promise); POSIX ``link``, ``fsync``, ``flock``; SQLite "PRAGMA synchronous" (WAL: NORMAL is
durable at checkpoints, FULL at every commit).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gateway.imaging")

LOCK_NAME = "lock"
SYNC_INTERVAL = 0.2  # seconds: at most this much of the index waits for a flush of the log
# <CRC-32>-<size>-<token>-<study>+<series>+<sop>.dcm.entry: the file's relative path with '/' as
# '+' (UIDs are at most 64 characters: a name stays under 255 bytes); not *.dcm, so that nothing
# looking for DICOM files counts an instance twice
_ENTRY = re.compile(r"^([0-9a-f]{8})-([0-9]+)-[0-9a-f]+-([0-9.]+\+[0-9.]+\+[0-9.]+\.dcm)\.entry$")


@dataclass(frozen=True, slots=True)
class Entry:
    """What a journal entry says about its file."""

    path: Path  # the entry (a hard link to the instance file)
    crc: int
    size: int
    relative: str  # the instance file, relative to the store's root


Recover = Callable[[Entry], None]  # index the entry's file again if its row was lost


class Journal:
    """This process's journal folder and its syncer."""

    def __init__(
        self,
        root: Path,
        sync_log: Callable[[], None],
        recover: Recover,
        *,
        interval: float = SYNC_INTERVAL,
    ) -> None:
        self.root = root
        self.sync_log = sync_log
        self.recover = recover
        self.interval = interval
        self.folder: Path | None = None
        self._lock_fd: int | None = None
        self._folder_fd: int | None = None
        self._committed: list[Path] = []
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Recover the folders of dead processes, then open this process's folder and start
        the syncer. Raises: OSError."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f"{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir(mode=0o700)
        self._lock_fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self._folder_fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        _fsync(self.root)
        self.folder = folder
        self.recover_dead()
        self._stop.clear()
        self._syncer = threading.Thread(target=self._run, name="imaging-journal", daemon=True)
        self._syncer.start()

    def close(self) -> None:
        """Stop the syncer, flush once more, remove this process's folder."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None
        folder = self.folder
        if folder is None:
            return
        try:
            self.sync()
            leftovers = [p for p in folder.iterdir() if p.name != LOCK_NAME]
            if not leftovers:  # else entries of rows never committed: the next start checks them
                (folder / LOCK_NAME).unlink()
                folder.rmdir()
        finally:
            for fd in (self._folder_fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._folder_fd = self._lock_fd = None
            self.folder = None

    # -- entries ----------------------------------------------------------------------------------
    def entry(self, crc: int, size: int, relative: str) -> Path:
        """A fresh entry name for the file ``relative`` of this CRC-32 and size (the caller
        links it)."""
        assert self.folder is not None, "journal not open"
        flat = relative.replace("/", "+")
        name = f"{crc & 0xFFFFFFFF:08x}-{size}-{secrets.token_hex(4)}-{flat}.entry"
        return self.folder / name

    def sync_folder(self) -> None:
        """Make the entries linked so far durable (``fsync`` of the folder)."""
        assert self._folder_fd is not None, "journal not open"
        os.fsync(self._folder_fd)

    def committed(self, entry: Path) -> None:
        """The entry's row is committed: remove the entry after the next flush of the log."""
        with self._mutex:
            self._committed.append(entry)

    def abandon(self, entry: Path) -> None:
        """The entry's file was not indexed (the C-STORE failed): forget the entry now."""
        entry.unlink(missing_ok=True)

    # -- the syncer -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
            except Exception:  # the database may be away for a while: entries wait for it
                log.exception("flushing the imaging index log failed; retrying")

    def sync(self) -> int:
        """Flush the log once if rows were committed since the last flush, then remove their
        entries; return how many went."""
        with self._mutex:
            done, self._committed = self._committed, []
        if not done:
            return 0
        try:
            self.sync_log()
        except BaseException:
            with self._mutex:
                self._committed[:0] = done
            raise
        for entry in done:
            entry.unlink(missing_ok=True)  # no fsync: an entry left over only costs a check
        return len(done)

    # -- recovery ---------------------------------------------------------------------------------
    def recover_dead(self) -> int:
        """Index again the files of the journals whose process is gone; return how many entries
        were checked."""
        checked = 0
        for folder in sorted(self.root.iterdir()):
            if folder == self.folder or not folder.is_dir():
                continue
            lock = _try_lock(folder / LOCK_NAME)
            if lock is None:
                continue  # a live process's journal
            try:
                checked += self._recover_folder(folder)
            finally:
                os.close(lock)
        return checked

    def _recover_folder(self, folder: Path) -> int:
        entries = [p for p in folder.iterdir() if p.name != LOCK_NAME]
        for entry in entries:
            found = _ENTRY.match(entry.name)
            if found is None:
                log.warning("unexpected file %s in the imaging journal left alone", entry)
                continue
            relative = found[3].replace("+", "/")
            self.recover(Entry(entry, int(found[1], 16), int(found[2]), relative))
            entry.unlink(missing_ok=True)
        if entries:
            log.info("checked %d instance(s) of the imaging journal %s", len(entries), folder.name)
        if all(not p.exists() for p in entries):
            (folder / LOCK_NAME).unlink(missing_ok=True)
            folder.rmdir()
        return len(entries)


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s lock, or None when a live process holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _fsync(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
