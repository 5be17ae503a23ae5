"""Crash recovery: find out what happened to documents whose registration was never confirmed.

Runs at start-up (before the HTTP server accepts requests) and then in a background thread:

- :meth:`Recovery.remove_orphans` empties the storage's staging area and deletes every stored
  file that no index row names. A row is always written *before* its file is placed and removed
  *after* its file is deleted, so such a file was never registered.
- :meth:`Recovery.resolve` asks the registry about each unsettled row (``unresolved``, or
  ``pending`` from an earlier run of the process): listed -> ``confirmed`` (served from now on),
  not listed -> file and row deleted, no answer -> left for the next pass. A row is only judged
  once it is ``settle_seconds`` old: a remote registry may still commit an ITI-42 whose sender
  died or gave up, and a "not listed" answer given before that would delete bytes the registry
  is about to list. In-process the registry dies with the repository, so 0 is right there.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from gateway.repository.index import RepositoryIndex
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
        """Clear staging and delete files no index row names; return how many were deleted.

        Call before requests are served (start-up): the storage is listed first and the index
        read second, so a file placed meanwhile already has its row.
        """
        self.storage.recover()
        stored = list(self.storage.keys())
        known = self.index.storage_keys()
        orphans = [key for key in stored if key not in known]
        for key in orphans:
            self.storage.delete(key)
        if orphans:
            log.warning("removed %d stored file(s) that no registration ever named", len(orphans))
        return len(orphans)

    def resolve(self) -> int:
        """One pass over the unsettled rows old enough to judge; return how many stay unsettled.

        Stops at the first row the registry cannot be asked about (it is unreachable).
        Standard: ITI TF-2 §3.41.4.1.3 (the repository registers what it stores, ITI-42).
        """
        with self._lock:
            rows = self.index.unsettled(
                owner=self.owner, created_before=self.clock() - self.settle_seconds
            )
            for row in rows:
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
                    self.storage.delete(row.storage_key)
                    self.index.remove([row.unique_id])
                    log.info("document %s: never registered, removed", row.unique_id)
            return len(self.index.unsettled(owner=self.owner, created_before=float("inf")))


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
