"""IOCM Rejection Notes (gateway.imaging.rejection): each of the four CID 7011 titles makes a KOS
that dciodvfy finds no error nor warning in, and that reads back as the note it is; a manifest,
or a KOS titled with a code of another scheme, is not a Rejection Note."""

from __future__ import annotations

import io

import pydicom
import pytest

from gateway.imaging import synthetic
from gateway.imaging.kos import Reference, encode_part10
from gateway.imaging.rejection import (
    REJECTION_TITLES,
    build_note,
    encode_note,
    read_note,
    rejection_reason,
)
from tests.support.dciodvfy import validate
from tests.unit.imaging.support import SOURCE_UID, study_spec


def _study() -> list[pydicom.Dataset]:
    return synthetic.make_study(study_spec())


def _references(instances: list[pydicom.Dataset]) -> list[Reference]:
    return [
        Reference(
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
        )
        for ds in instances
    ]


@pytest.mark.parametrize("reason", sorted(REJECTION_TITLES))
def test_each_title_makes_a_valid_note_that_reads_back(reason: str) -> None:
    instances = _study()
    rejected = instances[:2]
    note = build_note(
        instances[0],
        _references(rejected),
        reason,
        retrieve_location_uid=SOURCE_UID,
        retrieve_ae_title="XDSI_SOURCE",
    )
    report = validate(encode_note(note))
    assert not report.errors, report.text
    assert not report.warnings, report.text
    parsed = read_note(pydicom.dcmread(io.BytesIO(encode_note(note))))
    assert parsed is not None
    assert parsed.reason == reason
    assert parsed.study_instance_uid == str(instances[0].StudyInstanceUID)
    assert [r.sop_instance_uid for r in parsed.rejected] == [
        str(ds.SOPInstanceUID) for ds in rejected
    ]
    title = note.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        reason,
        "DCM",
        REJECTION_TITLES[reason],
    )
    # its own new series, never one of the study's
    assert note.SeriesInstanceUID not in {str(ds.SeriesInstanceUID) for ds in instances}


def test_a_manifest_or_another_scheme_is_not_a_note() -> None:
    instances = _study()
    note = build_note(
        instances[0],
        _references(instances),
        "113001",
        retrieve_location_uid=SOURCE_UID,
        retrieve_ae_title="XDSI_SOURCE",
    )
    assert rejection_reason(note) == "113001"
    note.ConceptNameCodeSequence[0].CodingSchemeDesignator = "99LOCAL"
    assert read_note(note) is None
    note.ConceptNameCodeSequence[0].CodingSchemeDesignator = "DCM"
    note.ConceptNameCodeSequence[0].CodeValue = "113030"  # Manifest
    assert read_note(pydicom.dcmread(io.BytesIO(encode_part10(note)))) is None
    assert read_note(instances[0]) is None  # an image


def test_an_unknown_reason_is_refused() -> None:
    instances = _study()
    with pytest.raises(ValueError, match="113001"):
        build_note(
            instances[0],
            _references(instances),
            "113002",
            retrieve_location_uid=SOURCE_UID,
            retrieve_ae_title="XDSI_SOURCE",
        )
