"""The folder layout, instance checks, atomic writes, resumability and the DICOMDIR."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from gateway.consumer.store import (
    PARTIAL,
    DicomdirDestination,
    FolderDestination,
    check_instance,
    instance_path,
    patient_folder,
    safe_component,
)
from gateway.imaging import synthetic
from gateway.soap.message import Attachment
from tests.unit.consumer.consumer_support import PATIENT, study


def test_layout_is_patient_study_series_instance_and_cannot_escape(tmp_path: Path) -> None:
    _, refs = study(1)
    path = instance_path(tmp_path, PATIENT, refs[0])
    assert path.relative_to(tmp_path).parts == (
        "PAT-1_1.3.6.1.4.1.21367.13.20.1000",
        refs[0].study_instance_uid,
        refs[0].series_instance_uid,
        refs[0].sop_instance_uid + ".dcm",
    )
    assert safe_component("../../etc/passwd") == "_.._etc_passwd"
    assert safe_component("..") == "_"
    assert safe_component("a b/c\\d") == "a_b_c_d"
    assert patient_folder("X") == "X"
    assert patient_folder("ID^^^&1.2.3&ISO") == "ID_1.2.3"
    assert patient_folder("ID^^^NS") == "ID_NS"


def test_check_instance_finds_wrong_uid_truncation_and_garbage() -> None:
    instances, _ = study(1)
    data = synthetic.encode(instances[0])
    uid = str(instances[0].SOPInstanceUID)
    assert check_instance(data, uid) is None
    assert "not 1.2.3" in (check_instance(data, "1.2.3") or "")
    assert "truncated" in (check_instance(data[:-5], uid) or "")
    assert "not a DICOM" in (check_instance(b"garbage" * 40, uid) or "")


def test_folder_destination_places_good_files_and_refuses_corrupt_ones(tmp_path: Path) -> None:
    instances, refs = study(3)
    destination = FolderDestination(tmp_path / "out")
    data = [synthetic.encode(ds) for ds in instances]
    items = [
        (refs[0], Attachment.from_bytes(data[0])),
        (refs[1], Attachment.from_bytes(data[1][:-9])),  # truncated
        (refs[2], Attachment.from_bytes(data[0])),  # another instance's bytes
    ]
    problems = destination.store(PATIENT, items)
    assert set(problems) == {refs[1].sop_instance_uid, refs[2].sop_instance_uid}
    assert destination.path_of(PATIENT, refs[0]).read_bytes() == data[0]
    assert not destination.path_of(PATIENT, refs[1]).exists()
    assert not destination.path_of(PATIENT, refs[2]).exists()
    assert list(destination.spool_dir.iterdir()) == []  # no temporary left behind
    assert destination.existing(PATIENT, refs) == {refs[0].sop_instance_uid}


def test_existing_ignores_damaged_files_so_a_rerun_fetches_them_again(tmp_path: Path) -> None:
    instances, refs = study(2)
    destination = FolderDestination(tmp_path)
    destination.store(
        PATIENT,
        [
            (r, Attachment.from_bytes(synthetic.encode(ds)))
            for r, ds in zip(refs, instances, strict=True)
        ],
    )
    assert destination.existing(PATIENT, refs) == {r.sop_instance_uid for r in refs}
    damaged = destination.path_of(PATIENT, refs[1])
    damaged.write_bytes(damaged.read_bytes()[:-20])
    assert destination.existing(PATIENT, refs) == {refs[0].sop_instance_uid}
    assert destination.finish() == []
    assert not (tmp_path / PARTIAL).exists()


def test_spooled_attachments_are_moved_not_copied(tmp_path: Path) -> None:
    instances, refs = study(1)
    destination = FolderDestination(tmp_path)
    spooled = destination.spool_dir / "part-1"
    spooled.write_bytes(synthetic.encode(instances[0]))
    attachment = Attachment.from_file(spooled, owned=True)
    assert destination.store(PATIENT, [(refs[0], attachment)]) == {}
    assert not spooled.exists()
    assert destination.path_of(PATIENT, refs[0]).is_file()


def test_dicomdir_file_set_is_written_and_recognised_on_rerun(tmp_path: Path) -> None:
    instances, refs = study(4, series=2)
    pairs = list(zip(refs, instances, strict=True))
    first = DicomdirDestination(tmp_path)
    assert (
        first.store(
            PATIENT, [(r, Attachment.from_bytes(synthetic.encode(ds))) for r, ds in pairs[:5]]
        )
        == {}
    )
    [note] = first.finish()
    assert "DICOMDIR written" in note and "(5 instances)" in note
    dicomdir = dcmread(tmp_path / "DICOMDIR")
    assert dicomdir.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10"
    assert not (tmp_path / PARTIAL).exists()
    second = DicomdirDestination(tmp_path)
    assert second.existing(PATIENT, refs) == {r.sop_instance_uid for r in refs[:5]}
    second.store(PATIENT, [(r, Attachment.from_bytes(synthetic.encode(ds))) for r, ds in pairs[5:]])
    second.finish()
    third = DicomdirDestination(tmp_path)
    assert third.existing(PATIENT, refs) == {r.sop_instance_uid for r in refs}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "DICOMDIR"]
    assert len(files) == 8
    assert all(len(part) <= 8 for f in files for part in f.relative_to(tmp_path).parts)


@pytest.mark.parametrize("broken", [b"", b"DICM"])
def test_check_instance_of_empty_or_tiny_files(broken: bytes) -> None:
    assert check_instance(broken, "1.2") is not None
