"""The KOS manifest (gateway.imaging.kos): IOD content, TID 2010, and the structure of the NIST
gold manifests of ids_2018-4801a/b/c (structure compared, never UIDs of the manifest itself)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pydicom
import pytest
from pydicom.dataset import Dataset

from gateway.imaging import synthetic
from gateway.imaging.kos import (
    KOS_SOP_CLASS_UID,
    ManifestIds,
    Reference,
    build_manifest,
    content_value_type,
    encode_part10,
    referenced_requests,
)
from tests.unit.imaging.support import (
    SOURCE_UID,
    evidence_instances,
    reference_kos,
    standin_study,
    study_spec,
)

NOW = datetime(2024, 3, 16, 8, 30, 5, tzinfo=UTC)
IDS = ManifestIds(sop_instance_uid="2.25.1001", series_instance_uid="2.25.1002", instance_number=3)


def refs(instances: list[Dataset]) -> list[Reference]:
    return [
        Reference(
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
        )
        for ds in instances
    ]


def manifest(instances: list[Dataset], **options: object) -> Dataset:
    return build_manifest(
        instances[0],
        refs(instances),
        IDS,
        retrieve_location_uid=SOURCE_UID,
        retrieve_ae_title="XDSI_SOURCE",
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def test_manifest_is_a_kos_titled_manifest_in_its_own_series() -> None:
    instances = synthetic.make_study(study_spec())
    kos = manifest(instances)
    assert kos.SOPClassUID == KOS_SOP_CLASS_UID
    assert (kos.SOPInstanceUID, kos.SeriesInstanceUID) == ("2.25.1001", "2.25.1002")
    assert kos.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in instances}
    assert kos.Modality == "KO"
    assert kos.InstanceNumber == 3
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113030",
        "DCM",
        "Manifest",
    )
    assert kos.ValueType == "CONTAINER" and kos.ContinuityOfContent == "SEPARATE"
    template = kos.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2010")
    assert (kos.ContentDate, kos.ContentTime) == ("20240316", "083005")
    assert "ReferencedPerformedProcedureStepSequence" in kos


def test_patient_and_study_attributes_are_copied_unchanged() -> None:
    instances = synthetic.make_study(study_spec())
    kos = manifest(instances)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "StudyDescription",
        "IssuerOfAccessionNumberSequence",
        "SpecificCharacterSet",
    ):
        assert kos[keyword].value == instances[0][keyword].value, keyword


def test_type2_attributes_are_present_even_when_the_study_lacks_them() -> None:
    instances = synthetic.make_study(study_spec())
    header = instances[0]
    for keyword in ("PatientBirthDate", "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        del header[keyword]
    kos = manifest(instances)
    for keyword in ("PatientBirthDate", "ReferringPhysicianName", "StudyID", "AccessionNumber"):
        assert keyword in kos and not kos[keyword].value


def test_evidence_lists_every_instance_by_series_with_retrieve_location() -> None:
    instances = synthetic.make_study(study_spec())
    kos = manifest(instances)
    evidence = kos.CurrentRequestedProcedureEvidenceSequence
    assert len(evidence) == 1 and evidence[0].StudyInstanceUID == instances[0].StudyInstanceUID
    series = evidence[0].ReferencedSeriesSequence
    assert [s.SeriesInstanceUID for s in series] == list(
        dict.fromkeys(ds.SeriesInstanceUID for ds in instances)
    )
    listed = evidence_instances(kos)
    assert listed == {
        ds.SOPInstanceUID: (ds.SeriesInstanceUID, ds.SOPClassUID, SOURCE_UID, "XDSI_SOURCE")
        for ds in instances
    }


def test_content_sequence_has_one_contains_item_per_instance() -> None:
    instances = synthetic.make_study(study_spec())
    kos = manifest(instances)
    assert len(kos.ContentSequence) == len(instances)
    for item, ds in zip(kos.ContentSequence, instances, strict=True):
        assert item.RelationshipType == "CONTAINS"
        assert item.ValueType == "IMAGE"
        reference = item.ReferencedSOPSequence[0]
        assert reference.ReferencedSOPInstanceUID == ds.SOPInstanceUID
        assert reference.ReferencedSOPClassUID == ds.SOPClassUID


@pytest.mark.parametrize(
    ("sop_class", "value_type"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "IMAGE"),  # CT
        ("1.2.840.10008.5.1.4.1.1.66.4", "IMAGE"),  # Segmentation
        ("1.2.840.10008.5.1.4.1.1.481.2", "IMAGE"),  # RT Dose
        ("1.2.840.10008.5.1.4.1.1.9.1.1", "WAVEFORM"),  # 12-lead ECG
        ("1.2.840.10008.5.1.4.1.1.88.11", "COMPOSITE"),  # Basic Text SR
        ("1.2.840.10008.5.1.4.1.1.11.1", "COMPOSITE"),  # Grayscale presentation state
        ("1.2.840.10008.5.1.4.1.1.104.1", "COMPOSITE"),  # Encapsulated PDF
        ("1.2.840.10008.5.1.4.1.1.481.3", "COMPOSITE"),  # RT Structure Set
    ],
)
def test_content_value_type_follows_the_sop_class(sop_class: str, value_type: str) -> None:
    assert content_value_type(sop_class) == value_type


def test_referenced_request_sequence_carries_accession_and_requested_procedure() -> None:
    instances = synthetic.make_study(study_spec(requested_procedure_id="RP-5"))
    requests = referenced_requests(str(instances[0].StudyInstanceUID), instances)
    assert len(requests) == 1
    item = requests[0]
    assert item.StudyInstanceUID == instances[0].StudyInstanceUID
    assert item.AccessionNumber == "ACC-7"
    assert item.RequestedProcedureID == "RP-5"
    assert item.IssuerOfAccessionNumberSequence[0].UniversalEntityID == (
        "1.3.6.1.4.1.21367.13.202.2000"
    )
    for keyword in (
        "PlacerOrderNumberImagingServiceRequest",
        "FillerOrderNumberImagingServiceRequest",
        "RequestedProcedureDescription",
        "RequestedProcedureCodeSequence",
        "ReferencedStudySequence",
    ):
        assert keyword in item  # type 2 (PS3.3 Table C.17-2)
    kos = manifest(instances, requests=requests)
    assert kos.ReferencedRequestSequence[0].RequestedProcedureID == "RP-5"


def test_no_referenced_request_without_accession_or_request() -> None:
    instances = synthetic.make_study(study_spec(accession_number=""))
    assert referenced_requests(str(instances[0].StudyInstanceUID), instances) == []
    assert "ReferencedRequestSequence" not in manifest(instances)


def test_part10_encoding_is_a_valid_explicit_little_endian_file() -> None:
    instances = synthetic.make_study(study_spec())
    data = encode_part10(manifest(instances))
    assert data[128:132] == b"DICM"
    read = pydicom.dcmread(io.BytesIO(data))
    assert read.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert read.file_meta.MediaStorageSOPClassUID == KOS_SOP_CLASS_UID
    assert read.file_meta.MediaStorageSOPInstanceUID == "2.25.1001"
    assert evidence_instances(read) == evidence_instances(manifest(instances))


def test_an_empty_manifest_is_refused() -> None:
    instances = synthetic.make_study(study_spec())
    with pytest.raises(ValueError):
        build_manifest(
            instances[0], [], IDS, retrieve_location_uid=SOURCE_UID, retrieve_ae_title="AE"
        )


# -- the NIST gold manifests (ids_2018-4801a/b/c ValidateKOS) ----------------------------------


def structure(ds: Dataset) -> dict[str, object]:
    """keyword -> VR, or the merged structure of a sequence's items."""
    shape: dict[str, object] = {}
    for element in ds:
        if element.VR == "SQ":
            merged: dict[str, object] = {}
            for item in element.value:
                merged.update(structure(item))
            shape[element.keyword] = merged
        else:
            shape[element.keyword] = element.VR
    return shape


