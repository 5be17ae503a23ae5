"""The XDS metadata of a published manifest: DocumentEntry, SubmissionSet and associations.

DocumentEntry values follow RAD TF-3 §4.68.4.1.2.3.2 (XDS-I.b manifest metadata) on top of
ITI TF-3 §4.2.3.2:

- mimeType ``application/dicom``; formatCode 1.2.840.10008.5.1.4.1.1.88.59 (scheme
  1.2.840.10008.2.6.1); uniqueId = the KOS SOP Instance UID;
- eventCodeList: one CID 29 code per acquisition modality of the study and the CID 4 anatomic
  regions (Anatomic Region Sequence, else Body Part Examined), in study order, no duplicates;
- typeCode from the study's Procedure Code Sequence (0008,1032), else the configured default;
- referenceIdList: the Study Instance UID (CXi type ``urn:ihe:iti:xds:2016:studyInstanceUID``) and
  the accession number with its issuer (``urn:ihe:iti:xds:2013:accession``), ITI TF-3 §4.2.3.2.28;
- serviceStartTime: Study Date and Time (made UTC when Timezone Offset From UTC is present);
- sourcePatientId/sourcePatientInfo from the DICOM Patient module (PID-3, -5, -7, -8);
- patientId: the affinity-domain id (``gateway.imaging.patient``).

A replacement manifest carries an RPLC association to the entry it replaces (ITI TF-3 §4.2.2.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydicom.dataset import Dataset

from gateway.imaging.codes import (
    KOS_FORMAT_CODE,
    KOS_MIME_TYPE,
    ManifestCodes,
    body_part_code,
    modality_code,
    scheme_oid,
)
from gateway.imaging.patient import PatientMapping, escape_hl7
from gateway.metadata import vocabulary as v
from gateway.metadata.datatypes import Code, format_dtm, new_uuid_urn
from gateway.metadata.model import Association, DocumentEntry, Submission, SubmissionSet

STUDY_INSTANCE_UID_TYPE = "urn:ihe:iti:xds:2016:studyInstanceUID"
ACCESSION_TYPE = "urn:ihe:iti:xds:2013:accession"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestDocument:
    """The identity of the manifest being registered."""

    unique_id: str  # the KOS SOP Instance UID
    entry_uuid: str
    replaces: str | None = None  # entryUUID of the manifest this one replaces (RPLC)


def event_codes(headers: Iterable[Dataset]) -> list[Code]:
    """Modality codes, then anatomic region codes, of the given series headers (deduplicated)."""
    modalities: list[Code] = []
    regions: list[Code] = []
    for header in headers:
        found = modality_code(str(header.get("Modality", "") or ""))
        if found is not None and not any(found.matches(c) for c in modalities):
            modalities.append(found)
        for region in _regions(header):
            if not any(region.matches(c) for c in regions):
                regions.append(region)
    return modalities + regions


def _regions(header: Dataset) -> list[Code]:
    items = header.get("AnatomicRegionSequence") or []
    codes = [_dicom_code(item) for item in items]
    found = [code for code in codes if code is not None]
    if found:
        return found
    mapped = body_part_code(str(header.get("BodyPartExamined", "") or ""))
    return [mapped] if mapped is not None else []


def _dicom_code(item: Dataset) -> Code | None:
    """An XDS code from a DICOM Code Sequence item (Basic Code Sequence Macro, PS3.3 §8.8)."""
    value = str(item.get("CodeValue", "") or item.get("LongCodeValue", "") or "").strip()
    designator = str(item.get("CodingSchemeDesignator", "") or "").strip()
    if not value or not designator:
        return None
    meaning = str(item.get("CodeMeaning", "") or "").strip() or None
    return Code(value, scheme_oid(designator, str(item.get("CodingSchemeUID", "") or "")), meaning)


def type_code(study: Dataset, default: Code) -> Code:
    """The first code of the Procedure Code Sequence (0008,1032), else ``default``."""
    for item in study.get("ProcedureCodeSequence") or []:
        found = _dicom_code(item)
        if found is not None:
            return found
    return default


def service_start_time(study: Dataset) -> str | None:
    """Study Date (0008,0020) and Time (0008,0030) as an XDS DTM (UTC if the offset is known)."""
    date = str(study.get("StudyDate", "") or "").strip()
    if len(date) != 8 or not date.isdigit():
        return None
    time = str(study.get("StudyTime", "") or "").strip().split(".")[0].replace(":", "")
    digits = len(time) - len(time) % 2 if time.isdigit() else 0
    value = date + time[: min(digits, 6)]
    offset = str(study.get("TimezoneOffsetFromUTC", "") or "").strip()
    if len(offset) == 5 and offset[0] in "+-" and offset[1:].isdigit() and len(value) > 8:
        moment = datetime.strptime(value.ljust(14, "0"), "%Y%m%d%H%M%S")
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        value = format_dtm((moment - sign * delta).replace(tzinfo=UTC), precision=len(value))
    return value


def accession_issuer(study: Dataset, default: str) -> str:
    """The OID of the accession number's issuer (Issuer of Accession Number Sequence), else
    ``default``."""
    for item in study.get("IssuerOfAccessionNumberSequence") or []:
        uid = str(item.get("UniversalEntityID", "") or "").strip()
        if uid and str(item.get("UniversalEntityIDType", "") or "").upper() == "ISO":
            return uid
    return default


def reference_ids(study: Dataset, default_issuer: str) -> list[str]:
    """referenceIdList values (CXi): Study Instance UID and accession number."""
    values = [f"{study.StudyInstanceUID}^^^^{STUDY_INSTANCE_UID_TYPE}"]
    accession = str(study.get("AccessionNumber", "") or "").strip()
    if accession:
        issuer = accession_issuer(study, default_issuer)
        authority = f"&{issuer}&ISO" if issuer else ""
        values.append(f"{escape_hl7(accession)}^^^{authority}^{ACCESSION_TYPE}")
    return values


def person_name(value: object) -> str:
    """A DICOM PN (family^given^middle^prefix^suffix) as HL7 XPN (family^given^middle^suffix^
    prefix), alphabetic group only, HL7-escaped."""
    alphabetic = str(value or "").split("=")[0]
    parts = [*alphabetic.split("^"), "", "", "", "", ""][:5]
    family, given, middle, prefix, suffix = (escape_hl7(p.strip()) for p in parts)
    return "^".join((family, given, middle, suffix, prefix)).rstrip("^")


def source_patient_info(study: Dataset, source_patient_id: str) -> list[str]:
    """sourcePatientInfo (ITI TF-3 §4.2.3.2.20): PID-3, PID-5, PID-7, PID-8 as present."""
    values = [f"PID-3|{source_patient_id}"] if source_patient_id else []
    name = person_name(study.get("PatientName"))
    if name:
        values.append(f"PID-5|{name}")
    birth = str(study.get("PatientBirthDate", "") or "").strip()
    if len(birth) == 8 and birth.isdigit():
        values.append(f"PID-7|{birth}")
    sex = str(study.get("PatientSex", "") or "").strip().upper()
    if sex in {"M", "F", "O"}:
        values.append(f"PID-8|{sex}")
    return values


def build_document_entry(
    study: Dataset,
    series_headers: Sequence[Dataset],
    patient: PatientMapping,
    document: ManifestDocument,
    codes: ManifestCodes,
    *,
    now: datetime,
) -> DocumentEntry:
    """The manifest's DocumentEntry (RAD TF-3 §4.68.4.1.2.3.2)."""
    if patient.patient_id is None:
        raise ValueError("the manifest needs an affinity-domain patient id")
    description = str(study.get("StudyDescription", "") or "").strip()
    return DocumentEntry(
        entry_uuid=document.entry_uuid,
        object_type=v.DOCUMENT_ENTRY_STABLE,
        mime_type=KOS_MIME_TYPE,
        title=description or None,
        class_code=codes.class_code,
        confidentiality_code=list(codes.confidentiality_codes),
        creation_time=format_dtm(now),
        event_code_list=event_codes(series_headers),
        format_code=KOS_FORMAT_CODE,
        healthcare_facility_type_code=codes.healthcare_facility_type_code,
        language_code=codes.language_code,
        patient_id=patient.patient_id,
        practice_setting_code=codes.practice_setting_code,
        reference_id_list=reference_ids(study, codes.accession_issuer),
        service_start_time=service_start_time(study),
        source_patient_id=patient.source_patient_id,
        source_patient_info=source_patient_info(study, patient.source_patient_id),
        type_code=type_code(study, codes.type_code),
        unique_id=document.unique_id,
    )


