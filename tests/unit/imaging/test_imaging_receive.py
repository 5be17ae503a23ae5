"""C-STORE data sets received into files (gateway.imaging.receive, Ingest.store_received,
InstanceStore.adopt): the file lands in the store's own folder and is renamed into place, never
copied or read whole; a refused one is left to pynetdicom; leftovers are removed."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.imaging import receive, synthetic
from gateway.imaging.ingest import STATUS_INSTANCE_MISMATCH
from gateway.imaging.source import ImagingSource
from gateway.imaging.storage import InstanceStore
from gateway.imaging.storescp import handle_store
from tests.unit.imaging.support import study_spec


def received_file(source: ImagingSource, data: bytes) -> Path:
    """A data set as pynetdicom leaves it for the handler: a file in the incoming folder."""
    path = source.store.incoming_dir / f"c-store-{time.monotonic_ns()}.dcm"
    path.write_bytes(data)
    return path


class Assoc:
    """Stands for a pynetdicom Association (weak-referenceable, as the real one is)."""

    def __init__(self, ae: object = None) -> None:
        self.ae = ae
        self.requestor = SimpleNamespace(ae_title="MODALITY")


def file_event(path: Path, sop_class: str, sop_instance: str) -> Any:
    request = SimpleNamespace(AffectedSOPClassUID=sop_class, AffectedSOPInstanceUID=sop_instance)
    return SimpleNamespace(request=request, assoc=Assoc(), dataset_path=path)


def test_a_received_file_is_renamed_into_place(source: ImagingSource) -> None:
    ds = synthetic.make_study(study_spec())[0]
    data = synthetic.encode(ds)
    path = received_file(source, data)
    inode = path.stat().st_ino
    status = handle_store(file_event(path, ds.SOPClassUID, ds.SOPInstanceUID), source.ingest)
    assert status == 0x0000
    assert not path.exists()
    record = source.index.instance(str(ds.SOPInstanceUID))
    assert record is not None
    stored = source.store.path(record.path)
    assert stored.read_bytes() == data
    assert stored.stat().st_ino == inode  # renamed, not copied
    assert record.size == len(data)


def test_a_refused_file_is_left_to_pynetdicom(source: ImagingSource) -> None:
    ds = synthetic.make_study(study_spec())[0]
    path = received_file(source, synthetic.encode(ds))
    event = file_event(path, ds.SOPClassUID, "1.2.3.4")
    assert handle_store(event, source.ingest) == STATUS_INSTANCE_MISMATCH
    assert path.exists()  # pynetdicom closes and removes it after the handler
    assert source.index.instance(str(ds.SOPInstanceUID)) is None


def test_adopt_copies_across_file_systems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = InstanceStore(tmp_path / "store", fsync=True)
    source = tmp_path / "elsewhere.dcm"
    source.write_bytes(b"x" * 5000)
    real = os.replace

    def cross_device(src: Any, dst: Any) -> None:
        if Path(src) == source:  # another file system: rename(2) fails with EXDEV
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)

    monkeypatch.setattr(os, "replace", cross_device)
    relative = store.relative_path("1.2", "1.2.3", "1.2.3.4")
    assert store.adopt(relative, source) == 5000
    assert store.path(relative).read_bytes() == b"x" * 5000
    assert source.exists()  # copied, left to its owner


def test_sweep_removes_only_stale_files(tmp_path: Path) -> None:
    old, new = tmp_path / "old.dcm", tmp_path / "new.dcm"
    old.write_bytes(b"a")
    new.write_bytes(b"b")
    hour_ago = time.time() - 2 * receive.STALE_SECONDS
    os.utime(old, (hour_ago, hour_ago))
    assert receive.sweep(tmp_path) == 1
    assert not old.exists() and new.exists()


class DulThread(threading.Thread):
    """Stands for pynetdicom's DUL reader thread, which creates the data set's file."""

    def __init__(self, ae: object) -> None:
        super().__init__()
        self.assoc = Assoc(ae)
        self.made: list[Path] = []

    def run(self) -> None:
        handle = receive._named_temporary_file(delete=False, mode="wb", suffix=".dcm")
        handle.close()
        self.made.append(Path(handle.name))


def test_files_go_to_the_folder_of_the_receiving_ae(tmp_path: Path) -> None:
    class AE:  # weak-referenceable, like pynetdicom's ApplicationEntity
        pass

    ours, other = AE(), AE()
    folder = tmp_path / "incoming"
    receive.register(ours, folder)
    try:
        threads = [DulThread(ours), DulThread(other)]
        for thread in threads:
            thread.start()
            thread.join()
        mine, theirs = threads[0].made[0], threads[1].made[0]
        assert mine.parent == folder and mine.name.startswith("c-store-")
        assert theirs.parent != folder  # any other AE: where pynetdicom puts it
        theirs.unlink()
        receive.forget(SimpleNamespace(assoc=threads[0].assoc))  # the association ended
        assert not mine.exists()
    finally:
        receive.unregister(ours)
