"""The imaging manifest: a DICOM Key Object Selection Document built with pydicom.

IOD: DICOM PS3.3 §A.35.4 (Key Object Selection Document): Patient, General Study, Key Object
Document Series, General Equipment, Key Object Document (§C.17.6.2), SR Document Content (§C.17.3)
and SOP Common modules. Content per template TID 2010 "Key Object Selection" (PS3.16): a root
CONTAINER titled (113030, DCM, "Manifest") (CID 7010, the title RAD TF-3 §4.68.4.1.2.2 requires
for XDS-I manifests) holding one CONTAINS item per referenced instance (IMAGE, WAVEFORM or
COMPOSITE by SOP Class).

RAD TF-3 §4.68.4.1.2.2 (and NIST ids_2018-4800): patient and study attributes are copied from
the study unchanged; the manifest lives in its own new series; the Current Requested Procedure
Evidence Sequence lists every series and instance with the Retrieve Location UID of the imaging
document source (its repositoryUniqueId) and a Retrieve AE Title; the Referenced Request Sequence
carries the accession number and requested procedure when the study has them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

from gateway import __version__

KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"  # Key Object Selection Document Storage
MANIFEST_TITLE = ("113030", "DCM", "Manifest")  # CID 7010
TEMPLATE_ID = "2010"  # TID 2010 Key Object Selection
MANUFACTURER = "xdsi-gateway"
IMPLEMENTATION_VERSION_NAME = f"XDSIGW_{__version__}"[:16]
MANIFEST_SERIES_NUMBER = 999

# Patient and General Study module attributes copied as received (PS3.3 §C.7.1.1, §C.7.2.1).
# Type 2 attributes are written empty when the study does not have them.
_PATIENT_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
_PATIENT_OPTIONAL = (
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "OtherPatientIDsSequence",
    "PatientBirthTime",
)
_STUDY_TYPE2 = ("StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber")
_STUDY_OPTIONAL = ("IssuerOfAccessionNumberSequence", "StudyDescription", "ProcedureCodeSequence")

# SOP Classes referenced as WAVEFORM or COMPOSITE content items (TID 2010 rows 3-5): waveforms
# (PS3.4 §B.5 "1.2.840.10008.5.1.4.1.1.9.*") and the non-image storage classes (SR, presentation
# states, encapsulated documents, raw data, registrations, RT structure/plan/records...).
_WAVEFORM_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
_COMPOSITE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # SR documents, KOS
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, spatial registration, fiducials (66.4 is image)
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects (481.1 RT Image and 481.2 RT Dose are images)
    "1.2.840.10008.5.1.4.1.1.200.",  # protocol storage
    "1.2.840.10008.5.1.4.38.",  # hanging protocols
    "1.2.840.10008.5.1.4.39.",  # color palettes
    "1.2.840.10008.5.1.4.43.",  # generic implant templates
)
_IMAGE_EXCEPTIONS = (
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """One instance the manifest lists."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestIds:
    """The manifest's own identity: new UIDs, never those of a referenced series."""

    sop_instance_uid: str
    series_instance_uid: str
    instance_number: int = 1
    series_number: int = MANIFEST_SERIES_NUMBER


def content_value_type(sop_class_uid: str) -> str:
    """IMAGE, WAVEFORM or COMPOSITE: the TID 2010 value type for a referenced SOP Class."""
    if sop_class_uid.startswith(_WAVEFORM_PREFIX):
        return "WAVEFORM"
    if sop_class_uid in _IMAGE_EXCEPTIONS:
        return "IMAGE"
    if sop_class_uid.startswith(_COMPOSITE_PREFIXES):
        return "COMPOSITE"
    return "IMAGE"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _copy(target: Dataset, source: Dataset, keywords: Iterable[str], *, type2: bool) -> None:
    """Copy attributes as received. Type 2 ones are written empty when absent; optional (Type 3)
    ones only when they have a value: an empty sequence whose module asks for one or more items
    is an error (PS3.3 §7.5.1; ``dciodvfy``: "Bad Sequence number of Items")."""
    for keyword in keywords:
        if keyword in source and (type2 or not source[keyword].is_empty):
            target[keyword] = source[keyword]
        elif type2:
            setattr(target, keyword, None)


