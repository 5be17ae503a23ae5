"""Crash recovery: find out what happened to documents whose registration was never confirmed.

Runs at start-up (before the HTTP server accepts requests) and then in a background thread.
Several gateway processes may share the index and the storage; each resolves only its own
unsettled rows and those of processes that are provably gone (lease expired or absent,
``gateway.database.leases``), never a live peer's ITI-41 in flight:

- :meth:`Recovery.remove_orphans` clears leftover temporaries and deletes every stored file that
  no index row names. A row is always written *before* its file is placed and
  removed *after* its file is deleted, so such a file was never registered; the sweep reserves
  the file's name in the index before deleting it, so a peer that starts storing a document under
  that name meanwhile is never robbed of its file.
- :meth:`Recovery.resolve` asks the registry about each unsettled row it may resolve (its own
  ``unresolved`` rows; ``pending`` or ``unresolved`` rows of gone owners, taken over first):
  listed -> ``confirmed`` (served from now on), not listed -> file and row deleted, no answer ->
  left for the next pass. A row is only judged once it is ``settle_seconds`` old: a remote
  registry may still commit an ITI-42 whose sender died or gave up, and a "not listed" answer
  given before that would delete bytes the registry is about to list. In-process the registry
  commits in the same database before the repository confirms, so 0 is right there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.repository.index import ORPHAN_PREFIX, RepositoryIndex, StoredDocument
from gateway.repository.registry_client import RegistryClient
from gateway.repository.storage import DocumentStorage

log = logging.getLogger("gateway.repository")


class Recovery:
    """The sweep of one repository (its index, storage and registry)."""

    def __init__(
        self,
        *,
        index: RepositoryIndex,
        storage: DocumentStorage,
        registry: RegistryClient,
        repository_unique_id: str,
        owner: str,
        settle_seconds: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.index, self.storage, self.registry = index, storage, registry
        self.repository_unique_id = repository_unique_id
        self.owner = owner
        self.settle_seconds = settle_seconds
        self.clock = clock
        self._lock = threading.Lock()  # one pass at a time within this process

    def remove_orphans(self) -> int:
        """Clear leftover temporaries and delete files no index row names; return how many
        files were deleted.

        The storage is listed first and the index read second, so a file placed meanwhile
        already has its row; each candidate's name is then reserved before it is deleted.
        """
        self.storage.recover()
        stored = list(self.storage.keys())
        known = self.index.storage_keys()
        removed = 0
        for key in stored:
            if key in known:
                continue
            if not self.index.reserve_orphan(key, owner=self.owner, now=self.clock()):
                continue  # a document is being stored under this name right now
            self.storage.delete(key)
            self.index.remove([f"{ORPHAN_PREFIX}{key}"], owner=self.owner)
            removed += 1
        if removed:
            log.warning("removed %d stored file(s) that no registration ever named", removed)
        return removed

    def resolve(self) -> int:
        """One pass over the unsettled rows old enough to judge; return how many rows this
        process may resolve stay unsettled.

        Stops at the first row the registry cannot be asked about (it is unreachable).
        Standard: ITI TF-2 §3.41.4.1.3 (the repository registers what it stores, ITI-42).
        """
        with self._lock:
            rows = self.index.unsettled(
                owner=self.owner, created_before=self.clock() - self.settle_seconds
            )
            for row in rows:
                if not self.index.take_over(row, owner=self.owner):
                    continue  # settled meanwhile, or its owner is alive after all
                if row.orphan:  # an interrupted orphan deletion: finish it
                    self._delete(row)
                    continue
                answer = self.registry.is_registered(row.unique_id, self.repository_unique_id)
                if answer is None:
                    log.warning(
                        "registry unreachable: %d document(s) wait for their registration outcome",
                        len(rows),
                    )
                    break
                if answer:
                    self.index.confirm([row.unique_id])
                    log.info("document %s: registered, now served", row.unique_id)
                else:
                    self._delete(row)
                    log.info("document %s: never registered, removed", row.unique_id)
            return len(self.index.unsettled(owner=self.owner, created_before=float("inf")))

    def _delete(self, row: StoredDocument) -> None:
        self.storage.delete(row.storage_key)
        self.index.remove([row.unique_id], owner=self.owner)


class Resolver:
    """A daemon thread running :meth:`Recovery.resolve` every ``interval`` seconds (or sooner
    when woken), until stopped."""

    def __init__(self, recovery: Recovery, interval: float) -> None:
        self._recovery = recovery
        self._interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="repository-resolver", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """Run a pass now (e.g. after a registration with an unknown outcome)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (waiting for a pass in progress)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._recovery.resolve()
            except Exception:  # a failed pass must not end the thread; the next one retries
                log.exception("repository recovery pass failed")
