"""C-STORE data sets received straight into files in a folder of ours (pynetdicom's chunked mode).

By default pynetdicom collects a received data set in memory (``event.encoded_dataset()``): a
1 GB multi-frame instance costs 1 GB of RAM per association. With
``pynetdicom._config.STORE_RECV_CHUNKED_DATASET`` set, it writes the File Meta Information it
builds from the C-STORE request, then every P-DATA fragment of the data set, to a
``NamedTemporaryFile(delete=False, suffix=".dcm")`` as it arrives; the handler gets the path
(``event.dataset_path``), and after the handler pynetdicom closes the file and unlinks it,
ignoring one that is gone (so a handler may move it into place). Three facts of pynetdicom 3.0
shape this module (``dimse_messages.DIMSEMessage.decode_msg``,
``service_class.StorageServiceClass.SCP``):

- The setting is process-wide. :func:`install` sets it once; this gateway's listener is the
  only storage SCP in the process (another one would get its data sets as files too:
  ``event.dataset`` still works, ``event.encoded_dataset()`` would not).
- The file goes to ``tempfile.gettempdir()`` (often a tmpfs, that is RAM, and another file
  system than the store, where ``os.replace`` cannot move it), with no option to choose.
  :func:`install` routes pynetdicom's ``NamedTemporaryFile`` (the name
  ``pynetdicom.dimse_messages`` calls) through :func:`_named_temporary_file`, which creates the
  file in the folder the listening AE registered (:func:`register`), and anywhere else exactly
  as pynetdicom would. The file is created in the association's DUL reader thread, whose
  ``assoc.ae`` names the AE; nothing else is changed, and nothing process-wide like
  ``tempfile.tempdir``.
- A file whose association ends mid-transfer (aborted, dropped) is never unlinked by
  pynetdicom. Files are tracked per association; :func:`forget`, bound to EVT_RELEASED and
  EVT_ABORTED, removes those still there, and :func:`sweep` removes what a crash left.

Standards: DICOM PS3.7 §9.1.1 (C-STORE), PS3.8 Annex E (P-DATA fragments), PS3.10 §7.1 (the
File Meta Information the SCP writes in front of the data set as received).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pynetdicom import _config, dimse_messages

log = logging.getLogger("gateway.imaging")

STALE_SECONDS = 3600.0  # a file untouched this long belongs to no transfer in progress

_lock = threading.Lock()
_installed = False
_folders: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()  # AE -> folder
# assoc -> {path: pynetdicom's open file} for the data sets being received on it
_files: weakref.WeakKeyDictionary[Any, dict[Path, Any]] = weakref.WeakKeyDictionary()
_pynetdicom_temporary_file: Callable[..., Any] = dimse_messages.NamedTemporaryFile


def install() -> None:
    """Receive every C-STORE data set of this process into a file (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _config.STORE_RECV_CHUNKED_DATASET = True
        dimse_messages.NamedTemporaryFile = _named_temporary_file
        _installed = True


def register(ae: Any, folder: Path) -> None:
    """Make the data sets ``ae`` receives go to ``folder`` (on the store's file system)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _lock:
        _folders[ae] = folder


def unregister(ae: Any) -> None:
    """Forget the folder of ``ae`` (its listener stopped)."""
    with _lock:
        _folders.pop(ae, None)


def _named_temporary_file(*args: Any, **kwargs: Any) -> Any:
    """pynetdicom's ``NamedTemporaryFile`` call, in the folder of the receiving AE if it has one."""
    assoc = getattr(threading.current_thread(), "assoc", None)  # the DUL reader thread's
    with _lock:
        folder = _folders.get(getattr(assoc, "ae", None)) if assoc is not None else None
    if folder is None:
        return _pynetdicom_temporary_file(*args, **kwargs)
    kwargs.setdefault("prefix", "c-store-")
    handle = _pynetdicom_temporary_file(*args, dir=str(folder), **kwargs)
    with _lock:
        _files.setdefault(assoc, {})[Path(handle.name)] = handle
    return handle


def done(assoc: Any, path: Path) -> None:
    """The handler is finished with ``path`` (moved into place, or left for pynetdicom)."""
    with _lock:
        _files.get(assoc, {}).pop(path, None)


def forget(event: Any) -> None:
    """EVT_RELEASED / EVT_ABORTED: remove the files of transfers that never completed.

    In the association's own thread (a release, or an abort the peer or the network caused)
    the DUL reader has stopped writing, so pynetdicom's file is closed too; an abort from
    another thread (the listener stopping) only unlinks it, and the file object is closed when
    pynetdicom's message is collected.
    """
    with _lock:
        pending = _files.pop(event.assoc, {})
    own_thread = threading.current_thread() is event.assoc
    for path, handle in pending.items():
        if own_thread:
            handle.close()
        try:
            path.unlink()
            log.info("removed the partial C-STORE data set %s", path.name)
        except FileNotFoundError:
            pass


def sweep(folder: Path, *, older_than: float = STALE_SECONDS) -> int:
    """Remove files a crash left in ``folder``; return how many.

    Only files untouched for ``older_than`` seconds go: another gateway process may share the
    storage folder and be receiving into it right now.
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