def contains(ours: dict[str, object], gold: dict[str, object], where: str = "") -> list[str]:
    """Elements of the gold structure missing from ours (or of another VR / shape)."""
    problems = []
    for keyword, expected in gold.items():
        path = f"{where}/{keyword}"
        if keyword not in ours:
            problems.append(f"missing {path}")
        elif isinstance(expected, dict):
            if not isinstance(ours[keyword], dict):
                problems.append(f"{path} is not a sequence")
            else:
                problems.extend(contains(ours[keyword], expected, path))  # type: ignore[arg-type]
        elif ours[keyword] != expected:
            problems.append(f"{path}: VR {ours[keyword]} instead of {expected}")
    return problems


@pytest.mark.parametrize("test", ["ids_2018-4801a", "ids_2018-4801b", "ids_2018-4801c"])
def test_manifest_has_the_structure_and_values_of_the_nist_gold_kos(test: str) -> None:
    gold_path = reference_kos(test)
    gold = pydicom.dcmread(gold_path)
    instances = standin_study(gold_path)
    kos = pydicom.dcmread(io.BytesIO(encode_part10(manifest(instances))))
    assert contains(structure(kos), structure(gold)) == []
    # The ValidateKOS checks of the NIST readme, value by value.
    assert kos.SOPClassUID == gold.SOPClassUID
    assert kos.SOPInstanceUID not in {ds.SOPInstanceUID for ds in instances}
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "StudyInstanceUID",
    ):
        assert kos[keyword].value == gold[keyword].value, keyword
    assert kos.Modality == "KO"
    assert kos.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in instances}
    ours = evidence_instances(kos)
    theirs = evidence_instances(gold)
    assert set(ours) == set(theirs)
    for uid, (series, sop_class, _location, ae_title) in ours.items():
        assert (series, sop_class) == theirs[uid][:2]
        assert ae_title
    assert len(kos.ContentSequence) == len(gold.ContentSequence)