def referenced_requests(study_uid: str, headers: Iterable[Dataset]) -> list[Dataset]:
    """Referenced Request Sequence items (PS3.3 Table C.17-2): one per distinct accession number
    and requested procedure of the study's instances; empty when none names a request."""
    items: dict[tuple[str, str], Dataset] = {}
    for header in headers:
        accession = str(header.get("AccessionNumber", "") or "")
        requests = list(header.get("RequestAttributesSequence", None) or []) or [None]
        for request in requests:
            procedure_id = str(request.get("RequestedProcedureID", "") or "") if request else ""
            item_accession = str(request.get("AccessionNumber", "") or "") if request else ""
            key = (item_accession or accession, procedure_id)
            if key == ("", "") or key in items:
                continue
            items[key] = _request_item(study_uid, key[0], header, request)
    return list(items.values())


def _request_item(
    study_uid: str, accession: str, header: Dataset, request: Dataset | None
) -> Dataset:
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.ReferencedStudySequence = DicomSequence()
    item.AccessionNumber = accession
    source = request if request is not None else Dataset()
    # Type 3, one item (PS3.3 Table C.17.6-2 via the Request Attributes macro): the issuer of
    # the request's own accession number, else the study's; left out when neither names one.
    issuer = source.get("IssuerOfAccessionNumberSequence") or header.get(
        "IssuerOfAccessionNumberSequence"
    )
    if issuer:
        item.IssuerOfAccessionNumberSequence = issuer
    item.PlacerOrderNumberImagingServiceRequest = source.get(
        "PlacerOrderNumberImagingServiceRequest"
    )
    item.FillerOrderNumberImagingServiceRequest = source.get(
        "FillerOrderNumberImagingServiceRequest"
    )
    item.RequestedProcedureID = source.get("RequestedProcedureID")
    item.RequestedProcedureDescription = source.get("RequestedProcedureDescription")
    codes = source.get("RequestedProcedureCodeSequence")
    item.RequestedProcedureCodeSequence = codes if codes is not None else DicomSequence()
    return item


def evidence_sequence(
    study_uid: str,
    references: Sequence[Reference],
    *,
    retrieve_location_uid: str,
    retrieve_ae_title: str,
    wado_rs_root: str = "",
) -> DicomSequence:
    """Current Requested Procedure Evidence Sequence (PS3.3 §C.17.6.2.1, Hierarchical SOP
    Instance Reference Macro Table C.17-3): study -> series (with Retrieve AE Title and Retrieve
    Location UID, RAD TF-3 §4.68.4.1.2.2) -> instances, series in first-seen order.

    With ``wado_rs_root`` (the XDS-I.b WADO-RS option) each series item also carries Retrieve
    URL (0008,1190), the WADO-RS Series resource ``{root}/studies/{study}/series/{series}``
    (PS3.18 §10.4.1; PS3.3 hierarchical series reference: "URL specifying the location of the
    referenced instance(s)"; IHE RAD MADO Suppl. §6.X.1.2.3.5: Retrieve URL at series level,
    beside the Retrieve Location UID; RAD TF-2 §4.107.4.0.1: the XDS-I.b Responder of WADO-RS
    Retrieve [RAD-107] serves every message pair of it).
    """
    series: dict[str, list[Reference]] = {}
    for reference in references:
        series.setdefault(reference.series_instance_uid, []).append(reference)
    series_items = DicomSequence()
    for series_uid, members in series.items():
        item = Dataset()
        item.RetrieveAETitle = retrieve_ae_title
        item.ReferencedSOPSequence = DicomSequence(
            [_sop_reference(ref.sop_class_uid, ref.sop_instance_uid) for ref in members]
        )
        item.SeriesInstanceUID = series_uid
        if wado_rs_root:
            item.RetrieveURL = f"{wado_rs_root.rstrip('/')}/studies/{study_uid}/series/{series_uid}"
        item.RetrieveLocationUID = retrieve_location_uid
        series_items.append(item)
    study = Dataset()
    study.ReferencedSeriesSequence = series_items
    study.StudyInstanceUID = study_uid
    return DicomSequence([study])


