"""Manifest metadata (gateway.imaging.entry): the DocumentEntry of RAD TF-3 §4.68.4.1.2.3.2,
exactly, and a submission that passes ITI-41 validation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.imaging import synthetic
from gateway.imaging.codes import (
    DCM,
    DICOM_UID_REGISTRY,
    SCT,
    ManifestCodes,
    body_part_code,
    modality_code,
    scheme_oid,
)
from gateway.imaging.entry import (
    ManifestDocument,
    build_document_entry,
    build_submission,
    event_codes,
    person_name,
    reference_ids,
    service_start_time,
    source_patient_info,
    type_code,
)
from gateway.imaging.patient import PatientMapping
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code
from gateway.metadata.validate import ITI_41, validate_submission
from tests.unit.imaging.support import DOMAIN_OID, study_spec

NOW = datetime(2024, 3, 16, 8, 30, 5, tzinfo=UTC)
PATIENT = PatientMapping(
    patient_id=f"PAT-0042^^^&{DOMAIN_OID}&ISO", source_patient_id="PAT-0042^^^&1.2.3&ISO"
)
DOCUMENT = ManifestDocument(
    unique_id="2.25.77", entry_uuid="urn:uuid:8f1f7a2e-0b7e-4c52-9d7e-2d7f0f9e2a11"
)


def put(ds: Dataset, keyword: str, value: str) -> None:
    """Set a value as a peer might send it, without pydicom's write-time validation."""
    tag = tag_for_keyword(keyword)
    assert tag is not None
    ds.add(DataElement(tag, dictionary_VR(tag), value, validation_mode=config.IGNORE))


def series_headers(spec: synthetic.StudySpec) -> list[Dataset]:
    instances = synthetic.make_study(spec)
    return list({str(ds.SeriesInstanceUID): ds for ds in reversed(instances)}.values())[::-1]


def test_document_entry_has_exactly_the_manifest_metadata() -> None:
    headers = series_headers(study_spec(procedure_code=("CTCHEST", "99LOCAL", "CT of chest")))
    entry = build_document_entry(headers[0], headers, PATIENT, DOCUMENT, ManifestCodes(), now=NOW)
    assert entry.entry_uuid == DOCUMENT.entry_uuid
    assert entry.unique_id == "2.25.77"
    assert entry.object_type == v.DOCUMENT_ENTRY_STABLE
    assert entry.mime_type == "application/dicom"
    assert entry.format_code == Code(
        "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document"
    )
    assert entry.class_code == Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
    assert entry.confidentiality_code == [Code("N", "2.16.840.1.113883.5.25", "normal")]
    assert entry.healthcare_facility_type_code == Code("22232009", SCT, "Hospital")
    assert entry.practice_setting_code == Code(
        "309964003", SCT, "Radiology department (environment)"
    )
    assert entry.type_code == Code("CTCHEST", "99LOCAL", "CT of chest")  # Procedure Code Seq.
    assert entry.event_code_list == [
        Code("CT", DCM, "Computed Tomography"),
        Code("MR", DCM, "Magnetic Resonance"),
        Code("43799004", SCT, "Chest"),
        Code("69536005", SCT, "Head"),
        Code("818981001", SCT, "Abdomen"),
    ]
    study_uid = headers[0].StudyInstanceUID
    assert entry.reference_id_list == [
        f"{study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        "ACC-7^^^&1.3.6.1.4.1.21367.13.202.2000&ISO^urn:ihe:iti:xds:2013:accession",
    ]
    assert entry.service_start_time == "20240315142530"
    assert entry.creation_time == "20240316083005"
    assert entry.patient_id == f"PAT-0042^^^&{DOMAIN_OID}&ISO"
    assert entry.source_patient_id == "PAT-0042^^^&1.2.3&ISO"
    assert entry.source_patient_info == [
        "PID-3|PAT-0042^^^&1.2.3&ISO",
        "PID-5|Doe^Jane^Q^III^Dr",
        "PID-7|19800214",
        "PID-8|F",
    ]
    assert entry.language_code == "en-US"
    assert entry.title == "CT and MR of the chest"
    assert entry.repository_unique_id is None  # the repository fills it in (ITI-41)


def test_configured_codes_replace_the_defaults() -> None:
    codes = ManifestCodes(
        class_code=Code("C", "S1"),
        type_code=Code("T", "S2"),
        confidentiality_codes=(Code("R", "2.16.840.1.113883.5.25"),),
        healthcare_facility_type_code=Code("F", "S3"),
        practice_setting_code=Code("P", "S4"),
        language_code="de-CH",
        accession_issuer="1.2.3.9",
    )
    headers = series_headers(study_spec(accession_issuer_oid=""))
    entry = build_document_entry(headers[0], headers, PATIENT, DOCUMENT, codes, now=NOW)
    assert (entry.class_code, entry.type_code) == (Code("C", "S1"), Code("T", "S2"))
    assert entry.confidentiality_code == [Code("R", "2.16.840.1.113883.5.25")]
    assert entry.healthcare_facility_type_code == Code("F", "S3")
    assert entry.practice_setting_code == Code("P", "S4")
    assert entry.language_code == "de-CH"
    assert entry.reference_id_list[1] == "ACC-7^^^&1.2.3.9&ISO^urn:ihe:iti:xds:2013:accession"


