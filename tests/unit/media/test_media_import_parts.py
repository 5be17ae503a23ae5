"""The pieces of media import and export without a gateway: reading a medium (through its
DICOMDIR, case-insensitively, or file by file), reconciliation and coercion (IRWF.b, PS3.3
C.12.1.1.9), the de-identification key file, and the PS3.10 File ID check."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet

from gateway.imaging import synthetic
from gateway.media.deid_key import DeidKeyError, load_key
from gateway.media.inventory import MediaPatient, read_media
from gateway.media.pdi import MediaLayoutError, check_file_ids
from gateway.media.reconcile import (
    DomainPatient,
    ReconciliationError,
    coerce,
    match_fed,
    parse_domain_patient,
)

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"


def _fileset(folder: Path, count: int = 2) -> list[Path]:
    spec = synthetic.StudySpec(
        patient_id="EXT-1", series=(synthetic.SeriesSpec(modality="CT", count=count),)
    )
    sources = synthetic.write_study(synthetic.make_study(spec), folder.parent / "src")
    fileset = FileSet()
    for path in sources:
        fileset.add(path)
    fileset.write(folder)
    stage = getattr(fileset, "_stage", {}).get("t")
    if stage is not None:
        stage.cleanup()
    return sources


def test_a_medium_is_read_through_its_dicomdir_whatever_the_case(tmp_path: Path) -> None:
    medium = tmp_path / "cd"
    _fileset(medium, 2)
    (medium / "VIEWER.EXE").write_bytes(b"MZ not DICOM")  # not referenced: ignored
    for path in sorted(medium.rglob("*"), key=lambda p: -len(p.parts)):  # as Linux mounts ISO
        path.rename(path.with_name(path.name.lower()))
    inventory = read_media(medium)
    assert inventory.through_dicomdir and len(inventory.instances) == 2 and not inventory.refused
    assert inventory.patients()[0].patient_id == "EXT-1"

    missing = next(medium.rglob("im000001"))
    missing.unlink()
    inventory = read_media(medium)
    assert len(inventory.instances) == 1
    assert inventory.refused[0][1] == "listed in the DICOMDIR but not on the medium"


def test_a_folder_without_dicomdir_is_read_file_by_file(tmp_path: Path) -> None:
    sources = _fileset(tmp_path / "unused", 2)
    (tmp_path / "src" / "readme.txt").write_text("hello")
    inventory = read_media(tmp_path / "src")
    assert not inventory.through_dicomdir
    assert {i.path for i in inventory.instances} == set(sources)
    assert [(p.name, r.startswith("not a DICOM file")) for p, r in inventory.refused] == [
        ("readme.txt", True)
    ]
    with pytest.raises(NotADirectoryError):
        read_media(sources[0])


@dataclass(frozen=True)
class Fed:
    patient_id: str
    family_name: str | None
    given_name: str | None
    birth_date: str | None
    sex: str | None


class Directory:
    def __init__(self, *fed: Fed) -> None:
        self.fed = fed
        self.asked: list[dict[str, str]] = []

    def find_by_demographics(self, **wanted: str) -> list[Fed]:
        self.asked.append(wanted)
        return list(self.fed)


JANE = MediaPatient(
    patient_id="EXT-1", issuer="HOSP", name="DOE^JANE", birth_date="19800101", sex="F"
)


def test_match_fed_uses_one_domain_candidate_and_refuses_others() -> None:
    one = Fed(f"D1^^^&{DOMAIN}&ISO", "Doe", "Jane", "19800101", "F")
    directory = Directory(one, Fed("L1^^^&9.9&ISO", "Doe", "Jane", "19800101", "F"))
    assert match_fed(JANE, directory, DOMAIN) == DomainPatient(patient_id="D1", domain_oid=DOMAIN)
    assert directory.asked == [
        {"family_name": "DOE", "given_name": "JANE", "birth_date": "19800101", "sex": "F"}
    ]
    two = Directory(one, Fed(f"D2^^^&{DOMAIN}&ISO", "Doe", "Jane", "19800101", "F"))
    with pytest.raises(ReconciliationError, match="2 patients fed by ITI-8 match") as raised:
        match_fed(JANE, two, DOMAIN)
    assert "candidate D1^^^" in str(raised.value) and "candidate D2^^^" in str(raised.value)
    with pytest.raises(ReconciliationError, match="no patient fed by ITI-8"):
        match_fed(JANE, Directory(), DOMAIN)
    with pytest.raises(ReconciliationError, match="has no birth date"):
        match_fed(MediaPatient(patient_id="X", name="A^B", sex="F"), directory, DOMAIN)
    with pytest.raises(ReconciliationError, match="no registry"):
        match_fed(JANE, None, DOMAIN)
    with pytest.raises(ReconciliationError, match="not the affinity domain"):
        parse_domain_patient("D1^^^&9.9&ISO", DOMAIN)


def test_coerce_keeps_the_media_identity_and_nothing_else_changes() -> None:
    ds = Dataset()
    ds.PatientID, ds.IssuerOfPatientID, ds.PatientName = "EXT-1", "HOSP", "DOE^JANE"
    ds.StudyDescription = "kept"
    ds.PixelData = b"\x01\x02"
    target = DomainPatient(patient_id="D1", domain_oid=DOMAIN)
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    coerce(ds, target, now=moment)

    assert ds.PatientID == "D1" and "IssuerOfPatientID" not in ds
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == DOMAIN
    assert ds.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityIDType == "ISO"
    other = ds.OtherPatientIDsSequence[0]
    assert (other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID) == (
        "EXT-1",
        "HOSP",
        "TEXT",
    )
    item = ds.OriginalAttributesSequence[0]
    assert item.AttributeModificationDateTime == "20240506070809+0000"
    assert (item.ReasonForTheAttributeModification, item.SourceOfPreviousValues) == (
        "COERCE",
        "HOSP",
    )
    prior = item.ModifiedAttributesSequence[0]
    assert prior.PatientID == "EXT-1" and prior.IssuerOfPatientID == "HOSP"
    assert len(prior.IssuerOfPatientIDQualifiersSequence) == 0  # absent before: zero length
    assert len(prior.OtherPatientIDsSequence) == 0
    assert ds.PatientName == "DOE^JANE" and ds.StudyDescription == "kept"
    assert ds.PixelData == b"\x01\x02"

    coerce(ds, target, now=moment)  # a second coercion adds history, not a second other id
    assert len(ds.OtherPatientIDsSequence) == 2  # D1 (domain) was the id before this one
    assert len(ds.OriginalAttributesSequence) == 2


def test_the_key_is_created_once_owner_only(tmp_path: Path) -> None:
    key = load_key(None, tmp_path)
    path = tmp_path / "media" / "deid.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_key(None, tmp_path) == key and len(key) == 64
    assert load_key("a given key of 20 chars", tmp_path) == b"a given key of 20 chars"
    (tmp_path / "k").write_text("key from a file, long enough\n")
    assert load_key(f"@{tmp_path / 'k'}", tmp_path) == b"key from a file, long enough"
    with pytest.raises(DeidKeyError, match="at least 16"):
        load_key("short", tmp_path)
    with pytest.raises(DeidKeyError, match="cannot read"):
        load_key(f"@{tmp_path / 'none'}", tmp_path)


def test_file_ids_are_checked(tmp_path: Path) -> None:
    _fileset(tmp_path / "m", 2)
    assert check_file_ids(tmp_path / "m") == 2
    dicomdir = dcmread(tmp_path / "m" / "DICOMDIR")
    record = next(r for r in dicomdir.DirectoryRecordSequence if "ReferencedFileID" in r)
    record.ReferencedFileID = ["PT000000", "ST000000", "SE000000", "IMAGE0001"]  # 9 characters
    dicomdir.save_as(tmp_path / "m" / "DICOMDIR")
    with pytest.raises(MediaLayoutError, match=r"breaks PS3\.10"):
        check_file_ids(tmp_path / "m")