def _sop_reference(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item


def _content_items(references: Sequence[Reference]) -> DicomSequence:
    items = DicomSequence()
    for reference in references:
        item = Dataset()
        item.ReferencedSOPSequence = DicomSequence(
            [_sop_reference(reference.sop_class_uid, reference.sop_instance_uid)]
        )
        item.RelationshipType = "CONTAINS"
        item.ValueType = content_value_type(reference.sop_class_uid)
        items.append(item)
    return items


def build_manifest(
    study: Dataset,
    references: Sequence[Reference],
    ids: ManifestIds,
    *,
    retrieve_location_uid: str,
    retrieve_ae_title: str,
    requests: Sequence[Dataset] = (),
    now: datetime | None = None,
    wado_rs_root: str = "",
) -> Dataset:
    """Build the KOS manifest of a study.

    ``study`` is the header of one of the study's instances (patient and study attributes are
    copied from it), ``references`` every instance to list, ``requests`` the Referenced Request
    Sequence items (:func:`referenced_requests`), ``wado_rs_root`` the DICOMweb service root of
    the WADO-RS option (:func:`evidence_sequence`). Standard: PS3.3 §A.35.4, TID 2010,
    RAD TF-3 §4.68.4.1.2.2.
    """
    if not references:
        raise ValueError("a manifest lists at least one instance")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    study_uid = str(study.StudyInstanceUID)
    ds = Dataset()
    if "SpecificCharacterSet" in study:  # the copied names keep their character set
        ds.SpecificCharacterSet = study.SpecificCharacterSet
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = ids.sop_instance_uid
    ds.InstanceCreationDate = ds.ContentDate = moment.strftime("%Y%m%d")
    ds.InstanceCreationTime = ds.ContentTime = moment.strftime("%H%M%S")
    ds.TimezoneOffsetFromUTC = "+0000"
    _series_and_equipment(ds, ids)
    _copy(ds, study, _PATIENT_TYPE2, type2=True)
    _copy(ds, study, _PATIENT_OPTIONAL, type2=False)
    ds.StudyInstanceUID = study_uid
    _copy(ds, study, _STUDY_TYPE2, type2=True)
    _copy(ds, study, _STUDY_OPTIONAL, type2=False)
    if requests:
        ds.ReferencedRequestSequence = DicomSequence(list(requests))
    ds.CurrentRequestedProcedureEvidenceSequence = evidence_sequence(
        study_uid,
        references,
        retrieve_location_uid=retrieve_location_uid,
        retrieve_ae_title=retrieve_ae_title,
        wado_rs_root=wado_rs_root,
    )
    _document_content(ds, references)
    return ds


def _series_and_equipment(ds: Dataset, ids: ManifestIds) -> None:
    """Key Object Document Series (PS3.3 §C.17.6.1), General Equipment and Instance Number."""
    ds.Modality = "KO"
    ds.SeriesInstanceUID = ids.series_instance_uid
    ds.SeriesNumber = ids.series_number
    ds.SeriesDescription = "XDS-I manifest"
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    ds.InstanceNumber = ids.instance_number
    ds.Manufacturer = MANUFACTURER
    ds.SoftwareVersions = __version__


def _document_content(ds: Dataset, references: Sequence[Reference]) -> None:
    """SR Document Content (PS3.3 §C.17.3): the TID 2010 root container and its items."""
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code(*MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = TEMPLATE_ID
    ds.ContentTemplateSequence = DicomSequence([template])
    ds.ContentSequence = _content_items(references)


def encode_part10(ds: Dataset) -> bytes:
    """Encode a data set as a DICOM Part 10 file in Explicit VR Little Endian (PS3.10 §7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