def test_submission_passes_iti41_validation() -> None:
    headers = series_headers(study_spec())
    codes = ManifestCodes()
    entry = build_document_entry(headers[0], headers, PATIENT, DOCUMENT, codes, now=NOW)
    submission = build_submission(
        entry, codes, source_id="1.2.3.4", submission_set_unique_id="2.25.78", now=NOW
    )
    assert validate_submission(submission, rules=ITI_41, repository=True) == frozenset()
    submission_set = submission.submission_set
    assert submission_set is not None
    assert submission_set.patient_id == entry.patient_id
    assert (submission_set.source_id, submission_set.unique_id) == ("1.2.3.4", "2.25.78")
    assert submission_set.submission_time == "20240316083005"
    [member] = submission.associations
    assert member.association_type == v.HAS_MEMBER
    assert (member.source_object, member.target_object) == (
        submission_set.entry_uuid,
        entry.entry_uuid,
    )
    assert member.submission_set_status == "Original"


def test_replacement_adds_rplc_to_the_previous_entry() -> None:
    headers = series_headers(study_spec())
    codes = ManifestCodes()
    entry = build_document_entry(headers[0], headers, PATIENT, DOCUMENT, codes, now=NOW)
    old = "urn:uuid:0b0b0b0b-1111-4222-8333-444444444444"
    submission = build_submission(
        entry, codes, source_id="1.2.3", submission_set_unique_id="2.25.9", now=NOW, replaces=old
    )
    external = validate_submission(submission, rules=ITI_41, repository=True)
    assert external == frozenset({old})  # the registry resolves the replaced entry
    rplc = [a for a in submission.associations if a.association_type == v.RPLC]
    assert [(a.source_object, a.target_object) for a in rplc] == [(entry.entry_uuid, old)]


@pytest.mark.parametrize(
    ("date", "time", "offset", "expected"),
    [
        ("20240315", "142530.123", None, "20240315142530"),
        ("20240315", "1425", None, "202403151425"),
        ("20240315", "14", None, "2024031514"),
        ("20240315", "", None, "20240315"),
        ("20240315", "14:25:30", None, "20240315142530"),
        ("20240315", "0130", "+0200", "202403142330"),  # to UTC across midnight
        ("20240315", "233000", "-0500", "20240316043000"),
        ("", "1200", None, None),
        ("2024031", "1200", None, None),
    ],
)
def test_service_start_time_from_study_date_and_time(
    date: str, time: str, offset: str | None, expected: str | None
) -> None:
    ds = Dataset()
    put(ds, "StudyDate", date)
    put(ds, "StudyTime", time)
    if offset:
        ds.TimezoneOffsetFromUTC = offset
    assert service_start_time(ds) == expected


def test_anatomic_region_sequence_wins_over_body_part_examined() -> None:
    ds = Dataset()
    ds.Modality, ds.BodyPartExamined = "CT", "CHEST"
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = (
        "T-D3000",
        "SRT",
        "Chest",
    )
    ds.AnatomicRegionSequence = Sequence([region])
    assert event_codes([ds]) == [
        Code("CT", DCM, "Computed Tomography"),
        Code("T-D3000", SCT, "Chest"),
    ]


def test_event_codes_skip_non_acquisition_modalities_and_duplicates() -> None:
    headers = []
    for modality, part in (("CT", "CHEST"), ("KO", ""), ("SR", "CHEST"), ("CT", "chest")):
        ds = Dataset()
        ds.Modality = modality
        put(ds, "BodyPartExamined", part)
        headers.append(ds)
    assert event_codes(headers) == [
        Code("CT", DCM, "Computed Tomography"),
        Code("43799004", SCT, "Chest"),
    ]


def test_code_tables() -> None:
    assert modality_code("mr") == Code("MR", DCM, "Magnetic Resonance")
    assert modality_code("PR") is None
    assert body_part_code("HEAD NECK") == Code("774007", SCT, "Head and Neck")
    assert body_part_code("UNKNOWNPART") is None
    assert scheme_oid("LN") == "2.16.840.1.113883.6.1"
    assert scheme_oid("99LOCAL") == "99LOCAL"
    assert scheme_oid("99LOCAL", "1.2.3.4") == "1.2.3.4"
    assert DICOM_UID_REGISTRY == "1.2.840.10008.2.6.1"


def test_type_code_falls_back_to_the_configured_default() -> None:
    default = Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
    assert type_code(Dataset(), default) == default
    ds = Dataset()
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "24627-2", "LN", "Chest CT"
    ds.ProcedureCodeSequence = Sequence([item])
    assert type_code(ds, default) == Code("24627-2", "2.16.840.1.113883.6.1", "Chest CT")


def test_reference_ids_without_accession_number() -> None:
    ds = Dataset()
    ds.StudyInstanceUID, ds.AccessionNumber = "1.2.3", ""
    assert reference_ids(ds, "1.9") == ["1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID"]


def test_accession_without_any_issuer_has_no_assigning_authority() -> None:
    ds = Dataset()
    ds.StudyInstanceUID, ds.AccessionNumber = "1.2.3", "A&1"
    assert reference_ids(ds, "")[1] == "A\\T\\1^^^^urn:ihe:iti:xds:2013:accession"


def test_person_name_and_source_patient_info() -> None:
    assert person_name("Yamada^Tarou=山田^太郎") == "Yamada^Tarou"
    assert person_name("") == ""
    ds = Dataset()
    put(ds, "PatientSex", "X")
    put(ds, "PatientBirthDate", "1980")
    assert source_patient_info(ds, "P^^^&1.2&ISO") == ["PID-3|P^^^&1.2&ISO"]


def test_entry_needs_a_domain_patient_id() -> None:
    headers = series_headers(study_spec())
    held = PatientMapping(patient_id=None, source_patient_id="L^^^HOSP", reason="unknown")
    with pytest.raises(ValueError):
        build_document_entry(headers[0], headers, held, DOCUMENT, ManifestCodes(), now=NOW)
