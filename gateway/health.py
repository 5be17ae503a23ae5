"""What ``/health`` says about the shared state: the database and the storage folders.

A load balancer takes a process out of rotation when ``/health`` answers 503: so the database
must be reachable and migrated, and every storage folder must exist and be writable, for the
process to count as ready. Free space is reported (bytes) for monitoring; it never makes the
process unready by itself (a full disk is answered per request with XDSRepositoryOutOfResources).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from gateway.database.migrate import HEAD, current_revision


def database_state(engine: Engine) -> tuple[bool, dict[str, Any]]:
    """Reachable, and at which schema revision (ready: reachable and migrated)."""
    state: dict[str, Any] = {"dialect": engine.dialect.name, "expected_revision": HEAD}
    try:
        revision = current_revision(engine)
    except Exception as exc:  # any driver error: the database cannot be used right now
        state.update(state="unreachable", error=type(exc).__name__)
        return False, state
    state["revision"] = revision
    if revision is None:
        state["state"] = "not migrated"
        return False, state
    state["state"] = "ok" if revision == HEAD else "other revision"
    return True, state


def storage_state(folders: Mapping[str, Path]) -> tuple[bool, dict[str, Any]]:
    """Each folder: exists and writable, with its free space (ready: all writable)."""
    report: dict[str, Any] = {}
    ready = True
    for name, folder in folders.items():
        entry: dict[str, Any] = {"path": str(folder)}
        if not folder.is_dir():
            entry["state"] = "missing"
        elif not os.access(folder, os.W_OK | os.X_OK):
            entry["state"] = "not writable"
        else:
            entry["state"] = "ok"
            entry["free_bytes"] = shutil.disk_usage(folder).free
        ready = ready and entry["state"] == "ok"
        report[name] = entry
    return ready, report
