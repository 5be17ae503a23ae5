"""Taking in instances (gateway.imaging.ingest, storage, cstore.DataSetReceiver): bytes kept as
received, refusals with the PS3.4 statuses, idempotent duplicates, atomic durable files."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import DataElement

from gateway.imaging import synthetic
from gateway.imaging.cstore import IMPLEMENTATION_CLASS_UID, DataSetReceiver, sweep
from gateway.imaging.ingest import (
    STATUS_CANNOT_UNDERSTAND,
    STATUS_INSTANCE_MISMATCH,
    STATUS_MISSING_UID,
    STATUS_OUT_OF_RESOURCES,
    STATUS_SOP_CLASS_MISMATCH,
    InstanceRejected,
)
from gateway.imaging.source import ImagingSource
from gateway.imaging.storage import InstanceStore, is_uid
from tests.unit.imaging.support import study_spec


def one_instance(**overrides: Any) -> pydicom.Dataset:
    return synthetic.make_study(study_spec(**overrides))[0]


def test_instance_is_stored_byte_for_byte_and_indexed(source: ImagingSource) -> None:
    ds = one_instance()
    data = synthetic.encode(ds)
    record = source.ingest.store_encoded(
        data, sop_class_uid=ds.SOPClassUID, sop_instance_uid=ds.SOPInstanceUID
    )
    assert source.store.path(record.path).read_bytes() == data
    assert record.path == f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"
    assert record.size == len(data)
    indexed = source.index.instance(str(ds.SOPInstanceUID))
    assert indexed is not None
    assert (indexed.modality, indexed.patient_id, indexed.transfer_syntax_uid) == (
        "CT",
        "PAT-0042",
        "1.2.840.10008.1.2.1",
    )


@pytest.mark.parametrize(
    "syntax",
    [
        synthetic.ImplicitVRLittleEndian,
        synthetic.DeflatedExplicitVRLittleEndian,
        synthetic.JPEGBaseline8Bit,
    ],
)
def test_every_transfer_syntax_is_kept_as_sent(source: ImagingSource, syntax: str) -> None:
    modality = "US" if syntax == synthetic.JPEGBaseline8Bit else "CT"  # CT is 12-16 bit
    spec = study_spec(
        series=(synthetic.SeriesSpec(modality=modality, count=1, transfer_syntax=syntax),)
    )
    data = synthetic.encode(synthetic.make_study(spec)[0])
    record = source.ingest.store_encoded(data)
    assert source.store.path(record.path).read_bytes() == data
    assert record.transfer_syntax_uid == syntax


def test_duplicate_replaces_the_file_idempotently(source: ImagingSource) -> None:
    ds = one_instance()
    source.ingest.store_encoded(synthetic.encode(ds))
    ds.PatientName = "Changed^Name"
    data = synthetic.encode(ds)
    record = source.ingest.store_encoded(data)
    assert source.store.path(record.path).read_bytes() == data
    assert len(source.index.instances_of_study(str(ds.StudyInstanceUID))) == 1
    files = [p for p in source.store.root.rglob("*.dcm")]
    assert len(files) == 1


def test_instance_moved_to_another_series_leaves_no_orphan_file(source: ImagingSource) -> None:
    ds = one_instance()
    first = source.ingest.store_encoded(synthetic.encode(ds))
    ds.SeriesInstanceUID = "2.25.999"
    second = source.ingest.store_encoded(synthetic.encode(ds))
    assert first.path != second.path
    assert not source.store.path(first.path).exists()
    assert source.store.path(second.path).exists()


@pytest.mark.parametrize(
    "keyword", ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"]
)
def test_missing_uid_is_refused_and_not_stored(source: ImagingSource, keyword: str) -> None:
    ds = one_instance()
    del ds[keyword]
    with pytest.raises(InstanceRejected) as caught:
        source.ingest.store_encoded(synthetic.encode(ds))
    assert caught.value.status == STATUS_MISSING_UID
    assert keyword in str(caught.value)
    assert list(source.store.root.rglob("*.dcm")) == []


def test_malformed_uid_is_refused(source: ImagingSource) -> None:
    ds = one_instance()
    tag = 0x0020000D  # Study Instance UID, set as a broken peer would (no write validation)
    ds[tag] = DataElement(tag, "UI", "1.2.3/../../etc", validation_mode=config.IGNORE)
    data = synthetic.encode(ds)
    with pytest.raises(InstanceRejected) as caught, pytest.warns(UserWarning, match="UI"):
        source.ingest.store_encoded(data)
    assert caught.value.status == STATUS_MISSING_UID
    assert list(source.store.root.rglob("*.dcm")) == []


@pytest.mark.parametrize(
    "data",
    [b"", b"not dicom at all", b"\0" * 128 + b"DICM" + b"\xff" * 40],
    ids=["empty", "text", "garbage-after-prefix"],
)
def test_not_dicom_is_refused(source: ImagingSource, data: bytes) -> None:
    with pytest.raises(InstanceRejected) as caught:
        source.ingest.store_encoded(data)
    assert caught.value.status == STATUS_CANNOT_UNDERSTAND
    assert list(source.store.root.rglob("*.dcm")) == []


def test_data_set_must_match_the_store_request(source: ImagingSource) -> None:
    ds = one_instance()
    data = synthetic.encode(ds)
    with pytest.raises(InstanceRejected) as caught:
        source.ingest.store_encoded(data, sop_class_uid="1.2.840.10008.5.1.4.1.1.4")
    assert caught.value.status == STATUS_SOP_CLASS_MISMATCH
    with pytest.raises(InstanceRejected) as caught:
        source.ingest.store_encoded(data, sop_instance_uid="2.25.1")
    assert caught.value.status == STATUS_INSTANCE_MISMATCH


def test_store_failure_answers_out_of_resources(
    source: ImagingSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(source.store, "write", broken)
    with pytest.raises(InstanceRejected) as caught:
        source.ingest.store_encoded(synthetic.encode(one_instance()))
    assert caught.value.status == STATUS_OUT_OF_RESOURCES


def test_folder_import_is_byte_for_byte_and_reports_other_files(
    source: ImagingSource, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    paths = synthetic.write_study(synthetic.make_study(study_spec()), folder)
    (folder / "README.txt").write_text("not an image")
    report = source.load_directory(folder)
    assert len(report.stored) == len(paths) == 5
    assert [str(p) for p, _ in report.rejected] == [str(folder / "README.txt")]
    for path, record in zip(paths, report.stored, strict=True):
        assert source.store.path(record.path).read_bytes() == path.read_bytes()
    assert len(report.studies) == 1


# -- the C-STORE receiver ----------------------------------------------------------------------


def incoming(source: ImagingSource) -> Path:
    """The folder a listener of ``source`` would receive big data sets into (its own)."""
    folder = source.store.incoming_dir / source.index.owner
    folder.mkdir(exist_ok=True)
    return folder


def receive(source: ImagingSource, ds: pydicom.Dataset, data: bytes, **options: Any) -> Any:
    """Feed a data set to a C-STORE receiver in 1000-byte fragments; (status, comment, stored)."""
    stored: list[str] = []
    receiver = DataSetReceiver(
        source.ingest,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        calling_ae="MODALITY",
        on_stored=lambda record: stored.append(record.sop_instance_uid),
        incoming_dir=incoming(source),
        **options,
    )
    body = synthetic.dataset_bytes(data) if data[128:132] == b"DICM" else data
    for start in range(0, len(body), 1000):
        receiver.write(memoryview(body[start : start + 1000]))
    status, comment = receiver.finish()
    receiver.after_response()  # as the association does once the C-STORE-RSP is sent
    return status, comment, stored


@pytest.mark.parametrize("memory_limit", [1 << 22, 5000])  # held in memory / spilled to a file
def test_receiver_stores_the_data_set_behind_its_own_file_meta(
    source: ImagingSource, memory_limit: int
) -> None:
    ds = one_instance()
    data = synthetic.encode(ds)
    status, comment, stored = receive(source, ds, data, memory_limit=memory_limit)
    assert (status, comment, stored) == (0x0000, None, [ds.SOPInstanceUID])
    record = source.index.instance(str(ds.SOPInstanceUID))
    assert record is not None
    kept = source.store.path(record.path).read_bytes()
    assert synthetic.dataset_bytes(kept) == synthetic.dataset_bytes(data)
    meta = pydicom.dcmread(io.BytesIO(kept), stop_before_pixels=True).file_meta
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.TransferSyntaxUID == ds.file_meta.TransferSyntaxUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert meta.SourceApplicationEntityTitle == "MODALITY"
    assert list(incoming(source).iterdir()) == []


@pytest.mark.parametrize("memory_limit", [1 << 22, 5000])
def test_receiver_answers_the_refusal_status_and_keeps_nothing(
    source: ImagingSource, memory_limit: int
) -> None:
    ds = one_instance()
    del ds.StudyInstanceUID
    status, comment, stored = receive(source, ds, synthetic.encode(ds), memory_limit=memory_limit)
    assert (status, stored) == (0xC001, [])
    assert "StudyInstanceUID" in comment
    status, _comment, _stored = receive(source, one_instance(), b"junk" * 2000)
    assert status == 0xC000
    assert list(source.store.root.rglob("*.dcm")) == []
    assert list(incoming(source).iterdir()) == []


def test_receiver_discard_removes_a_spilled_file(source: ImagingSource) -> None:
    ds = one_instance()
    receiver = DataSetReceiver(
        source.ingest,
        sop_class_uid=str(ds.SOPClassUID),
        sop_instance_uid=str(ds.SOPInstanceUID),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        calling_ae="MODALITY",
        on_stored=lambda record: None,
        incoming_dir=incoming(source),
        memory_limit=100,
    )
    receiver.write(memoryview(b"x" * 1000))
    assert len(list(incoming(source).iterdir())) == 1
    receiver.discard()
    assert list(incoming(source).iterdir()) == []


def test_sweep_removes_only_stale_loose_incoming_files(source: ImagingSource) -> None:
    parent = source.store.incoming_dir
    old, fresh = parent / "c-store-old.dcm", parent / "c-store-new.dcm"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (0, 0))
    owned = incoming(source) / "c-store-owned.dcm"  # a process's own folder is its own
    owned.write_bytes(b"z")
    os.utime(owned, (0, 0))
    assert sweep(parent) == 1
    assert sorted(p.name for p in parent.iterdir()) == sorted(
        ["c-store-new.dcm", source.index.owner]
    )
    assert owned.exists()


# -- storage -----------------------------------------------------------------------------------


def test_uid_syntax() -> None:
    assert is_uid("1.2.840.10008.1.2")
    assert is_uid("0.1")
    for bad in ("", "1..2", "01.2", "1.2.", "1.2a", "../1", "1." * 40 + "1"):
        assert not is_uid(bad), bad


def test_store_refuses_paths_from_bad_uids(tmp_path: Path) -> None:
    store = InstanceStore(tmp_path)
    with pytest.raises(ValueError):
        store.relative_path("1.2", "..", "1.3")


def test_write_is_atomic_and_fsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = InstanceStore(tmp_path / "store", fsync=True)
    synced: list[int] = []
    real = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    relative = store.relative_path("1.2", "1.2.3", "1.2.3.4")
    store.write_bytes(relative, b"first")
    assert len(synced) >= 2  # the file and its folder (plus the new parent folders)
    synced.clear()

    def failing() -> Any:
        yield b"partial"
        raise OSError("disk gone")

    with pytest.raises(OSError):
        store.write(relative, failing())
    assert store.path(relative).read_bytes() == b"first"  # the old copy is untouched
    leftovers = [p.name for p in store.path(relative).parent.iterdir()]
    assert leftovers == ["1.2.3.4.dcm"]


def test_dataset_bytes_skips_the_file_meta() -> None:
    data = synthetic.encode(one_instance())
    body = synthetic.dataset_bytes(data)
    assert data.endswith(body)
    assert pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID
    with pytest.raises(ValueError):
        synthetic.dataset_bytes(b"x" * 200)
