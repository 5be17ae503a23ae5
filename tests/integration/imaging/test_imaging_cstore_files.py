"""C-STORE to disk, not memory, over real associations (issue 13, point 4).

pynetdicom (SCU) and dcmtk ``storescu`` send to the imaging source's listener: every data set is
received into a file in the store's ``.tmp/incoming`` folder (not pynetdicom's default temporary
folder), that very file is renamed into place (same inode) holding the data set exactly as sent,
and nothing is left behind. A transfer cut off mid-data-set (storescu killed) leaves no file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.imaging import receive, synthetic
from tests.integration.imaging.conftest import Running, associate, run_storescu, storescu
from tests.unit.imaging.support import AE_TITLE, study_spec

CT = synthetic.SOP_CLASSES["CT"]


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling a condition with a deadline
    return condition()


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(folder, inode) of every file pynetdicom creates for a received data set."""
    made: list[tuple[str, int]] = []
    real = receive._pynetdicom_temporary_file

    def recording(*args: Any, **kwargs: Any) -> Any:
        handle = real(*args, **kwargs)
        made.append((str(Path(handle.name).parent), os.fstat(handle.fileno()).st_ino))
        return handle

    monkeypatch.setattr(receive, "_pynetdicom_temporary_file", recording)
    return made


@pytest.mark.parametrize("sender", ["pynetdicom", "storescu"])
def test_data_sets_are_received_into_files_and_renamed_into_place(
    running: Running, tmp_path: Path, created: list[tuple[str, int]], sender: str
) -> None:
    instances = synthetic.make_study(
        study_spec(series=(synthetic.SeriesSpec(modality="CT", count=3),))
    )
    paths = synthetic.write_study(instances, tmp_path / "study")
    if sender == "storescu":
        storescu()
        run_storescu(running.host, running.port, paths)
    else:
        assoc = associate(running.host, running.port, [CT])
        try:
            for path in paths:
                assert assoc.send_c_store(path).Status == 0x0000
        finally:
            assoc.release()
    store = running.source.store
    assert [folder for folder, _ in created] == [str(store.incoming_dir)] * 3
    inodes = {inode for _, inode in created}
    for ds, path in zip(instances, paths, strict=True):
        record = running.source.index.instance(str(ds.SOPInstanceUID))
        assert record is not None
        stored = store.path(record.path)
        assert stored.stat().st_ino in inodes  # the received file itself, renamed
        sent = path.read_bytes()
        kept = stored.read_bytes()
        assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(sent)  # as sent
        assert kept[:132] == b"\0" * 128 + b"DICM"  # behind the SCP's own File Meta
    assert wait_until(lambda: list(store.incoming_dir.iterdir()) == [])


def test_a_transfer_cut_off_mid_data_set_leaves_no_file(running: Running, tmp_path: Path) -> None:
    program = storescu()
    big = tmp_path / "big.dcm"
    ds = synthetic.write_multiframe(study_spec(), big, frames=800)  # 400 MiB
    incoming = running.source.store.incoming_dir
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
