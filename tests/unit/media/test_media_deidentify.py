"""De-identification checked against DICOM PS3.15 Table E.1-1, attribute by attribute: a data set
holding every attribute of the table with an identifying value, de-identified, then every row
walked; plus UIDs, pseudonyms, dates, private and overlay groups, burned-in annotation, the
markers of the profile, and the file path (meta information, transfer syntax, pixel data)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import ImplicitVRLittleEndian

from gateway.imaging import synthetic
from gateway.media.deid_table import TABLE_E1_1
from gateway.media.deidentify import (
    BurnedInAnnotation,
    Deidentifier,
    identifying_words,
    patient_identity,
    table_action,
)

KEY = b"unit test key for de-identification"
SIMPLER = {"X/Z": "Z", "X/D": "D", "Z/D": "D", "X/Z/D": "D", "X/Z/U*": "K"}
PATIENT_NAME, PATIENT_ID = "Identsurname^Identgiven", "IDENTPID77"
TEXT_VRS = {"LO", "SH", "ST", "LT", "UT", "UC", "PN"}


def _rows() -> list[tuple[int, str, str]]:
    """(tag, VR, action) of every row that can sit in a data set (not groups 0000/0002, not
    repeating groups, known to pydicom's dictionary)."""
    rows = []
    for mask in TABLE_E1_1:
        if "x" in mask or mask[:4] in ("0000", "0002"):
            continue
        tag = int(mask, 16)
        try:
            vr = dictionary_VR(tag).split(" or ")[0]
        except KeyError:
            continue
        action = table_action(tag >> 16, tag & 0xFFFF)
        assert action is not None
        rows.append((tag, vr, SIMPLER.get(action, action)))
    return rows


def _value(tag: int, vr: str, action: str) -> Any:
    token = f"IDENT{tag:08X}"
    if vr == "SQ":
        item = Dataset()
        item.PatientName = "Sequence^Identperson"
        item.ReferencedSOPInstanceUID = f"1.2.3.9.{tag}"
        return Sequence([item])
    if action == "C" and vr in TEXT_VRS and vr != "PN":  # a descriptor to clean
        surname = PATIENT_NAME.split("^")[0]
        return surname if vr == "SH" else f"scan of {surname} {PATIENT_ID} ok"
    values: dict[str, Any] = {
        "PN": f"{token}^Person",
        "UI": f"1.2.3.{tag}",
        "DA": "20200115",
        "DT": "20200115101010",
        "TM": "101010",
        "AS": "045Y",
        "CS": "IDENTCS",
        "AE": "IDENTAE",
        "IS": "12345",
        "DS": "12.5",
        "UR": "http://ident.example/x",
    }
    if vr in values:
        return values[vr]
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 7
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b"IDENT-BYTES!"
    return token[:16] if vr == "SH" else token


@pytest.fixture(scope="module")
def walked() -> tuple[Dataset, Dataset, list[tuple[int, str, str]]]:
    rows = _rows()
    assert len(rows) > 500  # the table as generated, nearly all of it known to pydicom
    original = Dataset()
    for tag, vr, action in rows:
        original.add_new(tag, vr, _value(tag, vr, action))
    original.PatientName, original.PatientID = PATIENT_NAME, PATIENT_ID
    original.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    result = copy.deepcopy(original)
    Deidentifier(KEY).deidentify(result)
    return original, result, rows


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, Sequence) and len(value) == 0)


def test_every_row_of_table_e1_1_gets_its_action(walked: tuple[Dataset, Dataset, list]) -> None:
    original, result, rows = walked
    deidentifier = Deidentifier(KEY)
    shift = dt.timedelta(days=deidentifier.shift_days(patient_identity(original)))
    wrong = []
    for tag, vr, action in rows:
        before = original[tag].value
        after = result[tag].value if tag in result else "<absent>"
        if tag in (Tag("PatientName"), Tag("PatientID"), Tag("StudyID")):
            continue  # pseudonym / keyed dummy, checked below
        ok = _acted(action, before, after, deidentifier)
        if action == "C":
            ok = _cleaned(vr, before, after, shift)
        if vr == "SQ" and action in ("K", "C", "D"):
            ok = len(after) == 1 and after[0].PatientName != "Sequence^Identperson"
            ok = ok and after[0].ReferencedSOPInstanceUID == deidentifier.uid(f"1.2.3.9.{tag}")
        if not ok:
            wrong.append(f"{tag:08X} {TABLE_E1_1[f'{tag:08x}'][0]} {vr} {action}: {after!r}")
    assert wrong == []


def _acted(action: str, before: Any, after: Any, deidentifier: Deidentifier) -> bool:
    if action == "X":
        return after == "<absent>"
    if action == "Z":
        return after != "<absent>" and _empty(after)
    if action == "D":
        return after != "<absent>" and not _empty(after) and after != before
    if action == "U":
        return after == deidentifier.uid(before)
    return after != "<absent>"  # K, C: checked further by the caller


def _cleaned(vr: str, before: Any, after: Any, shift: dt.timedelta) -> bool:
    if vr == "DA":
        day = dt.datetime.strptime(before, "%Y%m%d").date() - shift
        return after == day.strftime("%Y%m%d")
    if vr == "DT":
        day = dt.datetime.strptime(before[:8], "%Y%m%d").date() - shift
        return after == day.strftime("%Y%m%d") + before[8:]
    if vr in TEXT_VRS:
        return "Identsurname" not in str(after) and PATIENT_ID not in str(after)
    return after == before  # TM: whole days do not move a time


