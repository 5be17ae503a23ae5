"""Per-process ownership: a live owner's lock is seen from other processes, a killed one's is free,
and staging folders of dead owners (only those) are removed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.owners import (
    OWNERS,
    OwnerLock,
    ProcessIdentity,
    StagingFolder,
    new_owner_id,
    owner_alive,
)

ROOT = Path(__file__).resolve().parents[2]
HOLDER = """
import sys, time
from pathlib import Path
from gateway.owners import StagingFolder
folder = StagingFolder(Path(sys.argv[1]), sys.argv[2])
print("held", flush=True)
time.sleep(120)
"""


@contextmanager
def other_process(parent: Path, owner: str) -> Iterator[subprocess.Popen[bytes]]:
    """Another process holding a staging folder ``parent/owner``; SIGKILLed at the end."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(parent), owner],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"held"
        yield child
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()


def test_owner_ids_are_unique_and_name_the_pid() -> None:
    ids = {new_owner_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(f"-{os.getpid()}-" in owner for owner in ids)
    assert ProcessIdentity(index=2).label == "worker 2" and ProcessIdentity().label == "main"


def test_a_live_owner_is_seen_and_a_killed_one_is_not(tmp_path: Path) -> None:
    with other_process(tmp_path, "other") as child:
        assert owner_alive(tmp_path / OWNERS, "other")
        assert OwnerLock.try_acquire(tmp_path / OWNERS, "other") is None
        assert (tmp_path / "other").is_dir()
        child.send_signal(signal.SIGKILL)  # no clean-up runs in it
        child.wait(10)
        assert not owner_alive(tmp_path / OWNERS, "other")
    assert not owner_alive(tmp_path / OWNERS, "never-started")


def test_staging_removes_folders_of_dead_owners_only(tmp_path: Path) -> None:
    with other_process(tmp_path, "alive"), other_process(tmp_path, "killed") as killed:
        (tmp_path / "alive" / "part-1").write_bytes(b"in use")
        (tmp_path / "killed" / "part-2").write_bytes(b"left by a crash")
        (tmp_path / "loose.tmp").write_bytes(b"an older version's file")
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        mine = StagingFolder(tmp_path, "me")
        try:
            assert mine.path == tmp_path / "me" and mine.path.is_dir()
            assert (tmp_path / "alive" / "part-1").read_bytes() == b"in use"
            assert not (tmp_path / "killed").exists()
            assert not (tmp_path / OWNERS / "killed.lock").exists()
            assert (tmp_path / "loose.tmp").exists()  # not ours to judge
        finally:
            mine.close()
        assert not mine.path.exists() and not (tmp_path / OWNERS / "me.lock").exists()
        assert (tmp_path / "alive").is_dir()


def test_a_sweep_of_loose_files_cannot_unlock_a_live_owner(tmp_path: Path) -> None:
    # The spool's start-up clean-up removes loose files of its parent: locks are elsewhere.
    with other_process(tmp_path, "alive"):
        for entry in os.scandir(tmp_path):
            if entry.is_file():
                os.unlink(entry.path)
        StagingFolder(tmp_path, "me").close()
        assert (tmp_path / "alive").is_dir()
