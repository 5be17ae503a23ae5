"""C-STORE data sets received into memory or a file, never both (issue 13, point 4; issue 14).

pynetdicom (SCU) and dcmtk ``storescu`` send to the imaging source's listener. A data set up to
the receiver's memory limit is written once, in place; a bigger one is received into a file in
the listening process's own folder of the store's ``.tmp/incoming`` (not a system temporary
folder), and that very file is renamed into place (same inode) holding the data set exactly as
sent. Nothing is left behind. A transfer cut off mid-data-set (storescu killed) leaves no file.
Listeners sharing a storage folder never remove each other's files (issue 15).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway import dicomscu
from gateway.imaging import cstore, synthetic
from tests.integration.imaging.conftest import Running, associate, run_storescu, storescu
from tests.unit.imaging.support import AE_TITLE, RecordingRepository, make_source, study_spec

CT = synthetic.SOP_CLASSES["CT"]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling a condition with a deadline
    return condition()


@pytest.fixture
def spilled(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(folder, inode) of every file a receiver spills a data set into."""
    made: list[tuple[str, int]] = []
    real = cstore.DataSetReceiver._spill

    def recording(self: cstore.DataSetReceiver) -> None:
        real(self)
        assert self._path is not None
        made.append((str(self._path.parent), self._path.stat().st_ino))

    monkeypatch.setattr(cstore.DataSetReceiver, "_spill", recording)
    return made


def send(running: Running, paths: list[Path], sender: str) -> None:
    if sender == "storescu":
        storescu()
        run_storescu(running.host, running.port, paths)
        return
    assoc = associate(running.host, running.port, [CT])
    try:
        for path in paths:
            assert dicomscu.send_c_store(assoc, path).Status == 0x0000
    finally:
        assoc.release()


@pytest.mark.parametrize("sender", ["pynetdicom", "storescu"])
@pytest.mark.parametrize("in_memory", [True, False])
def test_data_sets_are_stored_as_sent_from_memory_or_from_their_file(
    running: Running,
    tmp_path: Path,
    spilled: list[tuple[str, int]],
    sender: str,
    in_memory: bool,
) -> None:
    if not in_memory:
        running.source.scp.memory_limit = 1000  # every data set goes to a file
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=3),))
    )
    paths = synthetic.write_study(instances, tmp_path / "study")
    send(running, paths, sender)
    store = running.source.store
    if in_memory:
        assert spilled == []
    else:
        # the listener's own folder under the store's .tmp/incoming: same file system
        incoming = running.source.scp.incoming_dir
        assert incoming.parent == store.incoming_dir
        assert [folder for folder, _ in spilled] == [str(incoming)] * 3
    inodes = {inode for _, inode in spilled}
    for ds, path in zip(instances, paths, strict=True):
        record = running.source.index.instance(str(ds.SOPInstanceUID))
        assert record is not None
        stored = store.path(record.path)
        if not in_memory:
            assert stored.stat().st_ino in inodes  # the received file itself, renamed
        kept = stored.read_bytes()
        assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(path.read_bytes())
        assert kept[:132] == b"\0" * 128 + b"DICM"  # behind the SCP's own File Meta
        assert record.size == len(kept)
    assert wait_until(lambda: list(running.source.scp.incoming_dir.iterdir()) == [])
    leftovers = [p.name for p in store.root.rglob("*") if p.name.endswith(".part")]
    assert leftovers == []


def test_a_transfer_cut_off_mid_data_set_leaves_no_file(running: Running, tmp_path: Path) -> None:
    program = storescu()
    big = tmp_path / "big.dcm"
    ds = synthetic.write_multiframe(study_spec(), big, frames=800)  # 400 MiB
    incoming = running.source.scp.incoming_dir
    command = [program, "-aec", AE_TITLE, "-aet", "DCMTK_SCU", running.host, str(running.port)]
    sender = subprocess.Popen([*command, str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        growing = wait_until(
            lambda: any(p.stat().st_size > 8 << 20 for p in incoming.iterdir()), timeout=60
        )
        sender.send_signal(signal.SIGKILL)  # the connection drops without A-ABORT
    finally:
        sender.wait(timeout=30)
        for stream in (sender.stdout, sender.stderr):
            if stream:
                stream.close()
        big.unlink()
    assert growing, "the data set never started to arrive"
    assert wait_until(lambda: list(incoming.iterdir()) == [])
    assert running.source.index.instance(str(ds.SOPInstanceUID)) is None


def test_listeners_sharing_a_storage_folder_keep_to_their_own_incoming_folders(
    tmp_path: Path,
) -> None:
    first = make_source(tmp_path, RecordingRepository())
    second = make_source(tmp_path, RecordingRepository())  # another process, same folders
    gone = first.store.incoming_dir / "host-1-deadbeef"  # left by a process that died
    gone.mkdir(parents=True)
    (gone / "c-store-left.dcm").write_bytes(b"x")
    first.start()
    try:
        mine = first.scp.incoming_dir
        assert mine == first.store.incoming_dir / first.index.owner
        assert not gone.exists()  # its owner holds no lock: removed at start
        in_flight = mine / "c-store-in-flight.dcm"  # a transfer this live process receives
        in_flight.write_bytes(b"x")
        os.utime(in_flight, (0, 0))  # however old it looks
        second.start()
        try:
            theirs = second.scp.incoming_dir
            assert theirs != mine and theirs.parent == mine.parent
            assert in_flight.exists()
        finally:
            second.stop()
        assert not theirs.exists() and in_flight.exists()
    finally:
        first.stop()
    assert not mine.exists()
