"""David Clunie's ``dciodvfy`` (dicom3tools) finds no error in the KOS manifests the gateway
builds, nor in any instance the synthetic study generator (tests, demo, benchmarks) makes.

Warnings are checked too: ours are all fixed, so every test expects none except these, which come
from the data a manifest must copy unchanged (RAD TF-3 §4.68.4.1.2.2: patient and study
attributes as in the study's instances), not from the gateway:

* "Retired Person Name form" for the NIST ids_2018-4801b/c patient names (``C3N-00953``,
  ``TCGA-G4-6304``: identifiers used as names, without the ``^`` of PS3.5 §6.2's PN form).

The IOD checks: PS3.3 §A.35.4 (Key Object Selection Document), and the image IODs of
gateway/imaging/synthetic_modules.py.
"""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from gateway.imaging import synthetic
from gateway.imaging.kos import (
    ManifestIds,
    Reference,
    build_manifest,
    encode_part10,
    referenced_requests,
)
from tests.support.dciodvfy import Report, validate
from tests.unit.imaging.support import SOURCE_UID, reference_kos, standin_study, study_spec

IDS = ManifestIds(sop_instance_uid="2.25.1001", series_instance_uid="2.25.1002")
# The one warning expected on the NIST stand-ins (see the module docstring).
RETIRED_PN_FORM = "Retired Person Name form"

SYNTAXES = {
    "explicit": synthetic.ExplicitVRLittleEndian,
    "implicit": synthetic.ImplicitVRLittleEndian,
    "deflated": synthetic.DeflatedExplicitVRLittleEndian,
    "jpeg": synthetic.JPEGBaseline8Bit,
}


def clean(report: Report, allowed_warning: str | None = None) -> None:
    assert report.errors == [], report.text
    unexpected = [w for w in report.warnings if not allowed_warning or allowed_warning not in w]
    assert unexpected == [], report.text


def references(instances: list[Dataset]) -> list[Reference]:
    return [
        Reference(
            sop_class_uid=str(ds.SOPClassUID),
            sop_instance_uid=str(ds.SOPInstanceUID),
            series_instance_uid=str(ds.SeriesInstanceUID),
        )
        for ds in instances
    ]


def manifest(instances: list[Dataset], extra: tuple[Reference, ...] = ()) -> bytes:
    """The KOS the publisher builds: the first instance's header, every instance listed, the
    Referenced Request Sequence from the instances."""
    study_uid = str(instances[0].StudyInstanceUID)
    return encode_part10(
        build_manifest(
            instances[0],
            [*references(instances), *extra],
            IDS,
            retrieve_location_uid=SOURCE_UID,
            retrieve_ae_title="XDSI_SOURCE",
            requests=referenced_requests(study_uid, instances),
        )
    )


# -- the synthetic instances -------------------------------------------------------------------


# Every modality in every syntax but JPEG Baseline for CT and MR (12-16 bit: refused, below).
COMBINATIONS = [
    (modality, syntax)
    for modality in synthetic.SOP_CLASSES
    for syntax in SYNTAXES
    if not (modality in ("CT", "MR") and syntax == "jpeg")
]


@pytest.mark.parametrize(("modality", "syntax"), COMBINATIONS)
def test_every_synthetic_instance_is_valid(modality: str, syntax: str) -> None:
    spec = synthetic.StudySpec(
        series=(synthetic.SeriesSpec(modality=modality, count=2, transfer_syntax=SYNTAXES[syntax]),)
    )
    for ds in synthetic.make_study(spec):
        clean(validate(synthetic.encode(ds)))


def test_a_16_bit_modality_is_refused_in_jpeg_baseline() -> None:
    with pytest.raises(ValueError, match="CT series cannot be JPEG Baseline"):
        synthetic.SeriesSpec(modality="CT", count=1, transfer_syntax=synthetic.JPEGBaseline8Bit)


def test_instances_with_every_optional_identifier_are_valid() -> None:
    spec = study_spec(
        issuer_of_patient_id="HOSP",
        issuer_oid="1.3.6.1.4.1.21367.13.20.2000",
        procedure_code=("36643-5", "LN", "XR Chest 2 Views"),
        requested_procedure_id="RP-5",
    )
    for ds in synthetic.make_study(spec):
        clean(validate(synthetic.encode(ds)))


# -- the manifests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # accession number with an issuer, three series in three syntaxes
        {"accession_issuer_oid": ""},  # the case: accession without issuer
        {"accession_number": "", "accession_issuer_oid": ""},  # no request at all
        {"requested_procedure_id": "RP-5", "procedure_code": ("36643-5", "LN", "XR Chest")},
        {"issuer_of_patient_id": "HOSP", "issuer_oid": "1.3.6.1.4.1.21367.13.20.2000"},
        {"patient_name": "Müller^Jörg", "study_description": "Thorax ä"},  # ISO_IR 100
    ],
    ids=["issuer", "no-issuer", "no-request", "requested-procedure", "patient-issuer", "latin1"],
)
def test_manifest_is_valid(overrides: dict[str, object]) -> None:
    clean(validate(manifest(synthetic.make_study(study_spec(**overrides)))))


def test_manifest_of_every_modality_and_non_image_references_is_valid() -> None:
    """IMAGE, COMPOSITE and WAVEFORM content items (TID 2010 rows 3-5)."""
    series = [synthetic.SeriesSpec(modality=m, count=2) for m in synthetic.SOP_CLASSES]
    series.append(synthetic.SeriesSpec(modality="US", count=1, transfer_syntax=SYNTAXES["jpeg"]))
    instances = synthetic.make_study(study_spec(series=tuple(series)))
    others = (
        "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
        "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
        "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
        "1.2.840.10008.5.1.4.1.1.9.1.1",  # 12-lead ECG
    )
    extra = tuple(
        Reference(sop_class_uid=uid, sop_instance_uid=f"2.25.7{n}", series_instance_uid="2.25.70")
        for n, uid in enumerate(others)
    )
    clean(validate(manifest(instances, extra)))


def test_empty_optional_sequences_of_the_study_are_left_out() -> None:
    """Type 3 sequences a sender wrote without items are not copied (PS3.3 §7.5.1: one or more
    items when present), where the issue's IssuerOfAccessionNumberSequence came from."""
    instances = synthetic.make_study(study_spec(requested_procedure_id="RP-5"))
    for ds in instances:
        ds.IssuerOfAccessionNumberSequence = DicomSequence()
        ds.IssuerOfPatientIDQualifiersSequence = DicomSequence()
        ds.ProcedureCodeSequence = DicomSequence()
        ds.StudyDescription = ""
    data = manifest(instances)
    clean(validate(data))
    kos = pydicom.dcmread(io.BytesIO(data))
    for keyword in ("IssuerOfAccessionNumberSequence", "IssuerOfPatientIDQualifiersSequence"):
        assert keyword not in kos
    assert "IssuerOfAccessionNumberSequence" not in kos.ReferencedRequestSequence[0]


@pytest.mark.parametrize("test", ["ids_2018-4801a", "ids_2018-4801b", "ids_2018-4801c"])
def test_manifest_of_the_nist_studies_is_valid(test: str) -> None:
    clean(validate(manifest(standin_study(reference_kos(test)))), RETIRED_PN_FORM)
