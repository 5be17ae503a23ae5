"""One ``serve`` process per embedded SQLite database.

SQLite is the single-process default: a second ``xdsi-gateway serve`` on the same data folder
would share its database file and storage with the first, which the design does not support (use
PostgreSQL for several processes). :func:`hold_single_process` takes an exclusive OS lock
(``flock``) on ``<data_dir>/gateway.lock`` (and on ``<database>.lock`` when the SQLite file lives
elsewhere) for as long as the process runs; the kernel releases it when the process ends, however
it ends, so a crashed gateway never blocks its restart. On PostgreSQL nothing is locked: several
processes (and machines) share the database by design.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from gateway.errors import ConfigError

LOCK_NAME = "gateway.lock"


class ProcessLock:
    """Exclusive locks held until :meth:`release` or the end of the process."""

    def __init__(self, handles: list[IO[str]]) -> None:
        self._handles = handles

    def release(self) -> None:
        """Give the locks up (closing the files releases them)."""
        for handle in self._handles:
            handle.close()
        self._handles.clear()


def hold_single_process(data_dir: Path, sqlite_file: Path | None) -> ProcessLock:
    """Lock the data folder (and the SQLite file) of an embedded-SQLite gateway.

    Nothing is locked when ``sqlite_file`` is None (PostgreSQL). Raises ConfigError (exit 2)
    naming the process that holds the lock.
    """
    if sqlite_file is None:
        return ProcessLock([])
    paths = [data_dir / LOCK_NAME]
    if sqlite_file.parent != data_dir:
        paths.append(sqlite_file.with_name(sqlite_file.name + ".lock"))
    handles: list[IO[str]] = []
    try:
        for path in paths:
            handles.append(_lock(path, data_dir))
    except BaseException:
        ProcessLock(handles).release()
        raise
    return ProcessLock(handles)


def _lock(path: Path, data_dir: Path) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(
            f"gateway.database_url: {holder} already serves {data_dir} on the embedded SQLite "
            "database, which allows one process; stop it, or use PostgreSQL "
            "(gateway.database_url) to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"xdsi-gateway pid {os.getpid()}\n")
    handle.flush()
    return handle