def test_no_identifying_value_is_left(walked: tuple[Dataset, Dataset, list]) -> None:
    _original, result, _rows = walked
    text = str(result)
    for word in ("IDENT0", "Identsurname", "Identgiven", "Identperson", PATIENT_ID, "20200115"):
        assert word not in text
    pseudonym = Deidentifier(KEY).pseudonym(patient_identity(_original))
    assert result.PatientName == result.PatientID == pseudonym
    assert result.StudyID and "IDENT" not in result.StudyID


def test_the_profile_is_declared(walked: tuple[Dataset, Dataset, list]) -> None:
    _original, result, _rows = walked
    assert result.PatientIdentityRemoved == "YES"
    assert result.LongitudinalTemporalInformationModified == "MODIFIED"
    sequence = result.DeidentificationMethodCodeSequence
    codes = [(c.CodeValue, c.CodingSchemeDesignator) for c in sequence]
    assert codes == [("113100", "DCM"), ("113107", "DCM"), ("113105", "DCM")]
    assert all(len(v) <= 64 for v in result.DeidentificationMethod)


def test_uids_and_pseudonyms_are_keyed() -> None:
    one, again, other = Deidentifier(KEY), Deidentifier(KEY), Deidentifier(b"x" * 16 + KEY)
    uid = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    assert one.uid(uid) == again.uid(uid) != other.uid(uid)
    assert one.uid(uid).startswith("2.25.") and len(one.uid(uid)) <= 64
    number = int(one.uid(uid)[5:])
    assert (number >> 76) & 0xF == 8 and (number >> 62) & 0x3 == 0b10  # UUID version 8, RFC 9562
    assert one.pseudonym("A^^^&1.2&ISO") == again.pseudonym("A^^^&1.2&ISO")
    assert one.pseudonym("A^^^&1.2&ISO") != other.pseudonym("A^^^&1.2&ISO")
    assert 1 <= one.shift_days("A") <= 3650
    with pytest.raises(ValueError):
        Deidentifier(b"short")


def test_private_and_overlay_groups_go_whole() -> None:
    ds = Dataset()
    ds.PatientID = "P"
    ds.add_new(0x00090010, "LO", "ACME")
    ds.add_new(0x00091001, "LO", "secret")
    ds.add_new(0x60000010, "US", 16)  # Overlay Rows: not in the table, but its group goes
    ds.add_new(0x60003000, "OW", b"\x00" * 32)
    ds.add_new(0x60004000, "LT", "comment")
    inner = Dataset()
    inner.add_new(0x00111001, "LO", "private in an item")
    ds.ReferencedImageSequence = Sequence([inner])
    Deidentifier(KEY).deidentify(ds)
    assert not [e.tag for e in ds if e.tag.group in (0x0009, 0x6000)]
    assert len(ds.ReferencedImageSequence[0]) == 0


def test_burned_in_annotation_is_refused_unless_allowed() -> None:
    ds = Dataset()
    ds.PatientID, ds.BurnedInAnnotation = "P", "YES"
    with pytest.raises(BurnedInAnnotation):
        Deidentifier(KEY).deidentify(ds)
    Deidentifier(KEY, allow_burned_in=True).deidentify(ds)
    assert ds.PatientIdentityRemoved == "YES" and ds.BurnedInAnnotation == "YES"


def test_descriptors_keep_what_identifies_no_one() -> None:
    ds = Dataset()
    ds.PatientName, ds.PatientID = "Doe^Jane", "EXT-123"
    ds.PatientBirthDate = "19800101"
    ds.InstitutionName = "St Elsewhere"
    ds.StudyDescription = "CT HEAD w/o contrast, Doe (EXT-123) 1980-01-01 St Elsewhere"
    assert {"Doe", "Jane", "EXT-123", "1980-01-01", "Elsewhere"} <= identifying_words(ds)
    Deidentifier(KEY).deidentify(ds)
    assert ds.StudyDescription == "CT HEAD w/o contrast, *** (***) *** ***"


def test_a_file_keeps_its_syntax_and_pixel_data(tmp_path: Path) -> None:
    spec = synthetic.StudySpec(
        patient_id="P9",
        series=(
            synthetic.SeriesSpec(modality="MR", count=1, transfer_syntax=ImplicitVRLittleEndian),
        ),
    )
    source = synthetic.write_study(synthetic.make_study(spec), tmp_path / "in")[0]
    target = tmp_path / "out.dcm"
    study, series, sop = Deidentifier(KEY).deidentify_file(source, target)
    before, after = dcmread(source), dcmread(target)
    assert after.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    assert after.file_meta.MediaStorageSOPInstanceUID == sop == after.SOPInstanceUID
    assert (study, series) == (after.StudyInstanceUID, after.SeriesInstanceUID)
    assert sop == Deidentifier(KEY).uid(before.SOPInstanceUID)
    assert after.PixelData == before.PixelData
    assert after.SOPClassUID == before.SOPClassUID  # not in the table: kept
    with pytest.raises(ValueError, match="not a readable DICOM file"):
        (tmp_path / "junk").write_bytes(b"junk")
        Deidentifier(KEY).deidentify_file(tmp_path / "junk", tmp_path / "x.dcm")