def build_submission(
    entry: DocumentEntry,
    codes: ManifestCodes,
    *,
    source_id: str,
    submission_set_unique_id: str,
    now: datetime,
    replaces: str | None = None,
) -> Submission:
    """SubmissionSet + the entry + HasMember (Original), plus RPLC -> ``replaces`` when given.

    Standard: ITI TF-3 §4.1.4 (submission request), §4.2.2.1 (HasMember, SubmissionSetStatus),
    §4.2.2.2 (RPLC), §4.2.3.3 (SubmissionSet attributes).
    """
    submission_set = SubmissionSet(
        entry_uuid=new_uuid_urn(),
        content_type_code=codes.content_type_code,
        patient_id=entry.patient_id,
        source_id=source_id,
        submission_time=format_dtm(now),
        unique_id=submission_set_unique_id,
    )
    associations = [
        Association(
            entry_uuid=new_uuid_urn(),
            association_type=v.HAS_MEMBER,
            source_object=submission_set.entry_uuid,
            target_object=entry.entry_uuid,
            submission_set_status=v.SUBMISSION_SET_STATUS_ORIGINAL,
        )
    ]
    if replaces:
        associations.append(
            Association(
                entry_uuid=new_uuid_urn(),
                association_type=v.RPLC,
                source_object=entry.entry_uuid,
                target_object=replaces,
            )
        )
    return Submission(
        submission_set=submission_set, document_entries=[entry], associations=associations
    )
