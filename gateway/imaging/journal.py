"""A redo journal of the instances answered since the index last reached the disk (SQLite).

Why: a C-STORE is answered "Success" only when the instance will survive a power loss, its file
and its index row. Making the row durable by itself costs a flush of SQLite's log per instance
(``synchronous=FULL``), on top of the file's own flushes; one association's pace is bounded by
those flushes. Instead, a new instance file is created in place together with a *pending link*
to it in the same folder (``.<SOP Instance UID>.dcm.<run>-<CRC-32>-<size>.pending``), so the
flushes the file needs anyway (``fsync`` of the file, then of its folder) make the link durable
too; the row is committed with ``synchronous=NORMAL`` (in the operating system's hands, not yet
on the disk). Every ``interval`` seconds the syncer flushes SQLite's log once (a
``synchronous=FULL`` commit) and then removes the pending links of the rows committed before
it. So an answered instance is never lost: either its row was flushed, or its pending link
survived with it.

Each run of a process holds a lock (``flock``) on ``<journal>/<run>.lock`` while it lives. A
lock found free at start-up belongs to a run that died (the process, or the machine): its
pending links are looked for in the store's series folders, each file is checked against the
CRC-32 and size in its link's name (written before the file's data reached the disk, so a file
that did not get there is recognised and removed: it was never answered), and the files whose
rows were lost are indexed again. A live run's links are never touched (``serve --workers``).
PostgreSQL commits are durable on their own: the journal is for SQLite only.

Standard: none (write-ahead logging of the index, for PS3.4 §B.2.3's "stored" promise); POSIX
``link``, ``fsync``, ``flock``; SQLite "PRAGMA synchronous" (WAL: NORMAL is durable at
checkpoints, FULL at every commit).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gateway.imaging")

SYNC_INTERVAL = 0.2  # seconds: at most this much of the index waits for a flush of the log
_PENDING = re.compile(
    r"^\.(?P<name>[0-9.]+\.dcm)\.(?P<run>[0-9a-f]{12})-(?P<crc>[0-9a-f]{8})-(?P<size>[0-9]+)"
    r"\.pending$"
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What a pending link says about its instance file."""

    path: Path  # the pending link (a hard link to the instance file)
    final: Path  # the instance file
    crc: int
    size: int


Recover = Callable[[Entry], None]  # index the entry's file again if its row was lost


class Journal:
    """This run's lock, its pending links and the syncer."""

    def __init__(
        self,
        root: Path,
        store_root: Path,
        sync_log: Callable[[], None],
        recover: Recover,
        *,
        interval: float = SYNC_INTERVAL,
    ) -> None:
        self.root = root
        self.store_root = store_root
        self.sync_log = sync_log
        self.recover = recover
        self.interval = interval
        self.run = secrets.token_hex(6)
        self._lock_fd: int | None = None
        self._committed: list[Path] = []
        self._retry: list[Path] = []  # answered instances whose row could not be committed
        self._pending = 0  # links made and not yet removed (committed or not)
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Recover the links of runs that died, then take this run's lock and start the syncer.
        Raises: OSError."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.recover_dead()
        # locked before it gets its name: a visible lock file is held, or its run is dead
        making = self.root / f"{self.run}.lock.new"
        fd = os.open(making, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(making, self.root / f"{self.run}.lock")
        self._lock_fd = fd
        _fsync_folder(self.root)  # the lock file must outlive a crash, or nobody would recover
        self._stop.clear()
        self._syncer = threading.Thread(target=self._run, name="imaging-journal", daemon=True)
        self._syncer.start()

    def close(self) -> None:
        """Stop the syncer, flush once more, release the lock (its file stays when links are
        left: the next start checks them)."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
            self._syncer = None
        if self._lock_fd is None:
            return
        try:
            self.sync()
            if self._pending == 0:
                (self.root / f"{self.run}.lock").unlink()
        finally:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- entries ----------------------------------------------------------------------------------
    def entry(self, final: Path, crc: int, size: int) -> Path:
        """The pending link to make beside ``final`` for a file of this CRC-32 and size."""
        assert self._lock_fd is not None, "journal not open"
        with self._mutex:
            self._pending += 1
        return final.parent / f".{final.name}.{self.run}-{crc & 0xFFFFFFFF:08x}-{size}.pending"

    def committed(self, entry: Path) -> None:
        """The entry's row is committed: remove the link after the next flush of the log."""
        with self._mutex:
            self._committed.append(entry)

    def retry(self, entry: Path) -> None:
        """The entry's C-STORE was answered but its row could not be committed (the database
        is away): the syncer indexes it again until that works."""
        with self._mutex:
            self._retry.append(entry)

    def abandon(self, entry: Path) -> None:
        """The entry's file was not indexed (the C-STORE failed, or was never written): forget
        the link now."""
        entry.unlink(missing_ok=True)
        with self._mutex:
            self._pending -= 1

    # -- the syncer -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sync()
                self._redo()
            except Exception:  # the database may be away for a while: links wait for it
                log.exception("flushing the imaging index log failed; retrying")

    def _redo(self) -> None:
        """Index again the answered instances whose rows failed (durably: the link goes)."""
        with self._mutex:
            todo, self._retry = self._retry, []
        for position, link in enumerate(todo):
            found = _PENDING.match(link.name)
            try:
                if found is not None:
                    self.recover(_entry(link.parent, found))
            except Exception:
                with self._mutex:
                    self._retry[:0] = todo[position:]
                raise
            link.unlink(missing_ok=True)
            with self._mutex:
                self._pending -= 1

    def sync(self) -> int:
        """Flush the log once if rows were committed since the last flush, then remove their
        links; return how many went."""
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
            entry.unlink(missing_ok=True)  # no fsync: a link left over only costs a check
        with self._mutex:
            self._pending -= len(done)
        return len(done)

    # -- recovery ---------------------------------------------------------------------------------
    def recover_dead(self) -> int:
        """Check the pending links of every run whose lock is free; return how many."""
        dead: dict[str, Path] = {}
        for lock in self.root.glob("*.lock"):
            fd = _try_lock(lock)
            if fd is not None:
                dead[lock.stem] = lock
                os.close(fd)
        if not dead:
            return 0
        checked = 0
        for entry in self._pending_links(set(dead)):
            self.recover(entry)
            entry.path.unlink(missing_ok=True)
            checked += 1
        for lock in dead.values():
            lock.unlink(missing_ok=True)
        log.info(
            "imaging journal: %d run(s) ended uncleanly, %d instance(s) checked", len(dead), checked
        )
        return checked

    def _pending_links(self, runs: set[str]) -> Iterator[Entry]:
        """The pending links of ``runs`` in the store's series folders."""
        for study in _folders(self.store_root):
            for series in _folders(study):
                for name in os.listdir(series):
                    found = _PENDING.match(name)
                    if found is None or found["run"] not in runs:
                        continue
                    yield _entry(series, found)


def _entry(series: Path, found: re.Match[str]) -> Entry:
    return Entry(
        path=series / found.string,
        final=series / found["name"],
        crc=int(found["crc"], 16),
        size=int(found["size"]),
    )


def _folders(parent: Path) -> Iterator[Path]:
    with os.scandir(parent) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                yield Path(entry.path)


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s lock, or None when a live run holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
