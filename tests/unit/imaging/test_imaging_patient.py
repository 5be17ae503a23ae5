"""The DICOM Patient ID -> affinity-domain patientId rule (gateway.imaging.patient)."""

from __future__ import annotations

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from gateway.imaging.patient import DicomPatient, escape_hl7, map_patient

DOMAIN = "1.3.6.1.4.1.21367.13.20.1000"
LOCAL = "1.2.3.4.5"


def header(patient_id: str, issuer: str = "", uid: str = "", uid_type: str = "ISO") -> Dataset:
    ds = Dataset()
    ds.PatientID = patient_id
    if issuer:
        ds.IssuerOfPatientID = issuer
    if uid:
        qualifier = Dataset()
        qualifier.UniversalEntityID, qualifier.UniversalEntityIDType = uid, uid_type
        ds.IssuerOfPatientIDQualifiersSequence = Sequence([qualifier])
    return ds


def never(local: str) -> str | None:
    raise AssertionError(f"no lookup expected, got {local}")


def test_no_issuer_means_the_domain_id() -> None:
    mapping = map_patient(DicomPatient.from_header(header("P1")), DOMAIN, never)
    assert mapping.patient_id == f"P1^^^&{DOMAIN}&ISO"
    assert mapping.source_patient_id == f"P1^^^&{DOMAIN}&ISO"


def test_domain_oid_as_universal_entity_id_means_the_domain_id() -> None:
    ds = header("P1", issuer="DOMAIN", uid=DOMAIN)
    mapping = map_patient(DicomPatient.from_header(ds), DOMAIN, never)
    assert mapping.patient_id == f"P1^^^&{DOMAIN}&ISO"


def test_local_iso_issuer_is_mapped_through_the_feed_cross_reference() -> None:
    asked: list[str] = []

    def lookup(local: str) -> str | None:
        asked.append(local)
        return f"D-9^^^&{DOMAIN}&ISO"

    mapping = map_patient(DicomPatient.from_header(header("L-1", uid=LOCAL)), DOMAIN, lookup)
    assert asked == [f"L-1^^^&{LOCAL}&ISO"]  # the form gateway.hl7.adt.to_cx gives ISO ids
    assert mapping.patient_id == f"D-9^^^&{DOMAIN}&ISO"
    assert mapping.source_patient_id == f"L-1^^^&{LOCAL}&ISO"


def test_namespace_issuer_is_looked_up_as_a_namespace_cx() -> None:
    asked: list[str] = []

    def lookup(local: str) -> str | None:
        asked.append(local)
        return None

    mapping = map_patient(DicomPatient.from_header(header("L-2", issuer="HOSP")), DOMAIN, lookup)
    assert asked == ["L-2^^^HOSP"]
    assert mapping.patient_id is None
    assert mapping.source_patient_id == "L-2^^^HOSP"
    assert "L-2^^^HOSP" in mapping.reason and "ITI-8" in mapping.todo


def test_namespace_and_non_iso_universal_id_keep_all_parts() -> None:
    patient = DicomPatient.from_header(
        header("L-3", issuer="HOSP", uid="hosp.example", uid_type="DNS")
    )
    assert patient.local_cx() == "L-3^^^HOSP&hosp.example&DNS"


def test_unknown_local_patient_without_lookup_is_held() -> None:
    mapping = map_patient(DicomPatient.from_header(header("L-1", uid=LOCAL)), DOMAIN, None)
    assert mapping.patient_id is None


def test_missing_patient_id_cannot_be_mapped() -> None:
    mapping = map_patient(DicomPatient.from_header(Dataset()), DOMAIN, never)
    assert mapping.patient_id is None
    assert "Patient ID" in mapping.reason


def test_hl7_separators_in_a_patient_id_are_escaped() -> None:
    assert escape_hl7("A^B&C|D~E\\F") == "A\\S\\B\\T\\C\\F\\D\\R\\E\\E\\F"
    mapping = map_patient(DicomPatient.from_header(header("A^B")), DOMAIN, never)
    assert mapping.patient_id == f"A\\S\\B^^^&{DOMAIN}&ISO"
